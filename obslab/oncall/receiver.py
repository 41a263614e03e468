"""The oncall receiver: Alertmanager webhooks in, pages out as JSON, HTML and metrics.

``POST /webhook`` answers 200 only once the notification is committed to disk, so an
acknowledged page survives a crash; anything else is refused whole with a 4xx naming the
problem, and Alertmanager's retries of a stored notification are absorbed by the store.
``POST /watchdog`` takes the always-firing Watchdog for the dead-man's switch
(``obslab.oncall.deadman``). The page list tells pages from tickets, and asks Alertmanager
(``OBSLAB_ALERTMANAGER_URL``) what each firing page is now: still firing, held back by an
inhibition, or gone without a resolve (``obslab.oncall.state``). ``GET /runbook`` serves the
runbook every alert links to; like every read, it needs no token.
"""

from __future__ import annotations

import hmac
import math
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import orjson
import structlog
from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import RequestEntityTooLarge

from app import errors
from app.errors import RequestError
from app.logs import configure_logging
from app.settings import from_prefixed_env, state_dir
from obslab.errors import ObslabError
from obslab.oncall import deadman, runbook, state
from obslab.oncall.alertmanager import AlertmanagerReader, AlertmanagerUnavailable, Snapshot
from obslab.oncall.metrics import OncallMetrics, RejectReason
from obslab.oncall.payload import STATUSES, Alert, PayloadError, parse_notification
from obslab.oncall.store import KINDS, PageStore

ENV_PREFIX = "OBSLAB"
DEFAULT_MAX_BODY = 1024 * 1024

SERVICE = "oncall"
_FILTERS = ("alertname", "status", "kind", "state")
# Prometheus requires alert names to be metric names.
_ALERTNAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

routes = Blueprint("oncall", __name__)


class ConfigError(ObslabError):
    """A setting the receiver cannot start with; the message names its environment variable."""


@dataclass(frozen=True, slots=True)
class _Oncall:
    token: bytes
    store: PageStore
    metrics: OncallMetrics
    switch: deadman.DeadMansSwitch
    alertmanager: AlertmanagerReader | None
    runbook_html: str


def create_app(config: Mapping[str, object] | None = None) -> Flask:
    """The receiver; settings come from ``OBSLAB_*`` variables, then from ``config``.

    ``LOG_FILE`` (default ``<state>/logs/oncall.jsonl``; empty for stdout) takes the JSON
    log lines, the same shared logging as the services.
    """
    app = errors.Service(__name__)
    app.config.update(
        ONCALL_TOKEN="",
        ONCALL_DB="",
        MAX_CONTENT_LENGTH=DEFAULT_MAX_BODY,
        WATCHDOG_TIMEOUT_SECONDS=deadman.DEFAULT_TIMEOUT_SECONDS,
        ALERTMANAGER_URL="",
        LOG_FILE=str(state_dir() / "logs" / f"{SERVICE}.jsonl"),
    )
    # Text settings (the token, the database path) are taken as written, never as JSON.
    from_prefixed_env(app.config, ENV_PREFIX)
    app.config.update(config or {})
    log_file = app.config["LOG_FILE"]
    configure_logging(SERVICE, _version(), log_file=Path(log_file) if log_file else None)
    _check_max_body(app.config["MAX_CONTENT_LENGTH"])
    store = _store(app.config["ONCALL_DB"])
    switch = deadman.DeadMansSwitch(
        store, _watchdog_timeout(app.config["WATCHDOG_TIMEOUT_SECONDS"])
    )
    app.extensions["oncall"] = _Oncall(
        token=_token(app.config["ONCALL_TOKEN"]),
        store=store,
        metrics=OncallMetrics(
            watchdog_last_seen=lambda: _timestamp(switch.last_seen()),
            dead_mans_switch=switch.check,
            watchdog_timeout=switch.timeout.total_seconds(),
        ),
        switch=switch,
        alertmanager=_alertmanager(app.config["ALERTMANAGER_URL"]),
        runbook_html=runbook.render(runbook.runbook_markdown()),
    )
    errors.init_app(app)
    app.register_blueprint(routes)
    return app


