"""The tracer provider of a service: who it is, how it samples, where its spans go."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
)
from opentelemetry.sdk.resources import (
    DEPLOYMENT_ENVIRONMENT,
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    SERVICE_VERSION,
    Resource,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import TraceFlags
from prometheus_client import CollectorRegistry, Counter

from app.settings import state_dir
from app.telemetry.otlp_json import OtlpJsonFileExporter
from app.telemetry.spans import DeferredEnds

#: Why a span never reached the backend: the SDK's reasons, plus a failed export.
DROP_REASONS = ("queue_full", "already_shutdown", "export_failed")


def default_traces_dir() -> Path:
    """Where services write, and ``obslab trace`` reads, ``<service>.jsonl`` span files."""
    return state_dir() / "traces"


def spans_dropped_counter(registry: CollectorRegistry | None) -> Counter:
    """``otel_spans_dropped_total{reason}``; unregistered when ``registry`` is None."""
    counter = Counter(
        "otel_spans_dropped",
        "Finished spans that were never exported, by reason.",
        ("reason",),
        registry=registry,
    )
    for reason in DROP_REASONS:
        counter.labels(reason)
    return counter


def build_tracer_provider(
    service: str,
    version: str,
    environment: str,
    *,
    traces_dir: Path,
    registry: CollectorRegistry | None = None,
) -> TracerProvider:
    """A provider exporting in batches to OTLP/HTTP if configured, else to an OTLP-JSON file.

    The sampler and the batch limits come from the standard ``OTEL_TRACES_SAMPLER*`` and
    ``OTEL_BSP_*`` variables. Spans dropped on the way are counted in ``registry``. Obslab's
    light spans end in the telemetry batch (:class:`DeferredEnds`).
    """
    resource = Resource.create(
        {
            SERVICE_NAME: service,
            SERVICE_VERSION: version,
            DEPLOYMENT_ENVIRONMENT: environment,
            SERVICE_INSTANCE_ID: os.environ.get("OBSLAB_INSTANCE") or str(os.getpid()),
        }
    )
    exporter: SpanExporter
    if os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT) or os.environ.get(
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    ):
        exporter = OTLPSpanExporter()
    else:
        exporter = OtlpJsonFileExporter(traces_dir / f"{service}.jsonl")
    provider = TracerProvider(resource=resource, active_span_processor=DeferredEnds())
    provider.add_span_processor(
        DropCountingBatchSpanProcessor(exporter, spans_dropped_counter(registry))
    )
    return provider


#: Loggers that report each lost span or failed batch in plain text. With the counter they
#: say nothing new, and while the backend is down the queue-full warning ran once per span on
#: the request path.
_QUIETED_LOGGERS = (
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)


class DropCountingBatchSpanProcessor(BatchSpanProcessor):
    """A ``BatchSpanProcessor`` that counts the spans it loses in ``dropped{reason}``."""

    def __init__(self, exporter: SpanExporter, dropped: Counter, **options: Any) -> None:
        for name in _QUIETED_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        super().__init__(_FailedExportCounter(exporter, dropped.labels("export_failed")), **options)
        # The SDK reports queue overflow only through its internal processor-metrics hook,
        # which it feeds to OpenTelemetry metrics when OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
        # is set. Our metrics are prometheus-client's, so chain our own hook in front of it.
        batch = self._batch_processor
        batch._metrics = _DropHook(batch._metrics, dropped)

    def on_end(self, span: ReadableSpan) -> None:
        """The SDK's own, with the span's flags unpacked from its context (a tuple) rather than
        read through two properties: it runs for every span."""
        context = span.context
        if context is not None:
            _, _, _, flags, _, _ = context
            if flags & TraceFlags.SAMPLED:
                self._batch_processor.emit(span)


class _DropHook:
    """The SDK's ``ProcessorMetricsT`` hook: counts drops, then defers to the SDK's own."""

    def __init__(self, inner: Any, dropped: Counter) -> None:
        self._inner = inner
        self._dropped = dropped

    def register_queue_size(self, get_queue_size: Callable[[], int]) -> None:
        self._inner.register_queue_size(get_queue_size)

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        self._dropped.labels(error_type).inc(count)
        self._inner.drop_items(count, error_type)

    def finish_items(self, count: int) -> None:
        self._inner.finish_items(count)


class _FailedExportCounter(SpanExporter):
    """Delegates to ``exporter``; counts the spans of every batch it fails to export."""

    def __init__(self, exporter: SpanExporter, dropped: Counter) -> None:
        self.exporter = exporter
        self._dropped = dropped

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception:
            self._dropped.inc(len(spans))
            raise
        if result is not SpanExportResult.SUCCESS:
            self._dropped.inc(len(spans))
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)
