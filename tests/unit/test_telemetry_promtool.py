"""The classic-text exposition of every obslab metric passes ``promtool check metrics``."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from flask import Flask
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from app.model.baseline import Baseline, BinEdges
from app.settings import SERVICE_DEFAULTS
from app.telemetry import DependencyMetrics, ModelMetrics, init_app
from app.telemetry.tracing import counted_batch_processor

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not on PATH")


def test_promtool_accepts_the_exposition(
    registry: CollectorRegistry, tracer_provider: TracerProvider
) -> None:
    app = Flask("scoring")
    app.config.update(SERVICE_DEFAULTS)
    init_app(app, "scoring", registry=registry, tracer_provider=tracer_provider)
    halves = BinEdges(edges=(0.5,), shares=(0.5, 0.5))
    baseline = Baseline(
        "m1", features={"income": halves, "age": halves}, score=halves, accuracy=0.9
    )
    model = ModelMetrics(registry, baseline)
    model.observe_inputs({"income": 1.0})
    model.observe_prediction(0.4, "approve")
    DependencyMetrics(registry, "features").observe("ok", 0.02)
    counted_batch_processor(InMemorySpanExporter(), registry).shutdown()
    client = app.test_client()
    client.get("/nowhere")
    exposition = client.get("/metrics").data

    check = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True, check=False
    )

    assert b"model_feature_missing_total" in exposition
    assert b"otel_spans_dropped_total" in exposition
    assert check.returncode == 0, check.stderr.decode() + check.stdout.decode()
    assert check.stderr == b""
