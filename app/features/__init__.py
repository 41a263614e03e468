"""The features service: customer credit history looked up by id, from SQLite."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flask import Flask, jsonify, request
from opentelemetry.sdk.trace import TracerProvider

from app import admin, errors, faults, telemetry
from app.features.store import CustomerStore, seed
from app.settings import load_config, log_file, state_dir
from app.telemetry import configure_logging


def create_app(
    config: Mapping[str, object] | None = None, *, tracer_provider: TracerProvider | None = None
) -> Flask:
    app = errors.Service(__name__)
    load_config(
        app, "features", {"FEATURES_DB": str(state_dir() / "features" / "customers.db")}, config
    )

    db_path = Path(app.config["FEATURES_DB"])
    seed(db_path)
    store = CustomerStore(db_path)
    configure_logging("features", str(app.config["SERVICE_VERSION"]), log_file=log_file(app))
    errors.init_app(app)
    tel = telemetry.init_app(app, "features", tracer_provider=tracer_provider)
    fault_state = faults.FaultState("features")
    admin.init_app(app, fault_state)

    @app.get("/customers/<int:customer_id>/features")
    def customer_features(customer_id: int):
        if fault_state.armed:
            faults.before_features_lookup(fault_state, request.environ.get("gunicorn.socket"))
        found = store.features(customer_id)
        if found is None:
            return jsonify(error="unknown customer", field="customer_id"), 404
        return jsonify(customer_id=customer_id, **found)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz():
        if store.ready():
            return jsonify(status="ready")
        return jsonify(status="not ready", reason="customer store unreadable"), 503

    tel.start_routes(app)
    return app
