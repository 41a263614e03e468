"""The telemetry batch: work from the request path applied later, never lost, never late for a
reader.

Metric updates and span ends wait in the batch, and a reader must not be able to tell: a read
of the registry, or a flush of the tracer provider, applies what is queued first.
"""

from __future__ import annotations

import logging
import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, Counter

from app.telemetry import batch, step
from app.telemetry.batch import UpdateBatch
from app.telemetry.spans import DeferredEnds, start_span
from tests.unit.processes import succeeds_in_fork, threads_named, wait_for

#: Longer than any test: the batch's thread never applies on its own unless a test says so.
NEVER = 3600.0


def own_value(counter: Counter) -> float:
    """The counter's value read from the counter itself, bypassing its registry."""
    (metric,) = counter.collect()
    (total,) = [sample for sample in metric.samples if sample.name.endswith("_total")]
    return total.value


@pytest.fixture
def later_batch() -> UpdateBatch:
    return UpdateBatch(interval=NEVER)


def test_an_update_waits_and_a_read_of_the_registry_applies_it_first(
    later_batch: UpdateBatch, registry: CollectorRegistry
) -> None:
    later_batch.attach(registry)
    requests = Counter("requests", "Requests.", registry=registry)
    later_batch.later(requests.inc, 2)
    assert own_value(requests) == 0
    assert registry.get_sample_value("requests_total") == 2


def test_a_registry_attached_twice_reads_each_update_once(
    later_batch: UpdateBatch, registry: CollectorRegistry
) -> None:
    later_batch.attach(registry)
    later_batch.attach(registry)
    requests = Counter("requests", "Requests.", registry=registry)
    later_batch.later(requests.inc)
    assert registry.get_sample_value("requests_total") == 1
    assert registry.get_sample_value("requests_total") == 1


def test_counts_made_by_updates_are_added_as_the_batch_ends_one_inc_a_child(
    later_batch: UpdateBatch, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    later_batch.attach(registry)
    bins = Counter("bins", "Predictions by bin.", ("bin",), registry=registry)
    low, high = bins.labels("low"), bins.labels("high")
    added = []
    inc = type(low).inc
    monkeypatch.setattr(type(low), "inc", lambda child, n=1: added.append(n) or inc(child, n))
    for counted in ((low,), (low, high), (low,)):
        later_batch.later(later_batch.count, counted)

    assert registry.get_sample_value("bins_total", {"bin": "low"}) == 3
    assert registry.get_sample_value("bins_total", {"bin": "high"}) == 1
    assert sorted(added) == [1, 3]
    # Added once: the next read finds nothing more to add.
    assert registry.get_sample_value("bins_total", {"bin": "low"}) == 3


def test_the_thread_applies_updates_without_a_reader(registry: CollectorRegistry) -> None:
    requests = Counter("requests", "Requests.", registry=registry)
    UpdateBatch(interval=0.01).later(requests.inc)
    wait_for("the thread to apply the update", lambda: own_value(requests) == 1)


def test_a_forked_child_starts_a_thread_of_its_own(later_batch: UpdateBatch) -> None:
    """A thread does not survive a fork: a gunicorn worker forked after the master queued an
    update must start its own, or its updates would wait for a reader."""
    earlier = set(threading.enumerate())  # other tests' batches run threads too
    later_batch.later(print)  # starts this process's thread, which waits a long interval
    (started,) = threads_named("obslab-telemetry-batch", besides=earlier)

    def child() -> bool:
        before = threads_named("obslab-telemetry-batch")
        later_batch.later(print)
        return before == [] and len(threads_named("obslab-telemetry-batch")) == 1

    assert succeeds_in_fork(child)
    later_batch.later(print)
    assert threads_named("obslab-telemetry-batch", besides=earlier) == [started], (
        "no second thread in the process that has one"
    )


def test_a_failing_update_is_logged_and_the_rest_are_applied_in_order(
    later_batch: UpdateBatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    def fail() -> None:
        raise RuntimeError("broken update")

    later_batch.later(seen.append, 1)
    later_batch.later(fail)
    later_batch.later(seen.append, 2)
    with caplog.at_level(logging.ERROR, logger="app.telemetry.batch"):
        later_batch.apply()
    assert seen == [1, 2]
    assert "broken update" in caplog.text


def test_a_batch_far_behind_is_applied_by_the_caller(
    later_batch: UpdateBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "_MOST_QUEUED", 3)
    seen: list[int] = []
    for number in range(3):
        later_batch.later(seen.append, number)
    assert seen == [0, 1, 2]


def test_updates_from_many_threads_are_all_applied(
    later_batch: UpdateBatch, registry: CollectorRegistry
) -> None:
    later_batch.attach(registry)
    requests = Counter("requests", "Requests.", registry=registry)

    def serve() -> None:
        for _ in range(2000):
            later_batch.later(requests.inc)

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for thread in threads:
        thread.start()
    # Reads race the writers: each applies what has queued so far, and never counts twice.
    reads = [registry.get_sample_value("requests_total") or 0.0 for _ in range(20)]
    for thread in threads:
        thread.join()
    assert reads == sorted(reads)
    assert registry.get_sample_value("requests_total") == 8000


@pytest.fixture
def deferred_provider(span_exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider(active_span_processor=DeferredEnds(), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider


def test_spans_end_in_the_batch_and_a_flush_delivers_them(
    held_batch: UpdateBatch, deferred_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    tracer = deferred_provider.get_tracer("test")
    server = start_span(tracer, "POST /predict", kind=trace.SpanKind.SERVER)
    with trace.use_span(server, end_on_exit=True), step(tracer, "inference") as inference:
        inference.set_attribute("model.decision", "approve")
    server.set_attribute("late", True)  # after its end: ignored, as by the SDK
    assert span_exporter.get_finished_spans() == ()
    assert deferred_provider.force_flush()
    finished = {span.name: span for span in span_exporter.get_finished_spans()}
    assert set(finished) == {"POST /predict", "inference"}
    assert dict(finished["inference"].attributes or {}) == {"model.decision": "approve"}
    assert "late" not in (finished["POST /predict"].attributes or {})
    server_end = finished["POST /predict"].end_time
    inference_end = finished["inference"].end_time
    assert server_end is not None and inference_end is not None
    assert inference_end <= server_end


def test_shutting_the_provider_down_delivers_every_ended_span(
    held_batch: UpdateBatch, deferred_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    start_span(deferred_provider.get_tracer("test"), "GET /features").end()
    assert span_exporter.get_finished_spans() == ()
    deferred_provider.shutdown()
    assert [span.name for span in span_exporter.get_finished_spans()] == ["GET /features"]


def test_under_another_processor_a_span_reaches_it_as_it_ends(
    held_batch: UpdateBatch, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    start_span(tracer_provider.get_tracer("test"), "POST /predict").end()
    assert [span.name for span in span_exporter.get_finished_spans()] == ["POST /predict"]
