"""The scoring service: the public API that scores loan applicants.

``POST /predict`` validates the applicant, enriches it with the customer's history from the
features service (so one trace crosses both services), scores it with the release's model and
records the prediction for delayed feedback. ``POST /feedback`` takes the real outcome later.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import structlog
from flask import Flask, jsonify, request
from opentelemetry.sdk.trace import TracerProvider

from app import admin, errors, faults, releases, telemetry
from app.errors import RequestError
from app.model.registry import load_model, trained_baselines
from app.scoring import openapi, validation
from app.scoring.changes import CHANGES
from app.scoring.features_client import DependencyError, FeaturesClient
from app.scoring.predictions import FeedbackConflict, PredictionStore
from app.settings import load_config, log_file, state_dir
from app.telemetry import DependencyMetrics, ModelMetrics, configure_logging


def create_app(
    config: Mapping[str, object] | None = None, *, tracer_provider: TracerProvider | None = None
) -> Flask:
    app = errors.Service(__name__)
    load_config(
        app,
        "scoring",
        {
            "FEATURES_URL": "http://127.0.0.1:8001",
            "PREDICTIONS_DB": str(state_dir() / "scoring" / "predictions.db"),
            "MODELS_DIR": str(state_dir() / "models"),
        },
        config,
    )

    release = releases.get(app.config["SERVICE_VERSION"])
    app.config["MODEL_VERSION"] = app.config["MODEL_VERSION"] or release.model_version
    loaded = load_model(app.config["MODEL_VERSION"], Path(app.config["MODELS_DIR"]))
    model = loaded.model
    change = CHANGES.get(release.version)
    store = PredictionStore(Path(app.config["PREDICTIONS_DB"]))

    configure_logging("scoring", str(app.config["SERVICE_VERSION"]), log_file=log_file(app))
    errors.init_app(app)
    tel = telemetry.init_app(app, "scoring", tracer_provider=tracer_provider)
    model_metrics = ModelMetrics(
        tel.registry, loaded.baseline, release=release.version, enabled=tel.enabled
    )
    for known in trained_baselines(Path(app.config["MODELS_DIR"])):
        model_metrics.add_baseline(known)
    dependency = DependencyMetrics(tel.registry, "features", enabled=tel.enabled)
    # What trace.get_tracer(__name__) gives a service that sets the global provider; here the
    # provider is the one init_app built (or a test's), so tests can hold spans in memory.
    tracer = tel.tracer
    features_client = FeaturesClient(app.config["FEATURES_URL"], tracer=tracer)
    fault_state = faults.FaultState("scoring")
    admin.init_app(app, fault_state)
    openapi.init_app(app)

    @app.post("/predict")
    def predict():
        if fault_state.armed:
            faults.before_predict(fault_state)
        with tracer.start_as_current_span("validate"):
            body = validation.parse_json_object(request.get_data(), request.content_type)
            applicant = validation.applicant(body)
        with dependency.track() as call:
            try:
                history = features_client.history(applicant.customer_id)
            except DependencyError as error:
                call.outcome = error.outcome
                raise RequestError(503, "features service unavailable") from None
        features = applicant.features | history
        model_metrics.observe_inputs(features)
        with tracer.start_as_current_span("inference") as span:
            if fault_state.armed:
                faults.during_inference(fault_state)
            extra = change(features) if change else {}
            probability = model.predict_proba(features)
            decision = model.decide(probability)
            span.set_attribute("model.version", model.version)
            span.set_attribute("model.decision", decision)
        model_metrics.observe_prediction(probability, decision)
        prediction_id = uuid.uuid4().hex
        store.record(prediction_id, model.version, decision, probability)
        if tel.enabled:
            # Rides on the request log line rather than costing a line of its own.
            structlog.contextvars.bind_contextvars(
                prediction_id=prediction_id, customer_id=applicant.customer_id, decision=decision
            )
        return jsonify(
            prediction_id=prediction_id,
            default_probability=round(probability, 6),
            decision=decision,
            model_version=model.version,
            version=release.version,
            **extra,
        )

    @app.post("/feedback")
    def feedback():
        body = validation.parse_json_object(request.get_data(), request.content_type)
        given = validation.feedback(body)
        try:
            outcome = store.feedback(given.prediction_id, given.defaulted)
        except FeedbackConflict:
            raise RequestError(409, "feedback already received", field="prediction_id") from None
        if outcome is None:
            raise RequestError(404, "unknown prediction", field="prediction_id")
        model_metrics.observe_feedback(outcome.correct, model_version=outcome.model_version)
        model_metrics.observe_outcome(
            decision=outcome.decision,
            defaulted=given.defaulted,
            probability=outcome.probability,
            delay_seconds=time.time() - outcome.predicted_at,
            model_version=outcome.model_version,
        )
        return jsonify(prediction_id=given.prediction_id, correct=outcome.correct), 202

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", version=release.version, model_version=model.version)

    @app.get("/readyz")
    def readyz():
        if store.ready():
            return jsonify(status="ready")
        return jsonify(status="not ready", reason="prediction store unreadable"), 503

    tel.start_routes(app)
    return app
