"""Per-request telemetry: a server span, a request id, RED metrics with exemplars, a log line.

The server span is started here, with the tracer's public API, rather than by
opentelemetry-instrumentation-flask: that instrumentation records the raw path (``url.path``,
and ``http.target`` under the older conventions) on every span, and paths such as
``/customers/17/features`` carry customer ids. It has no option to leave an attribute out.
"""

from __future__ import annotations

import secrets
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

import structlog
from flask import Flask, Request, Response, request
from opentelemetry import context, propagate, trace
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.url_attributes import URL_PATH, URL_SCHEME
from opentelemetry.trace import SpanKind, StatusCode

from app.errors import EXCEPTION_LOGGED_BY_REQUEST_LINE
from app.routes import route_of
from app.telemetry.http_metrics import STANDARD_METHODS, HttpMetrics, method_label

REQUEST_ID_HEADER = "X-Request-ID"

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
    return secrets.token_hex(16)


def server_span_attributes(current: Request) -> dict[str, Any]:
    """The stable HTTP server attributes of ``current`` that carry no customer data.

    ``url.path`` only where the path has no parameters, so it equals the route template; a
    path parameter here is a customer id. An unmatched path is left out whole.
    """
    attributes: dict[str, Any] = {
        HTTP_REQUEST_METHOD: current.method if current.method in STANDARD_METHODS else "_OTHER",
        URL_SCHEME: current.scheme,
    }
    try:
        # The Host header as werkzeug checked it; its host_url would build a whole URL first.
        host = urlsplit(f"//{current.host}")
        address, port = host.hostname, host.port or (443 if current.scheme == "https" else 80)
    except ValueError:  # a Host header no URL can hold: the client's mistake, not ours
        address = None
    if address:
        attributes[SERVER_ADDRESS] = address
        attributes[SERVER_PORT] = port
    rule = current.url_rule
    if rule is not None:
        attributes[HTTP_ROUTE] = rule.rule
        if not rule.arguments:
            attributes[URL_PATH] = current.path
    return attributes


class RequestTelemetry:
    """Flask request hooks feeding the tracer, :class:`HttpMetrics` and the request log."""

    def __init__(self, metrics: HttpMetrics, tracer: trace.Tracer, instance: str) -> None:
        self._metrics = metrics
        self._tracer = tracer
        self._instance = {"instance": instance} if instance else {}
        self._log = structlog.get_logger("obslab.request")

    def register(self, app: Flask) -> None:
        """Hook into ``app``. Flask runs app-wide hooks before a blueprint's (the admin API's
        token check), and in the order they came: register before any other app-wide hook, so
        that its work is inside the span and timed."""
        app.before_request(self._before)
        app.after_request(self._after)
        app.teardown_request(self._teardown)

    def _before(self) -> None:
        environ = request.environ
        environ[_STARTED] = perf_counter()
        environ[EXCEPTION_LOGGED_BY_REQUEST_LINE] = True
        request_id = environ[_REQUEST_ID] = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        # Afresh: a worker thread serves request after request, and fields bound in one
        # (or outside any) must not ride on the next one's lines.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id, **self._instance)

        if route_of(request) not in QUIET_ROUTES:
            self._start_span(request)

    def _start_span(self, current: Request) -> None:
        """Start the server span as a child of the caller's, and make it current."""
        rule = current.url_rule
        # A method outside the standard ones is HTTP, so clients cannot name spans.
        method = current.method if current.method in STANDARD_METHODS else "HTTP"
        span = self._tracer.start_span(
            f"{method} {rule.rule}" if rule is not None else method,
            context=propagate.extract(current.headers),
            kind=SpanKind.SERVER,
            attributes=server_span_attributes(current),
        )
        current.environ[_SPAN] = span
        current.environ[_CONTEXT_TOKEN] = context.attach(trace.set_span_in_context(span))

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
        route = route_of(request)
        method = method_label(request.method)
        # No status means the view raised past Flask's error handling: the client gets a 500.
        status = environ.get(_STATUS, 500)
        span: trace.Span | None = environ.get(_SPAN)
        sent = (span or trace.INVALID_SPAN).get_span_context()
        # Only a sampled trace can be found from an exemplar.
        exemplar = trace.format_trace_id(sent.trace_id) if sent.trace_flags.sampled else None

        self._metrics.observe(route, method, status, seconds, exemplar)
        if route not in QUIET_ROUTES or exc is not None:
            self._log_request(route, method, status, seconds, exc)
        if span is not None:
            self._end_span(span, status, exc)
            context.detach(environ[_CONTEXT_TOKEN])
        structlog.contextvars.clear_contextvars()

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
            self._log.error("request", exc_info=exc, **fields)
        elif status >= 500:
            self._log.error("request", **fields)
        else:
            self._log.info("request", **fields)

    @staticmethod
    def _end_span(span: trace.Span, status: int, exc: BaseException | None) -> None:
        span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status)
        if exc is not None:
            span.record_exception(exc)
        if status >= 500:
            span.set_attribute(ERROR_TYPE, type(exc).__qualname__ if exc else str(status))
            span.set_status(StatusCode.ERROR)
        span.end()
