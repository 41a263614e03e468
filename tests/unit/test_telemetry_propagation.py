"""Trace context across HTTP: what a served request's headers say, and what a call's headers
carry, must be what the global propagator reads and writes, shortcut or not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.telemetry.propagation import call_headers, caller_context

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

# --- a request served ---------------------------------------------------------------------

CALLER_ENVIRONS = {
    "no trace context": {"HTTP_X_REQUEST_ID": "r-1"},
    "traceparent": {"HTTP_TRACEPARENT": TRACEPARENT},
    "trace state": {"HTTP_TRACEPARENT": TRACEPARENT, "HTTP_TRACESTATE": "lab=1"},
    "baggage alone": {"HTTP_BAGGAGE": "tenant=lab"},
}


@pytest.mark.parametrize("environ", CALLER_ENVIRONS.values(), ids=CALLER_ENVIRONS)
def test_the_caller_s_context_is_what_the_propagator_reads(environ: dict[str, str]) -> None:
    found = caller_context(environ)
    read = propagate.extract(environ, getter=wsgi_getter)

    assert found.keys() == read.keys()
    assert trace.get_current_span(found).get_span_context() == (
        trace.get_current_span(read).get_span_context()
    )
    assert baggage.get_all(found) == baggage.get_all(read)


class CallerHeader(TextMapPropagator):
    """Trace and span ids in ``x-caller``, as B3 or Jaeger carry theirs in headers of their own."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        found = getter.get(carrier, "x-caller")
        if not found:
            return context if context is not None else Context()
        trace_id, span_id = (int(part, 16) for part in found[0].split(":"))
        caller = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(1))
        return trace.set_span_in_context(NonRecordingSpan(caller), context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        sent = trace.get_current_span(context).get_span_context()
        setter.set(carrier, "x-caller", f"{sent.trace_id:x}:{sent.span_id:x}")

    @property
    def fields(self) -> set[str]:
        return {"x-caller"}


@pytest.fixture
def caller_header_too() -> Iterator[None]:
    """W3C trace context and :class:`CallerHeader` as the global propagator."""
    default = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), CallerHeader()])
    )
    yield
    propagate.set_global_textmap(default)


@pytest.mark.usefixtures("caller_header_too")
def test_another_propagator_reads_its_own_headers() -> None:
    found = trace.get_current_span(caller_context({"HTTP_X_CALLER": "ab:cd"}))
    assert found.get_span_context().trace_id == 0xAB
    assert found.get_span_context().span_id == 0xCD


# --- a call made --------------------------------------------------------------------------

SPANS = {
    "sampled": SpanContext(0xAB, 0xCD, is_remote=False, trace_flags=TraceFlags(1)),
    "unsampled": SpanContext(0xAB, 0xCD, is_remote=False, trace_flags=TraceFlags(0)),
    "random trace id": SpanContext(0xAB, 0xCD, is_remote=False, trace_flags=TraceFlags(3)),
    "trace state": SpanContext(
        0xAB, 0xCD, False, TraceFlags(1), TraceState([("lab", "1"), ("vendor", "x")])
    ),
    "invalid": trace.INVALID_SPAN_CONTEXT,
    "no span id": SpanContext(0xAB, 0, is_remote=False, trace_flags=TraceFlags(1)),
}


def written(span: trace.Span) -> dict[str, str]:
    headers: dict[str, str] = {}
    propagate.inject(headers, context=trace.set_span_in_context(span))
    return headers


@pytest.mark.parametrize("span_context", SPANS.values(), ids=SPANS)
def test_a_call_carries_what_the_propagator_writes(span_context: SpanContext) -> None:
    span = NonRecordingSpan(span_context)
    assert call_headers(span) == written(span)


def test_a_call_carries_the_current_baggage() -> None:
    span = NonRecordingSpan(SPANS["sampled"])
    token = context.attach(baggage.set_baggage("tenant", "lab"))
    try:
        headers = call_headers(span)
        assert headers == written(span)
    finally:
        context.detach(token)
    assert headers["baggage"] == "tenant=lab"


@pytest.mark.usefixtures("caller_header_too")
def test_another_propagator_writes_its_own_headers() -> None:
    headers = call_headers(NonRecordingSpan(SPANS["sampled"]))
    assert headers["x-caller"] == "ab:cd"
    assert headers["traceparent"] == f"00-{0xAB:032x}-{0xCD:016x}-01"
