"""The services keep serving when the trace backend is gone, and say what they lost.

Prometheus and Alertmanager need no test of this kind: they pull from the services (scrapes)
and receive from Prometheus, so no service holds a client of either; only the OTLP export
path pushes, and it is the one exercised here.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from opentelemetry.sdk.trace import SpanProcessor, Tracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from prometheus_client import CollectorRegistry

from app.scoring import create_app as create_scoring
from app.telemetry import EXTENSION_KEY
from tests.unit.services import APPLICANT, make_features, scoring_settings, served

CLOSED_PORT = "http://127.0.0.1:9"  # discard port: nothing listens on it here
QUEUE_SIZE = 128
REQUESTS = 2_000
CLIENTS = 4


@pytest.fixture
def unreachable_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", CLOSED_PORT)
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", str(QUEUE_SIZE))
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "32")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    # Each failed export holds the export thread at most this long, not the default 10 s.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")


@pytest.fixture
def features(tmp_path, unreachable_collector: None) -> Iterator[Flask]:
    app = make_features(tmp_path)
    yield app
    shutdown_tracing(app)


@pytest.fixture
def features_url(features: Flask) -> Iterator[str]:
    with served(features) as url:
        yield url


@pytest.fixture
def scoring(tmp_path, features_url: str) -> Iterator[Flask]:
    app = create_scoring(scoring_settings(tmp_path, features_url))
    yield app
    shutdown_tracing(app)


def span_processors(app: Flask) -> tuple[SpanProcessor, ...]:
    """The processors every span of ``app`` goes through, as its provider built them.

    The multi-processor a provider shares with its tracers has no public list of its members.
    """
    tracer = app.extensions[EXTENSION_KEY].tracer
    assert isinstance(tracer, Tracer)
    return tracer.span_processor._span_processors


def shutdown_tracing(app: Flask) -> None:
    for processor in span_processors(app):
        processor.shutdown()


def dropped(registry: CollectorRegistry) -> float:
    return sum(
        registry.get_sample_value("otel_spans_dropped_total", {"reason": reason}) or 0.0
        for reason in ("queue_full", "export_failed")
    )


def serve(app: Flask, requests: int) -> list[int]:
    client = app.test_client()
    return [client.post("/predict", json=APPLICANT).status_code for _ in range(requests)]


def test_scoring_serves_every_request_while_spans_cannot_be_exported(scoring: Flask) -> None:
    registry = scoring.extensions[EXTENSION_KEY].registry

    # Concurrent clients, as a gthread worker serves them, while the exporter keeps failing.
    with ThreadPoolExecutor(CLIENTS) as pool:
        batches = list(pool.map(serve, [scoring] * CLIENTS, [REQUESTS // CLIENTS] * CLIENTS))

    assert [status for batch in batches for status in batch] == [200] * REQUESTS
    # Each request makes several spans (server, validation, lookup, HTTP call, inference).
    assert dropped(registry) > QUEUE_SIZE
    assert registry.get_sample_value("otel_spans_dropped_total", {"reason": "queue_full"}) > 0


@pytest.mark.parametrize("service", ["scoring", "features"])
def test_spans_leave_the_request_path_through_one_bounded_batch_queue(
    request: pytest.FixtureRequest, service: str
) -> None:
    app = request.getfixturevalue(service)
    processors = span_processors(app)

    assert len(processors) == 1
    (processor,) = processors
    assert not isinstance(processor, SimpleSpanProcessor)
    assert isinstance(processor, BatchSpanProcessor)
    # The queue is a bounded deque: a dead backend costs at most this many spans of memory.
    assert processor._batch_processor._queue.maxlen == QUEUE_SIZE
