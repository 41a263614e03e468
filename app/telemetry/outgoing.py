"""Client spans for calls to other services, carrying W3C trace context.

One span per call, named by the route template: the raw URL would put customer ids into every
trace, and a generic HTTP-client instrumentation adds a second span and its own overhead to
each call for nothing the lab needs.
"""

from __future__ import annotations

from types import TracebackType

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from app.telemetry.spans import Step, step


class client_span:
    """``with client_span(...) as (span, headers):`` a CLIENT span for one call, and the
    headers that carry its context to the callee."""

    __slots__ = ("_headers", "_step")

    def __init__(
        self, tracer: trace.Tracer, name: str, *, method: str, route: str, peer: str
    ) -> None:
        attributes = {"http.method": method, "http.route": route, "peer.service": peer}
        self._step: Step = step(tracer, name, kind=SpanKind.CLIENT, attributes=attributes)
        self._headers: dict[str, str] = {}
        propagate.inject(self._headers, context=trace.set_span_in_context(self._step.span))

    def __enter__(self) -> tuple[trace.Span, dict[str, str]]:
        return self._step.span, self._headers

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._step.__exit__(exc_type, exc, traceback)
