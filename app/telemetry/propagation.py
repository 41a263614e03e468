"""Trace context across HTTP: read from the headers of a request served, written into the
headers of a call made.

Both go through the global propagator (``OTEL_PROPAGATORS``). Under the default one, W3C
trace context then baggage, the common cases take a shortcut to the same result: a request
that carries no trace headers (every request from outside), and a call made with no baggage
in its context (every call between the lab's services). Reading or writing through the
propagators costs a score of calls apiece, on every request.
"""

from __future__ import annotations

import functools
from typing import Any

from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# The environ keys of the headers the default propagator reads; ``tracestate`` means nothing
# without ``traceparent``.
_TRACEPARENT_KEY = "HTTP_TRACEPARENT"
_BAGGAGE_KEY = "HTTP_BAGGAGE"

#: The version of W3C trace context written (https://www.w3.org/TR/trace-context/).
_VERSION = "00"


@functools.lru_cache(maxsize=4)
def _is_default(textmap: TextMapPropagator) -> bool:
    """Whether ``textmap`` is the default propagator: W3C trace context, then baggage."""
    kinds = [type(each) for each in getattr(textmap, "_propagators", ())]
    return type(textmap) is CompositePropagator and kinds == [
        TraceContextTextMapPropagator,
        W3CBaggagePropagator,
    ]


def caller_context(environ: dict[str, Any]) -> Context:
    """The trace context the caller sent in the headers of a request, from its WSGI
    ``environ``."""
    textmap = propagate.get_global_textmap()
    if _TRACEPARENT_KEY not in environ and _BAGGAGE_KEY not in environ and _is_default(textmap):
        return Context()  # what reading nothing gives
    return textmap.extract(environ, getter=wsgi_getter)


def call_headers(span: trace.Span) -> dict[str, str]:
    """The headers that make the callee of a call a child of ``span``, with the current
    context's baggage."""
    textmap = propagate.get_global_textmap()
    if not _is_default(textmap) or baggage.get_all():
        headers: dict[str, str] = {}
        textmap.inject(headers, context=trace.set_span_in_context(span))
        return headers
    sent = span.get_span_context()
    if sent == trace.INVALID_SPAN_CONTEXT:
        return {}
    # A SpanContext is a tuple: unpacked, its fields cost no property call apiece.
    trace_id, span_id, _, flags, state, _ = sent
    headers = {"traceparent": f"{_VERSION}-{trace_id:032x}-{span_id:016x}-{flags:02x}"}
    if state:
        headers["tracestate"] = state.to_header()
    return headers
