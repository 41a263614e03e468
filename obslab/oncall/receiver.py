"""The oncall receiver: Alertmanager webhooks in, pages out as JSON, HTML and metrics.

``POST /webhook`` answers 200 only once the notification is committed to disk, so an
acknowledged page survives a crash; anything else is refused whole with a 4xx naming the
problem, and Alertmanager's retries of a stored notification are absorbed by the store.
"""

from __future__ import annotations

import hmac
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
import structlog
from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import RequestEntityTooLarge

from app import errors
from app.errors import RequestError
from app.settings import from_prefixed_env, state_dir
from obslab.errors import ObslabError
from obslab.oncall.metrics import OncallMetrics, RejectReason
from obslab.oncall.payload import STATUSES, PayloadError, parse_notification
from obslab.oncall.store import PageStore

ENV_PREFIX = "OBSLAB"
DEFAULT_MAX_BODY = 1024 * 1024

_FILTERS = ("alertname", "status")
# Prometheus requires alert names to be metric names.
_ALERTNAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

log = structlog.get_logger()
routes = Blueprint("oncall", __name__)


class ConfigError(ObslabError):
    """A setting the receiver cannot start with; the message names its environment variable."""


@dataclass(frozen=True, slots=True)
class _Oncall:
    token: bytes
    store: PageStore
    metrics: OncallMetrics


def create_app(config: Mapping[str, object] | None = None) -> Flask:
    """The receiver; settings come from ``OBSLAB_*`` variables, then from ``config``."""
    app = Flask(__name__)
    app.config.update(ONCALL_TOKEN="", ONCALL_DB="", MAX_CONTENT_LENGTH=DEFAULT_MAX_BODY)
    # Text settings (the token, the database path) are taken as written, never as JSON.
    from_prefixed_env(app.config, ENV_PREFIX)
    app.config.update(config or {})
    _check_max_body(app.config["MAX_CONTENT_LENGTH"])
    app.extensions["oncall"] = _Oncall(
        token=_token(app.config["ONCALL_TOKEN"]),
        store=_store(app.config["ONCALL_DB"]),
        metrics=OncallMetrics(),
    )
    errors.init_app(app)
    app.register_blueprint(routes)
    return app


def _token(value: object) -> bytes:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{ENV_PREFIX}_ONCALL_TOKEN is not set: set it to the bearer token that "
            "Alertmanager's webhook sends (http_config.authorization.credentials)"
        )
    return value.encode()


def _store(value: object) -> PageStore:
    path = Path(str(value)) if value else state_dir() / "oncall" / "pages.db"
    try:
        return PageStore(path)
    except (OSError, sqlite3.Error) as error:
        raise ConfigError(f"{ENV_PREFIX}_ONCALL_DB: cannot open {path}: {error}") from error


def _check_max_body(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(
            f"{ENV_PREFIX}_MAX_CONTENT_LENGTH must be a positive number of bytes, not {value!r}"
        )


def _oncall() -> _Oncall:
    return current_app.extensions["oncall"]


def _reject(reason: RejectReason, status: int, message: str, field: str) -> Response:
    _oncall().metrics.rejected.labels(reason).inc()
    log.warning("webhook_rejected", reason=reason, field=field)
    response = jsonify(RequestError(status, message, field).body())
    response.status_code = status
    return response


def _authorized(expected: bytes) -> bool:
    credentials = request.authorization
    if credentials is None or credentials.type != "bearer" or not credentials.token:
        return False
    return hmac.compare_digest(credentials.token.encode(), expected)


@routes.post("/webhook")
def webhook() -> ResponseReturnValue:
    oncall = _oncall()
    if not _authorized(oncall.token):
        response = _reject("unauthorized", 401, "a valid bearer token is required", "Authorization")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    if not request.is_json:
        return _reject(
            "unsupported_media_type", 415, "content type must be application/json", "Content-Type"
        )
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return _reject("too_large", 413, f"body exceeds the limit of {limit} bytes", "body")
    try:
        alerts = parse_notification(orjson.loads(body))
    except orjson.JSONDecodeError as error:
        return _reject("malformed", 400, f"body is not valid JSON: {error}", "body")
    except PayloadError as error:
        return _reject("malformed", 400, str(error), error.field)
    try:
        stored = oncall.store.add(alerts)
    except sqlite3.Error:
        log.exception("page_store_failed", alerts=len(alerts))
        # A 5xx makes Alertmanager retry the notification later; a 4xx would drop it.
        return jsonify(error="pages cannot be stored right now"), 503
    for alert in stored:
        oncall.metrics.notifications.labels(alert.status).inc()
        log.info(
            "page_stored",
            alertname=alert.alertname,
            status=alert.status,
            fingerprint=alert.fingerprint,
        )
    return {"received": len(alerts), "stored": len(stored)}


def _filters() -> dict[str, str]:
    """The ``alertname`` and ``status`` query filters; a bad one is a 400 naming it."""
    for name in request.args:
        if name not in _FILTERS:
            raise RequestError(400, f"{name} is not a filter; use {' or '.join(_FILTERS)}", name)
        if len(request.args.getlist(name)) > 1:
            raise RequestError(400, f"{name} must be given at most once", name)
    # An empty value means "any", as an HTML form submits it.
    filters = {name: value for name, value in request.args.items() if value}
    if "alertname" in filters and not _ALERTNAME.fullmatch(filters["alertname"]):
        raise RequestError(400, "alertname must be an alert name like HighErrorRate", "alertname")
    if "status" in filters and filters["status"] not in STATUSES:
        raise RequestError(400, f"status must be one of {', '.join(STATUSES)}", "status")
    return filters


@routes.get("/pages")
def pages() -> ResponseReturnValue:
    return jsonify([page.as_dict() for page in _oncall().store.pages(**_filters())])


@routes.get("/")
def pages_html() -> ResponseReturnValue:
    filters = _filters()
    return render_template(
        "pages.html", pages=_oncall().store.pages(**filters), filters=filters, statuses=STATUSES
    )


@routes.get("/healthz")
def healthz() -> ResponseReturnValue:
    return {"status": "ok"}


@routes.get("/readyz")
def readyz() -> ResponseReturnValue:
    try:
        _oncall().store.check()
    except sqlite3.Error:
        log.exception("readiness_check_failed")
        return jsonify(error="the pages database cannot be read"), 503
    return {"status": "ready"}


@routes.get("/metrics")
def metrics() -> ResponseReturnValue:
    return Response(_oncall().metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
