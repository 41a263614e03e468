"""Per-request telemetry: a server span, a request id, RED metrics with exemplars, a log line.

The server span is made here rather than by opentelemetry-instrumentation-flask: that
instrumentation collects a dozen attributes twice per request and costs about twice the
rest of this module together, and its ``http.target`` would put raw paths, customer ids
included, into every trace.

What can wait goes to the telemetry batch (:mod:`app.telemetry.batch`): the request's metrics
and its log line (:func:`app.telemetry.logging.log_later`).
"""

from __future__ import annotations

import functools
import random
from time import perf_counter
from typing import Any

import structlog
from flask import Flask, Request, Response, request
from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TraceFlags
from werkzeug.routing import Rule

from app.telemetry.http_metrics import UNMATCHED, HttpMetrics, method_label
from app.telemetry.logging import begin_request_fields, end_request_fields, log_later
from app.telemetry.propagation import caller_context
from app.telemetry.spans import start_span

REQUEST_ID_HEADER = "X-Request-ID"

# Headers are read from the WSGI environ: werkzeug's header view converts and checks the
# name on every read.
_REQUEST_ID_KEY = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")

#: Routes polled by machines: counted in metrics, but neither traced nor logged.
QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})

_MAX_REQUEST_ID_LENGTH = 128

# Kept in the WSGI environ rather than flask.g: g belongs to the app context, which a test
# (or a CLI command) may hold across several requests.
_STARTED = "obslab.started"
_REQUEST_ID = "obslab.request_id"
_STATUS = "obslab.status"
_SPAN = "obslab.span"
_CONTEXT_TOKEN = "obslab.context_token"


def request_id_from(header: str | None) -> str:
    """The caller's request id if it is safe to echo and log, else a fresh one."""
    if (
        header
        and len(header) <= _MAX_REQUEST_ID_LENGTH
        and header.isascii()
        and header.isprintable()
    ):
        return header
    # An identifier, not a secret: the same generator as OTel's span ids, and no getrandom(2)
    # (which lets go of the GIL) on every request.
    return f"{random.getrandbits(128):032x}"


def _current_request() -> Request:
    """The request behind Flask's ``request`` proxy: each attribute read through the proxy
    looks the request up again."""
    return request._get_current_object()  # type: ignore[attr-defined]


def logs_failure(environ: dict[str, Any]) -> bool:
    """Whether the request's log line will carry an exception that ends the request: true
    once :class:`RequestTelemetry` has seen the request start."""
    return _STARTED in environ


class RequestTelemetry:
    """Flask request hooks feeding the tracer, :class:`HttpMetrics` and the request log."""

    def __init__(self, metrics: HttpMetrics, tracer: trace.Tracer, instance: str) -> None:
        self._metrics = metrics
        self._tracer = tracer
        self._instance = {"instance": instance} if instance else {}

    @functools.cached_property
    def _log(self) -> Any:
        """The request logger, resolved at the first request and kept: structlog's lazy proxy
        would rebuild it from the configuration on every line."""
        return structlog.get_logger("obslab.request").bind()

    def register(self, app: Flask) -> None:
        """Hook into ``app``."""
        # First in line, so work done by other hooks (auth) is inside the span and timed.
        app.before_request_funcs.setdefault(None, []).insert(0, self._before)
        app.after_request(self._after)
        app.teardown_request(self._teardown)

    def _before(self) -> None:
        current = _current_request()
        environ = current.environ
        environ[_STARTED] = perf_counter()
        request_id = environ[_REQUEST_ID] = request_id_from(environ.get(_REQUEST_ID_KEY))
        # Afresh, not added to: a gthread worker serves request after request on one thread,
        # and fields bound outside any request must not ride on this one's lines.
        begin_request_fields(request_id=request_id, **self._instance)

        rule = current.url_rule
        if rule is None or rule.rule not in QUIET_ROUTES:
            self._start_span(current, rule)

    def _start_span(self, current: Request, rule: Rule | None) -> None:
        """Start the server span, continuing the caller's trace, and make it current."""
        environ = current.environ
        method = current.method
        # The attribute names opentelemetry-instrumentation-requests uses by default, so
        # server and client spans (and `obslab trace`) agree.
        attributes = {"http.method": method, "http.scheme": current.scheme}
        if rule is not None:
            attributes["http.route"] = rule.rule
        span = start_span(
            self._tracer,
            f"{method} {rule.rule}" if rule is not None else method,
            context=caller_context(environ),
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        environ[_SPAN] = span
        environ[_CONTEXT_TOKEN] = context.attach(trace.set_span_in_context(span))

    def _after(self, response: Response) -> Response:
        environ = _current_request().environ
        environ[_STATUS] = response.status_code
        request_id = environ.get(_REQUEST_ID)
        if request_id is not None:  # None when a URL value preprocessor failed before us
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    def _teardown(self, exc: BaseException | None) -> None:
        current = _current_request()
        environ = current.environ
        started = environ.get(_STARTED)
        if started is None:
            return
        seconds = perf_counter() - started
        rule = current.url_rule
        route = rule.rule if rule is not None else UNMATCHED
        method = method_label(current.method)
        # No status means the view raised past Flask's error handling: the client gets a 500.
        status = environ.get(_STATUS, 500)
        span = environ.get(_SPAN)
        # Only a sampled trace can be found from an exemplar. (A SpanContext is a tuple.)
        trace_id, _, _, flags, _, _ = (span or trace.INVALID_SPAN).get_span_context()
        exemplar = format(trace_id, "032x") if flags & TraceFlags.SAMPLED else None

        self._metrics.observe(route, method, status, seconds, exemplar)
        if route not in QUIET_ROUTES or exc is not None:
            self._log_request(route, method, status, seconds, exc)
        if span is not None:
            self._end_span(span, status, exc)
            context.detach(environ[_CONTEXT_TOKEN])
        end_request_fields()

    def _log_request(
        self, route: str, method: str, status: int, seconds: float, exc: BaseException | None
    ) -> None:
        # The route template, never the raw path: paths carry customer ids.
        fields: dict[str, Any] = {
            "route": route,
            "method": method,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
        }
        if exc is not None:
            fields["exc_info"] = exc
        level = "error" if exc is not None or status >= 500 else "info"
        log_later(self._log, level, "request", **fields)

    @staticmethod
    def _end_span(span: trace.Span, status: int, exc: BaseException | None) -> None:
        span.set_attribute("http.status_code", status)
        if exc is not None:
            span.record_exception(exc)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
