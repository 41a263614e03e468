"""Client spans for calls to other services, carrying W3C trace context.

One span per call, named by the route template: the raw URL would put customer ids into every
trace, and a generic HTTP-client instrumentation adds a second span and its own overhead to
each call for nothing the lab needs.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from app.telemetry.propagation import call_headers
from app.telemetry.spans import Step, step


def client_span(
    tracer: trace.Tracer, name: str, *, method: str, route: str, peer: str
) -> tuple[Step, dict[str, str]]:
    """A CLIENT span for one call, to use as ``with call as span:``, and the headers that
    carry its context to the callee."""
    attributes = {"http.method": method, "http.route": route, "peer.service": peer}
    call = step(tracer, name, kind=SpanKind.CLIENT, attributes=attributes)
    return call, call_headers(call.span)