def _version() -> str:
    try:
        return version("obslab")
    except PackageNotFoundError:
        return "unknown"


def _timestamp(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


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


def _watchdog_timeout(value: object) -> timedelta:
    seconds = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(
            f"{ENV_PREFIX}_WATCHDOG_TIMEOUT_SECONDS must be a positive number of seconds "
            f"(longer than the Watchdog's repeat interval), not {value!r}"
        )
    return timedelta(seconds=seconds)


def _alertmanager(value: object) -> AlertmanagerReader | None:
    if value in ("", None):
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(
            f"{ENV_PREFIX}_ALERTMANAGER_URL must be Alertmanager's http(s) URL, not {value!r}"
        )
    return AlertmanagerReader(value)


def _check_max_body(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(
            f"{ENV_PREFIX}_MAX_CONTENT_LENGTH must be a positive number of bytes, not {value!r}"
        )


def _oncall() -> _Oncall:
    return current_app.extensions["oncall"]


def _reject(reason: RejectReason, status: int, message: str, field: str) -> Response:
    _oncall().metrics.rejected.labels(reason).inc()
    _log().warning("webhook_rejected", reason=reason, field=field)
    response = jsonify(RequestError(status, message, field).body())
    response.status_code = status
    return response


def _authorized(expected: bytes) -> bool:
    credentials = request.authorization
    if credentials is None or credentials.type != "bearer" or not credentials.token:
        return False
    return hmac.compare_digest(credentials.token.encode(), expected)


def _notification() -> list[Alert] | Response:
    """The alerts of an authorized, well-formed webhook request, or the refusal to answer."""
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
        return parse_notification(orjson.loads(body))
    except orjson.JSONDecodeError as error:
        return _reject("malformed", 400, f"body is not valid JSON: {error}", "body")
    except PayloadError as error:
        return _reject("malformed", 400, str(error), error.field)


@routes.post("/webhook")
def webhook() -> ResponseReturnValue:
    alerts = _notification()
    if isinstance(alerts, Response):
        return alerts
    oncall = _oncall()
    try:
        stored = oncall.store.add(alerts)
    except sqlite3.Error:
        _log().exception("page_store_failed", alerts=len(alerts))
        # A 5xx makes Alertmanager retry the notification later; a 4xx would drop it.
        return jsonify(error="pages cannot be stored right now"), 503
    for alert in stored:
        oncall.metrics.notifications.labels(alert.status).inc()
        _log().info(
            "page_stored",
            alertname=alert.alertname,
            status=alert.status,
            severity=alert.labels.get("severity", ""),
            fingerprint=alert.fingerprint,
        )
    return {"received": len(alerts), "stored": len(stored)}


@routes.post("/watchdog")
def watchdog() -> ResponseReturnValue:
    """The dead-man's switch's heartbeat; only the Watchdog belongs here."""
    alerts = _notification()
    if isinstance(alerts, Response):
        return alerts
    for index, alert in enumerate(alerts):
        if alert.alertname != deadman.WATCHDOG:
            return _reject(
                "malformed",
                400,
                f"alerts[{index}].labels.alertname must be {deadman.WATCHDOG}: only the "
                "Watchdog is routed here; other alerts go to /webhook",
                f"alerts[{index}].labels.alertname",
            )
    # A resolved Watchdog says it stopped: that is no heartbeat.
    heartbeat = any(alert.status == "firing" for alert in alerts)
    oncall = _oncall()
    if heartbeat:
        try:
            oncall.switch.arrived()
        except sqlite3.Error:
            _log().exception("watchdog_store_failed")
            return jsonify(error="the Watchdog cannot be recorded right now"), 503
        oncall.metrics.watchdogs.inc()
    else:
        _log().warning("watchdog_resolved")
    return {"received": len(alerts), "heartbeat": heartbeat}


def _filters() -> dict[str, str]:
    """The query filters; a bad one is a 400 naming it."""
    for name in request.args:
        if name not in _FILTERS:
            # A parameter without a name (``?=x``) is still named: as the query string.
            raise RequestError(
                400, f"{name!r} is not a filter; use {', '.join(_FILTERS)}", name or "query"
            )
        if len(request.args.getlist(name)) > 1:
            raise RequestError(400, f"{name} must be given at most once", name)
    # An empty value means "any", as an HTML form submits it.
    filters = {name: value for name, value in request.args.items() if value}
    if "alertname" in filters and not _ALERTNAME.fullmatch(filters["alertname"]):
        raise RequestError(400, "alertname must be an alert name like HighErrorRate", "alertname")
    for name, allowed in (("status", STATUSES), ("kind", KINDS), ("state", state.STATES)):
        if name in filters and filters[name] not in allowed:
            raise RequestError(400, f"{name} must be one of {', '.join(allowed)}", name)
    return filters


def _snapshot() -> tuple[Snapshot | None, str | None]:
    """What Alertmanager holds, or None and why it cannot be told."""
    reader = _oncall().alertmanager
    if reader is None:
        return None, f"{ENV_PREFIX}_ALERTMANAGER_URL is not set"
    try:
        return reader.snapshot(), None
    except AlertmanagerUnavailable as error:
        _log().warning("alertmanager_unavailable", error=str(error))
        return None, f"Alertmanager at {reader.base_url} cannot be asked"


def _listed(filters: dict[str, str], snapshot: Snapshot | None) -> list[dict[str, object]]:
    oncall = _oncall()
    oncall.switch.check()
    wanted_state = filters.pop("state", None)
    described = state.describe(oncall.store.pages(**filters), snapshot)
    return [page for page in described if wanted_state in (None, page["state"])]


@routes.get("/pages")
def pages() -> ResponseReturnValue:
    snapshot, _ = _snapshot()
    return jsonify(_listed(_filters(), snapshot))


@routes.get("/held-back")
def held_back() -> ResponseReturnValue:
    """The alerts an inhibition holds back right now; Alertmanager never sends them."""
    snapshot, problem = _snapshot()
    if snapshot is None:
        return jsonify(error=problem), 503
    return jsonify(state.held_back(snapshot))


@routes.get("/")
def pages_html() -> ResponseReturnValue:
    filters = _filters()
    snapshot, problem = _snapshot()
    listed = _listed(dict(filters), snapshot)
    switch = _oncall().switch
    return render_template(
        "pages.html",
        sections=[(kind, [page for page in listed if page["kind"] == kind]) for kind in KINDS],
        held_back=state.held_back(snapshot) if snapshot is not None else [],
        alertmanager_problem=problem,
        dead=switch.check(),
        watchdog_last_seen=switch.last_seen(),
        watchdog_timeout=int(switch.timeout.total_seconds()),
        filters=filters,
        statuses=STATUSES,
        kinds=KINDS,
        states=state.STATES,
    )


@routes.get("/runbook")
def runbook_html() -> ResponseReturnValue:
    return render_template("runbook.html", body=_oncall().runbook_html)


@routes.get("/healthz")
def healthz() -> ResponseReturnValue:
    return {"status": "ok"}


@routes.get("/readyz")
def readyz() -> ResponseReturnValue:
    try:
        _oncall().store.check()
    except sqlite3.Error:
        _log().exception("readiness_check_failed")
        return jsonify(error="the pages database cannot be read"), 503
    return {"status": "ready"}


@routes.get("/metrics")
def metrics() -> ResponseReturnValue:
    return Response(_oncall().metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _log() -> structlog.typing.FilteringBoundLogger:
    # Taken where it is used, never at import: loggers are cached on first use, and one cached
    # before create_app() configured logging would keep writing where it was first configured.
    return structlog.get_logger("obslab.oncall")
