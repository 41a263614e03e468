"""The OpenAPI 3.1 document of scoring's public API, served at ``GET /openapi.json``.

Ranges and required fields come from the same ``FEATURE_SPECS`` and ``APPLICANT_FEATURES``
that validation enforces, so the document cannot drift from what the API accepts. The admin
API is left out: it is off by default and not for the service's clients.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify

from app.model.data import APPLICANT_FEATURES, FEATURE_SPECS
from app.scoring.validation import MAX_CUSTOMER_ID

OPENAPI_PATH = "/openapi.json"

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR, description)


def _feature(name: str) -> dict[str, Any]:
    spec = FEATURE_SPECS[name]
    return {
        "type": ["integer" if spec.integer else "number", "null"],
        "minimum": spec.minimum,
        "maximum": spec.maximum,
        "description": "null when the value is missing; counted as missing, never imputed",
    }


def _body(schema_name: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }


# Every body-taking operation answers these the same way, before it looks at the fields.
_BODY_ERRORS = {
    "400": _error("The body is not a JSON object, or a field is missing, unknown or invalid"),
    "413": _error("The body is larger than the service accepts"),
    "415": _error("The content type is not application/json"),
}


def _schemas() -> dict[str, Any]:
    applicant_fields: dict[str, Any] = {
        "customer_id": {"type": "integer", "minimum": 1, "maximum": MAX_CUSTOMER_ID},
    }
    applicant_fields |= {name: _feature(name) for name in APPLICANT_FEATURES}
    return {
        "Applicant": {
            "type": "object",
            "properties": applicant_fields,
            "required": list(applicant_fields),
            "additionalProperties": False,
        },
        "Prediction": {
            "type": "object",
            "properties": {
                "prediction_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "default_probability": {"type": "number", "minimum": 0, "maximum": 1},
                "decision": {"enum": ["approve", "decline"]},
                "model_version": {"type": "string"},
                "version": {"type": "string", "description": "the scoring release"},
            },
            "required": [
                "prediction_id",
                "default_probability",
                "decision",
                "model_version",
                "version",
            ],
        },
        "Feedback": {
            "type": "object",
            "properties": {
                "prediction_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "defaulted": {"type": "boolean"},
            },
            "required": ["prediction_id", "defaulted"],
            "additionalProperties": False,
        },
        "FeedbackAccepted": {
            "type": "object",
            "properties": {
                "prediction_id": {"type": "string"},
                "correct": {"type": "boolean"},
            },
            "required": ["prediction_id", "correct"],
            "additionalProperties": False,
        },
        "Error": {
            "type": "object",
            "properties": {
                "error": {"type": "string", "description": "what is wrong"},
                "field": {"type": "string", "description": "the field at fault, if one is"},
                "detail": {"type": "string"},
            },
            "required": ["error"],
        },
    }


def document(version: str) -> dict[str, Any]:
    """The OpenAPI document of scoring release ``version``."""
    status = {
        "type": "object",
        "properties": {"status": {"type": "string"}},
        "required": ["status"],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "obslab scoring",
            "version": version,
            "description": "Scores loan applicants and takes the real outcome later.",
        },
        "paths": {
            "/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Score an applicant, enriched with the customer's history",
                    "requestBody": _body("Applicant"),
                    "responses": {
                        "200": _json(
                            {"$ref": "#/components/schemas/Prediction"}, "The applicant's score"
                        ),
                        **_BODY_ERRORS,
                        "422": _error("The customer is unknown to the features service"),
                        "503": _error("The features service is unavailable"),
                    },
                }
            },
            "/feedback": {
                "post": {
                    "operationId": "feedback",
                    "summary": "Give the real outcome of an earlier prediction",
                    "requestBody": _body("Feedback"),
                    "responses": {
                        "202": _json(
                            {"$ref": "#/components/schemas/FeedbackAccepted"},
                            "The outcome is recorded; correct says if the decision was right",
                        ),
                        **_BODY_ERRORS,
                        "404": _error("No prediction has this id"),
                        "409": _error("This prediction already has its outcome"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness, with the release and model versions",
                    "responses": {"200": _json(status, "The process is alive")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness: the prediction store answers",
                    "responses": {
                        "200": _json(status, "Ready for traffic"),
                        "503": _json(status, "Not ready"),
                    },
                }
            },
        },
        "components": {"schemas": _schemas()},
    }


def init_app(app: Flask) -> None:
    """Serve the document of ``app``'s release at ``GET /openapi.json``."""
    body = document(str(app.config["SERVICE_VERSION"]))
    app.add_url_rule(OPENAPI_PATH, "openapi", lambda: jsonify(body))
