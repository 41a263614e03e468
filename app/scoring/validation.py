"""Validation of the scoring API's request bodies.

Bodies are parsed with orjson, which rejects NaN and Infinity and bounds nesting depth, so
hostile JSON ends in a 400 and never in a RecursionError. Every error names its field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

from app.errors import RequestError
from app.model.data import APPLICANT_FEATURES, FEATURE_SPECS

MAX_CUSTOMER_ID = 2**31 - 1


@dataclass(frozen=True)
class Applicant:
    customer_id: int
    features: dict[str, float | None]


@dataclass(frozen=True)
class Feedback:
    prediction_id: str
    defaulted: bool


def parse_json_object(data: bytes, content_type: str | None) -> dict:
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        raise RequestError(415, "content type must be application/json")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise RequestError(400, f"body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise RequestError(400, "body must be a JSON object")
    return body


def _check_keys(body: dict, required: tuple[str, ...]) -> None:
    for key in body:
        if key not in required:
            raise RequestError(400, "unknown field", field=key)
    for key in required:
        if key not in body:
            raise RequestError(400, "missing field", field=key)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def applicant(body: dict) -> Applicant:
    _check_keys(body, ("customer_id", *APPLICANT_FEATURES))
    customer_id = body["customer_id"]
    if not isinstance(customer_id, int) or isinstance(customer_id, bool):
        raise RequestError(400, "must be an integer", field="customer_id")
    if not 1 <= customer_id <= MAX_CUSTOMER_ID:
        raise RequestError(400, f"must be between 1 and {MAX_CUSTOMER_ID}", field="customer_id")
    features: dict[str, float | None] = {}
    for name in APPLICANT_FEATURES:
        value, spec = body[name], FEATURE_SPECS[name]
        if value is None:
            features[name] = None
            continue
        if not _is_number(value):
            raise RequestError(400, "must be a number or null", field=name)
        if not math.isfinite(value):
            raise RequestError(400, "must be finite", field=name)
        if spec.integer and value != int(value):
            raise RequestError(400, "must be a whole number", field=name)
        if not spec.minimum <= value <= spec.maximum:
            raise RequestError(
                400, f"must be between {spec.minimum:g} and {spec.maximum:g}", field=name
            )
        features[name] = float(value)
    return Applicant(customer_id, features)


def feedback(body: dict) -> Feedback:
    _check_keys(body, ("prediction_id", "defaulted"))
    prediction_id, defaulted = body["prediction_id"], body["defaulted"]
    if not isinstance(prediction_id, str) or not 1 <= len(prediction_id) <= 64:
        raise RequestError(400, "must be a prediction id string", field="prediction_id")
    if not isinstance(defaulted, bool):
        raise RequestError(400, "must be true or false", field="defaulted")
    return Feedback(prediction_id, defaulted)
