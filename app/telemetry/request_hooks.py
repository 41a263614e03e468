"""Per-request telemetry: a request id, RED metrics with trace exemplars, one log line."""

from __future__ import annotations

import uuid
from time import perf_counter

import structlog
from flask import Flask, Response, request
from opentelemetry import trace

from app.telemetry.http_metrics import UNMATCHED, HttpMetrics, method_label

REQUEST_ID_HEADER = "X-Request-ID"

#: Routes polled by machines: still counted in metrics, but not worth a log line each.
QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})

_MAX_REQUEST_ID_LENGTH = 128

# Kept in the WSGI environ rather than flask.g: g belongs to the app context, which a test
# (or a CLI command) may hold across several requests.
_STARTED = "obslab.started"
_REQUEST_ID = "obslab.request_id"
_STATUS = "obslab.status"


def request_id_from(header: str | None) -> str:
    """The caller's request id if it is safe to echo and log, else a fresh one."""
    if (
        header
        and len(header) <= _MAX_REQUEST_ID_LENGTH
        and header.isascii()
        and header.isprintable()
    ):
        return header
    return uuid.uuid4().hex


class RequestTelemetry:
    """Flask request hooks feeding :class:`HttpMetrics` and the request log."""

    def __init__(self, metrics: HttpMetrics, instance: str) -> None:
        self._metrics = metrics
        self._instance = {"instance": instance} if instance else {}
        self._log = structlog.get_logger("obslab.request")

    def register(self, app: Flask) -> None:
        """Hook into ``app``; call it after the OpenTelemetry instrumentation.

        Teardown hooks run in reverse order of registration, so ours then runs while the
        request's span is still current and its trace id can reach the exemplar and the log.
        """
        # First in line, so a request answered early by another hook (auth) is still timed.
        app.before_request_funcs.setdefault(None, []).insert(0, self._before)
        app.after_request(self._after)
        app.teardown_request(self._teardown)

    def _before(self) -> None:
        environ = request.environ
        environ[_STARTED] = perf_counter()
        request_id = environ[_REQUEST_ID] = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        # gthread workers reuse threads: drop whatever the previous request bound.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id, **self._instance)

    def _after(self, response: Response) -> Response:
        environ = request.environ
        environ[_STATUS] = response.status_code
        request_id = environ.get(_REQUEST_ID)
        if request_id is not None:  # None when a URL value preprocessor failed before us
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    def _teardown(self, exc: BaseException | None) -> None:
        environ = request.environ
        started = environ.get(_STARTED)
        if started is None:
            return
        seconds = perf_counter() - started
        rule = request.url_rule
        route = rule.rule if rule is not None else UNMATCHED
        method = method_label(request.method)
        # No status means the view raised past Flask's error handling: the client gets a 500.
        status = environ.get(_STATUS, 500)
        span = trace.get_current_span().get_span_context()
        trace_id = format(span.trace_id, "032x") if span.trace_flags.sampled else None

        self._metrics.observe(route, method, status, seconds, trace_id)
        if route not in QUIET_ROUTES:
            # The route template, never the raw path: paths carry customer ids.
            fields = {
                "route": route,
                "method": method,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
            }
            if exc is not None:
                self._log.error("request", exc_info=exc, **fields)
            elif status >= 500:
                self._log.error("request", **fields)
            else:
                self._log.info("request", **fields)
        structlog.contextvars.clear_contextvars()
