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


@pytest.fixture(autouse=True)
def _reset_process_wide_state() -> Iterator[None]:
    """structlog's configuration and the fields bound for log lines are global."""
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


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
