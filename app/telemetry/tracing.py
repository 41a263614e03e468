"""The tracer provider of a service: who it is, how it samples, where its spans go, and how
many never got there.

Spans are exported by the SDK's ``BatchSpanProcessor``. Lost spans are counted in
``otel_spans_dropped_total{reason}`` from two public sources:

- ``export_failed``: the spans of every batch the exporter fails to export
  (:class:`CountingSpanExporter`, a ``SpanExporter`` around the real one).
- ``queue_full`` and ``already_shutdown``: the SDK's own count of the spans its processor
  dropped, the ``otel.sdk.processor.span.processed`` metric with an ``error.type``, which the
  processor reports to the ``meter_provider`` it is given when
  ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`` is true. An in-memory reader holds it, and a
  scrape reads it (:class:`SpanDropCollector`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import (
    DEPLOYMENT_ENVIRONMENT,
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    SERVICE_VERSION,
    Resource,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from app.settings import state_dir
from app.telemetry.otlp_json import OtlpJsonFileExporter

#: Why a span never reached the backend: the SDK processor's reasons, plus a failed export.
DROP_REASONS = ("queue_full", "already_shutdown", "export_failed")

#: The SDK's metric of the spans its processors handled; with ``error.type`` when dropped.
SDK_PROCESSED_SPANS = "otel.sdk.processor.span.processed"


def default_traces_dir() -> Path:
    """Where services write, and ``obslab trace`` reads, ``<service>.jsonl`` span files."""
    return state_dir() / "traces"


class CountingSpanExporter(SpanExporter):
    """Exports through ``exporter``; counts the spans of every batch it fails to export."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self._lock = threading.Lock()
        self._failed = 0

    @property
    def failed(self) -> int:
        """Spans lost to failed exports so far."""
        return self._failed

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception:
            self._count(len(spans))
            raise
        if result is not SpanExportResult.SUCCESS:
            self._count(len(spans))
        return result

    def _count(self, spans: int) -> None:
        with self._lock:
            self._failed += spans

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class SpanDropCollector(Collector):
    """``otel_spans_dropped_total{reason}``, read at each scrape from the exporter's count of
    failed exports and the SDK's count of dropped spans."""

    def __init__(self, exporter: CountingSpanExporter, sdk_metrics: InMemoryMetricReader) -> None:
        self._exporter = exporter
        self._sdk_metrics = sdk_metrics

    def collect(self) -> Iterable[CounterMetricFamily]:
        dropped = dict.fromkeys(DROP_REASONS, 0)
        dropped["export_failed"] = self._exporter.failed
        data = self._sdk_metrics.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != SDK_PROCESSED_SPANS:
                        continue
                    for point in metric.data.data_points:
                        reason = (point.attributes or {}).get(ERROR_TYPE)
                        if reason in dropped:
                            dropped[str(reason)] += int(point.value)
        family = CounterMetricFamily(
            "otel_spans_dropped",
            "Finished spans that were never exported, by reason.",
            labels=("reason",),
        )
        for reason, count in dropped.items():
            family.add_metric((reason,), count)
        yield family

    def describe(self) -> Iterable[CounterMetricFamily]:
        yield CounterMetricFamily(
            "otel_spans_dropped", "Finished spans that were never exported, by reason."
        )


def counted_batch_processor(
    exporter: SpanExporter, registry: CollectorRegistry | None = None, **options: float
) -> BatchSpanProcessor:
    """The SDK's ``BatchSpanProcessor`` exporting to ``exporter``, its lost spans counted in
    ``registry`` (when given). ``options`` are the processor's own (``max_queue_size``, …);
    unset, the ``OTEL_BSP_*`` variables decide."""
    # The SDK reads this switch from the environment only; on unless the operator says off.
    os.environ.setdefault(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, "true")
    counting = CountingSpanExporter(exporter)
    sdk_metrics = InMemoryMetricReader()
    processor = BatchSpanProcessor(
        counting, meter_provider=MeterProvider(metric_readers=[sdk_metrics]), **options
    )
    if registry is not None:
        registry.register(SpanDropCollector(counting, sdk_metrics))
    return processor


#: Loggers that report each lost span or failed batch in plain text: the counter says as much,
#: and while the backend is down the SDK's queue-full warning comes once per span.
_QUIETED_LOGGERS = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")


def build_tracer_provider(
    service: str,
    version: str,
    environment: str,
    *,
    traces_dir: Path,
    registry: CollectorRegistry | None = None,
) -> TracerProvider:
    """A provider exporting in batches to OTLP/HTTP if configured, else to an OTLP-JSON file.

    The sampler, span limits and batch limits come from the standard ``OTEL_TRACES_SAMPLER*``,
    ``OTEL_SPAN_*`` and ``OTEL_BSP_*`` variables. Spans lost on the way are counted in
    ``registry``.
    """
    for name in _QUIETED_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
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
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(counted_batch_processor(exporter, registry))
    return provider
