"""Fixtures for unit tests: fresh metrics registries, in-memory spans, clean global state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from app.telemetry import batch
from app.telemetry.batch import UpdateBatch
from app.telemetry.logging import close_logs, end_request_fields


@pytest.fixture(autouse=True)
def _reset_process_wide_state() -> Iterator[None]:
    """structlog's configuration, its log writer and the fields bound for log lines are
    global. The writer is closed within the test, so the test's capture gets its lines."""
    yield
    close_logs()
    structlog.reset_defaults()
    end_request_fields()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A provider that hands every finished span to ``span_exporter`` synchronously."""
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: "test"}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def held_batch(monkeypatch: pytest.MonkeyPatch) -> UpdateBatch:
    """The process's telemetry batch, replaced by one whose thread does not apply it on its
    own within a test: what waits in it waits for a reader or a flush. Ask for it before the
    app, so that the app's metrics read it."""
    held = UpdateBatch(interval=3600)
    monkeypatch.setattr(batch, "BATCH", held)
    for method in ("later", "count", "attach", "apply"):
        monkeypatch.setattr(batch, method, getattr(held, method))
    return held
