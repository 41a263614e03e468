"""Light spans: a request's own span, and steps, children of the current span that never
become current themselves.

A sampled request's span and its steps are recorded without the SDK's span machinery; alone, a
step is an ordinary SDK span. Both must end in the same exporter with the same meaning, and a
request's span must be sampled, identified and flagged as the SDK's tracer would do it.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.telemetry import step
from app.telemetry.otlp_json import encode_request
from app.telemetry.outgoing import client_span
from app.telemetry.spans import start_span


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


def test_a_step_is_a_child_of_the_current_span_and_leaves_it_current(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with (
        tracer.start_as_current_span("POST /predict") as server,
        step(tracer, "inference", attributes={"model.version": "v1"}) as span,
    ):
        span.set_attribute("model.decision", "approve")
        assert trace.get_current_span() is server
    (inference,) = [span for span in exporter.get_finished_spans() if span.name == "inference"]
    assert inference.parent is not None
    assert inference.parent.span_id == server.get_span_context().span_id
    assert dict(inference.attributes or {}) == {"model.version": "v1", "model.decision": "approve"}
    assert inference.end_time is not None
    assert inference.status.status_code is StatusCode.UNSET


@pytest.fixture(params=["inside a request", "alone"])
def request_span(request: pytest.FixtureRequest, tracer: trace.Tracer) -> Iterator[None]:
    if request.param == "alone":
        yield
        return
    with tracer.start_as_current_span("POST /predict"):
        yield


def finished_step(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [span for span in exporter.get_finished_spans() if span.name == name]
    return span


def test_an_exception_marks_the_step_as_failed_and_goes_on(
    tracer: trace.Tracer, exporter: InMemorySpanExporter, request_span: None
) -> None:
    with pytest.raises(IndexError), step(tracer, "inference"):
        raise IndexError("tuple index out of range")
    span = finished_step(exporter, "inference")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "IndexError: tuple index out of range"
    assert [event.name for event in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"] == "IndexError"
    assert "tuple index out of range" in span.events[0].attributes["exception.stacktrace"]


def test_an_exit_is_no_error_of_the_step(
    tracer: trace.Tracer, exporter: InMemorySpanExporter, request_span: None
) -> None:
    with pytest.raises(SystemExit), step(tracer, "validate"):
        raise SystemExit(0)
    span = finished_step(exporter, "validate")
    assert span.status.status_code is StatusCode.UNSET
    assert not span.events


def test_an_ok_status_is_final_and_an_ended_step_changes_no_more(
    tracer: trace.Tracer, exporter: InMemorySpanExporter, request_span: None
) -> None:
    with step(tracer, "inference") as span:
        span.set_status(Status(StatusCode.OK))
        span.set_status(StatusCode.ERROR, "too late")
    span.set_attribute("after", True)
    span.end()
    ended = finished_step(exporter, "inference")
    assert ended.status.status_code is StatusCode.OK
    assert "after" not in (ended.attributes or {})


def test_a_step_shares_its_request_s_trace_resource_and_scope(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("POST /predict") as server, step(tracer, "validate"):
        pass
    validate = finished_step(exporter, "validate")
    request = finished_step(exporter, "POST /predict")
    assert validate.context.trace_id == server.get_span_context().trace_id
    assert validate.context.span_id != server.get_span_context().span_id
    assert validate.context.trace_flags.sampled
    assert validate.resource is request.resource
    assert validate.instrumentation_scope == request.instrumentation_scope
    encoded = orjson.loads(encode_request(exporter.get_finished_spans()))
    (resource_spans,) = encoded["resourceSpans"]
    (scope_spans,) = resource_spans["scopeSpans"]
    assert [span["name"] for span in scope_spans["spans"]] == ["validate", "POST /predict"]


def test_a_step_of_an_unsampled_request_is_not_recorded_but_carries_the_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /predict") as server:
        call, headers = client_span(tracer, "lookup", method="GET", route="/c", peer="features")
        with call as span:
            assert not span.is_recording()
    sent = trace.get_current_span(TraceContextTextMapPropagator().extract(headers))
    assert sent.get_span_context().trace_id == server.get_span_context().trace_id
    assert not sent.get_span_context().trace_flags.sampled
    assert exporter.get_finished_spans() == ()


def test_a_client_span_hands_its_own_context_to_the_callee(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("POST /predict") as server:
        call, headers = client_span(
            tracer, "feature_lookup", method="GET", route="/c", peer="features"
        )
        with call as span:
            assert trace.get_current_span() is server
            sent = trace.get_current_span(TraceContextTextMapPropagator().extract(headers))
            assert sent.get_span_context().span_id == span.get_span_context().span_id
            assert sent.get_span_context().trace_id == server.get_span_context().trace_id
    (lookup,) = [span for span in exporter.get_finished_spans() if span.name == "feature_lookup"]
    assert lookup.kind is SpanKind.CLIENT
    assert lookup.end_time is not None


# --- a request's own span -----------------------------------------------------------------

CALLER = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
REQUEST_ATTRIBUTES = {"http.method": "POST", "http.route": "/predict"}


def tracer_with(sampler: Sampler, exporter: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test", "1.0")


def started_both_ways(
    sampler: Sampler, headers: dict[str, str]
) -> tuple[trace.Span, trace.Span, InMemorySpanExporter]:
    """The same request's span, started by the SDK's tracer and by ``start_span``, ended."""
    exporter = InMemorySpanExporter()
    tracer = tracer_with(sampler, exporter)
    spans = []
    for start in (tracer.start_span, lambda name, **kw: start_span(tracer, name, **kw)):
        span = start(
            "POST /predict",
            context=TraceContextTextMapPropagator().extract(headers),
            kind=SpanKind.SERVER,
            attributes=REQUEST_ATTRIBUTES,
        )
        span.set_attribute("http.status_code", 200)
        span.end()
        spans.append(span)
    return spans[0], spans[1], exporter


@pytest.mark.parametrize("headers", [{}, CALLER], ids=["new trace", "caller's trace"])
def test_a_request_span_is_recorded_as_the_sdk_records_it(headers: dict[str, str]) -> None:
    by_sdk, light, exporter = started_both_ways(ParentBased(ALWAYS_ON), headers)
    sdk_span, light_span = exporter.get_finished_spans()

    # Not the SDK's span object, but the same finished span from it.
    assert isinstance(by_sdk, SdkSpan) and not isinstance(light, SdkSpan)

    for finished in (sdk_span, light_span):
        assert finished.name == "POST /predict"
        assert finished.kind is SpanKind.SERVER
        assert dict(finished.attributes or {}) == {**REQUEST_ATTRIBUTES, "http.status_code": 200}
    assert light_span.resource is sdk_span.resource
    assert light_span.instrumentation_scope == sdk_span.instrumentation_scope
    assert light_span.context.trace_flags == sdk_span.context.trace_flags
    assert light_span.context.trace_flags.sampled
    if headers:
        for finished in (sdk_span, light_span):
            assert format(finished.context.trace_id, "032x") == CALLER["traceparent"][3:35]
            assert finished.parent is not None and finished.parent.is_remote
            assert format(finished.parent.span_id, "016x") == CALLER["traceparent"][36:52]
    else:
        assert light_span.parent is None
        assert light_span.context.trace_id != sdk_span.context.trace_id


def test_a_request_span_the_sampler_drops_still_carries_a_trace() -> None:
    by_sdk, light, exporter = started_both_ways(ALWAYS_OFF, {})
    assert exporter.get_finished_spans() == ()
    assert not light.is_recording()
    assert light.get_span_context().is_valid
    assert light.get_span_context().trace_flags == by_sdk.get_span_context().trace_flags
    assert not light.get_span_context().trace_flags.sampled


def test_a_request_span_continues_an_unsampled_caller_unsampled() -> None:
    unsampled = {"traceparent": CALLER["traceparent"][:-2] + "00"}
    _, light, exporter = started_both_ways(ParentBased(ALWAYS_ON), unsampled)
    assert exporter.get_finished_spans() == ()
    assert format(light.get_span_context().trace_id, "032x") == CALLER["traceparent"][3:35]


class _Tagging(Sampler):
    """Samples everything, and adds an attribute and a trace state entry, as samplers may."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None):
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE,
            {**(attributes or {}), "sampler.rule": "all"},
            TraceState([("obslab", "tagged")]),
        )

    def get_description(self) -> str:
        return "Tagging"


def test_a_request_span_takes_the_sampler_s_attributes_and_trace_state() -> None:
    _, light, exporter = started_both_ways(_Tagging(), {})
    _, light_span = exporter.get_finished_spans()
    assert light_span.attributes["sampler.rule"] == "all"
    assert light.get_span_context().trace_state.get("obslab") == "tagged"


def test_under_another_tracer_a_request_span_is_that_tracer_s() -> None:
    span = start_span(trace.NoOpTracer(), "POST /predict", kind=SpanKind.SERVER)
    assert not span.is_recording()
    assert not span.get_span_context().is_valid


def test_a_request_span_in_an_empty_context_starts_a_trace_even_inside_another_span(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    """An empty context (a caller that sent no trace context) is no context at all: the span
    then found current (a test's, a CLI's) is no parent."""
    with tracer.start_as_current_span("outer") as outer:
        for started in (
            tracer.start_span("by the SDK", context=Context()),
            start_span(tracer, "light", context=Context()),
            start_span(tracer, "child of the current span"),
        ):
            started.end()
    by_sdk, light, child, _ = exporter.get_finished_spans()

    assert by_sdk.parent is None and light.parent is None
    assert light.context.trace_id != outer.get_span_context().trace_id
    assert child.parent == outer.get_span_context()
