"""The two services as unit tests run them: scoring reaches features over a real HTTP hop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

from app.features import create_app as create_features

#: A valid /predict body for a customer the features service knows.
APPLICANT = {
    "customer_id": 17,
    "income": 52_000.0,
    "age": 41,
    "debt_ratio": 0.31,
    "loan_amount": 12_000.0,
    "employment_years": 6.5,
}


def make_features(home: Path) -> Flask:
    """The features service with its SQLite history in ``home``, logging to stdout only."""
    return create_features({"FEATURES_DB": str(home / "customers.db"), "LOG_FILE": ""})


def scoring_settings(home: Path, features_url: str) -> dict[str, str]:
    """Scoring's settings: its state in ``home``, its features service at ``features_url``."""
    return {
        "FEATURES_URL": features_url,
        "PREDICTIONS_DB": str(home / "predictions.db"),
        "MODELS_DIR": str(home / "models"),
        "LOG_FILE": "",
    }


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """``app`` on a free local port in a thread while the block runs; yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
