"""Telemetry for the lab's services: Prometheus metrics, structlog JSON logs, OTel traces.

``init_app`` instruments a Flask app; ``configure_logging`` (call it first) sets up logs,
and ``bind_request_fields`` adds fields to the rest of a request's lines;
``ModelMetrics`` and ``DependencyMetrics`` carry scoring's own signals.

The logging half lives in :mod:`app.logs`, which loads no part of the OpenTelemetry SDK, for
processes that log but do not trace.
"""

from app.logs import bind_request_fields, configure_logging, hash_customer_id
from app.telemetry.extension import EXTENSION_KEY, Telemetry, init_app
from app.telemetry.model_metrics import DependencyMetrics, ModelMetrics
from app.telemetry.otlp_json import read_spans
from app.telemetry.tracing import build_tracer_provider, default_traces_dir

__all__ = [
    "EXTENSION_KEY",
    "DependencyMetrics",
    "ModelMetrics",
    "Telemetry",
    "bind_request_fields",
    "build_tracer_provider",
    "configure_logging",
    "default_traces_dir",
    "hash_customer_id",
    "init_app",
    "read_spans",
]
