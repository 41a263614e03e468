"""Step spans: children of the current span that never become current themselves."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.telemetry import step
from app.telemetry.outgoing import client_span


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


def test_an_exception_marks_the_step_as_failed_and_goes_on(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(IndexError), step(tracer, "inference"):
        raise IndexError("tuple index out of range")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "IndexError: tuple index out of range"
    assert [event.name for event in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"] == "IndexError"


def test_an_exit_is_no_error_of_the_step(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(SystemExit), step(tracer, "validate"):
        raise SystemExit(0)
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET
    assert not span.events


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
