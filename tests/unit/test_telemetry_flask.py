"""init_app: server spans, request metrics and exemplars, request ids, request logs, TELEMETRY."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog
from flask import Flask
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import DefaultGetter, DefaultSetter, TextMapPropagator
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.settings import SERVICE_DEFAULTS
from app.telemetry import (
    EXTENSION_KEY,
    Telemetry,
    bind_request_fields,
    configure_logging,
    hash_customer_id,
    init_app,
)

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def make_app(registry: CollectorRegistry, tracer_provider: TracerProvider, **config: Any) -> Flask:
    app = Flask("svc")
    app.config.update(SERVICE_DEFAULTS)
    app.config.update(
        SERVICE_VERSION="2.0.0",
        COMMIT="abc123",
        MODEL_VERSION="m2",
        PREVIOUS_VERSION="1.9.0",
        DEPLOYED_AT=1_700_000_000,
    )
    app.config.update(config)
    init_app(app, "scoring", registry=registry, tracer_provider=tracer_provider)

    @app.post("/predict")
    def predict() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/customers/<int:customer_id>/features")
    def features(customer_id: int) -> dict[str, int]:
        structlog.get_logger().info("features looked up", customer_id=customer_id)
        return {"customer_id": customer_id}

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app


@pytest.fixture
def app(registry: CollectorRegistry, tracer_provider: TracerProvider) -> Flask:
    return make_app(registry, tracer_provider)


def requests_total(
    registry: CollectorRegistry, route: str, method: str, status: str
) -> float | None:
    labels = {"route": route, "method": method, "status": status, "version": "2.0.0"}
    return registry.get_sample_value("http_requests_total", labels)


def test_counts_requests_by_route_template_method_and_status(
    app: Flask, registry: CollectorRegistry
) -> None:
    client = app.test_client()
    client.get("/customers/1/features")
    client.get("/customers/2/features")
    client.post("/predict")

    assert requests_total(registry, "/customers/<int:customer_id>/features", "GET", "200") == 2
    assert requests_total(registry, "/predict", "POST", "200") == 1
    labels = {"route": "/predict", "method": "POST", "version": "2.0.0"}
    assert registry.get_sample_value("http_request_duration_seconds_count", labels) == 1


def test_unknown_paths_and_methods_share_fixed_labels(
    app: Flask, registry: CollectorRegistry
) -> None:
    client = app.test_client()
    client.get("/no/such/path/1")
    client.get("/no/such/path/2")
    client.open("/predict", method="PROPFIND")

    assert requests_total(registry, "unmatched", "GET", "404") == 2
    assert requests_total(registry, "unmatched", "OTHER", "405") == 1


def test_routes_export_their_server_errors_and_latency_at_zero_before_any_request(
    app: Flask, registry: CollectorRegistry
) -> None:
    # Prometheus's increase() reads a counter's change between samples: a 5xx series whose
    # first sample is already 1 would hide a release's first failure.
    app.extensions[EXTENSION_KEY].start_routes(app)

    assert requests_total(registry, "/predict", "POST", "500") == 0
    assert requests_total(registry, "/boom", "GET", "500") == 0
    assert requests_total(registry, "/customers/<int:customer_id>/features", "GET", "500") == 0
    assert requests_total(registry, "/predict", "POST", "200") is None
    assert requests_total(registry, "/predict", "HEAD", "500") is None
    latency = {"route": "/predict", "method": "POST", "version": "2.0.0"}
    assert registry.get_sample_value("http_request_duration_seconds_count", latency) == 0

    with structlog.testing.capture_logs():
        app.test_client().get("/boom")
    assert requests_total(registry, "/boom", "GET", "500") == 1


def test_with_telemetry_off_no_route_series_are_started(
    registry: CollectorRegistry, tracer_provider: TracerProvider
) -> None:
    app = make_app(registry, tracer_provider, TELEMETRY="off")
    app.extensions[EXTENSION_KEY].start_routes(app)

    assert requests_total(registry, "/predict", "POST", "500") is None


@pytest.mark.parametrize("propagate", [False, True], ids=["handled", "propagated"])
def test_a_request_that_raises_counts_as_500(
    app: Flask, registry: CollectorRegistry, propagate: bool
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = propagate
    client = app.test_client()
    with structlog.testing.capture_logs():
        if propagate:
            with pytest.raises(RuntimeError):
                client.get("/boom")
        else:
            assert client.get("/boom").status_code == 500

    assert requests_total(registry, "/boom", "GET", "500") == 1


def test_server_spans_are_named_by_route_and_carry_the_outcome(
    app: Flask, span_exporter: InMemorySpanExporter
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    client = app.test_client()
    with structlog.testing.capture_logs():
        client.get("/customers/42/features", headers={"traceparent": traceparent})
        client.get("/boom")
        client.get("/no/such/path")

    ok, failed, unmatched = span_exporter.get_finished_spans()
    assert ok.name == "GET /customers/<int:customer_id>/features"
    assert ok.kind is SpanKind.SERVER
    assert format(ok.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(ok.parent.span_id, "016x") == "b7ad6b7169203331"
    # The stable HTTP conventions; no url.path where the path holds a customer id.
    assert ok.attributes == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "server.address": "localhost",
        "server.port": 80,
        "http.route": "/customers/<int:customer_id>/features",
        "http.response.status_code": 200,
    }
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["url.path"] == "/boom", "a path without parameters is its route"
    assert failed.attributes["error.type"] == "RuntimeError"
    assert [event.name for event in failed.events] == ["exception"]
    assert failed.parent is None
    assert unmatched.name == "GET"
    assert unmatched.attributes["http.response.status_code"] == 404
    assert "http.route" not in unmatched.attributes
    assert "url.path" not in unmatched.attributes
    for span in (ok, failed, unmatched):
        assert not {"http.method", "http.status_code", "http.target"} & set(span.attributes)


@pytest.mark.parametrize("host", ["[abc", "example.com:abc", "a:99999", "ex ample", ""])
def test_a_hostile_host_header_is_no_server_error(
    app: Flask, span_exporter: InMemorySpanExporter, host: str
) -> None:
    assert app.test_client().post("/predict", headers={"Host": host}).status_code == 200
    (span,) = span_exporter.get_finished_spans()
    assert span.attributes["http.response.status_code"] == 200


def test_an_unknown_method_is_other_in_the_span(
    app: Flask, span_exporter: InMemorySpanExporter
) -> None:
    app.test_client().open("/predict", method="PROPFIND")

    (span,) = span_exporter.get_finished_spans()
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.name == "HTTP"


class CallerHeader(TextMapPropagator):
    """Trace and span ids in ``x-caller``, as B3 or Jaeger carry theirs in headers of their own."""

    def extract(self, carrier, context=None, getter=DefaultGetter()):  # noqa: B008
        found = getter.get(carrier, "x-caller")
        if not found:
            return context if context is not None else trace.set_span_in_context(trace.INVALID_SPAN)
        trace_id, span_id = (int(part, 16) for part in found[0].split(":"))
        caller = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(1))
        return trace.set_span_in_context(NonRecordingSpan(caller), context)

    def inject(self, carrier, context=None, setter=DefaultSetter()):  # noqa: B008
        sent = trace.get_current_span(context).get_span_context()
        setter.set(carrier, "x-caller", f"{sent.trace_id:x}:{sent.span_id:x}")

    @property
    def fields(self) -> set[str]:
        return {"x-caller"}


@pytest.fixture
def caller_header_propagator() -> Iterator[None]:
    default = propagate.get_global_textmap()
    propagate.set_global_textmap(CallerHeader())
    yield
    propagate.set_global_textmap(default)


@pytest.mark.usefixtures("caller_header_propagator")
def test_the_caller_s_context_is_read_by_the_global_propagator(
    app: Flask, span_exporter: InMemorySpanExporter
) -> None:
    app.test_client().post("/predict", headers={"X-Caller": "ab:cd"})

    (span,) = span_exporter.get_finished_spans()
    assert (span.context.trace_id, span.parent.span_id) == (0xAB, 0xCD)


def test_span_limits_apply_to_the_server_span(registry: CollectorRegistry) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=2))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    make_app(registry, provider).test_client().post("/predict")

    (span,) = exporter.get_finished_spans()
    assert len(span.attributes) == 2
    assert span.dropped_attributes > 0


def test_exemplar_carries_the_request_trace_id_in_openmetrics_only(
    app: Flask, span_exporter: InMemorySpanExporter
) -> None:
    client = app.test_client()
    client.post("/predict")
    (server_span,) = span_exporter.get_finished_spans()
    trace_id = format(server_span.context.trace_id, "032x")

    scrape = client.get("/metrics", headers={"Accept": OPENMETRICS})
    text = client.get("/metrics").get_data(as_text=True)

    assert scrape.content_type.startswith("application/openmetrics-text")
    exemplars = re.findall(
        r'^http_request_duration_seconds_bucket\{[^}]*route="/predict"[^}]*\} 1\.0 '
        r'# \{trace_id="([0-9a-f]{32})"\}',
        scrape.get_data(as_text=True),
        flags=re.MULTILINE,
    )
    assert exemplars and set(exemplars) == {trace_id}
    assert "# {" not in text
    assert "http_requests_total" in text


def test_metrics_probes_are_counted_but_not_traced(
    app: Flask, registry: CollectorRegistry, span_exporter: InMemorySpanExporter
) -> None:
    client = app.test_client()
    client.get("/healthz")
    client.get("/metrics")

    assert span_exporter.get_finished_spans() == ()
    assert requests_total(registry, "/healthz", "GET", "200") == 1
    assert requests_total(registry, "/metrics", "GET", "200") == 1


def test_build_info_and_deploy_time(app: Flask, registry: CollectorRegistry) -> None:
    build = {
        "version": "2.0.0",
        "commit": "abc123",
        "model_version": "m2",
        "previous_version": "1.9.0",
    }

    assert registry.get_sample_value("app_build_info", build) == 1
    assert registry.get_sample_value("app_deploy_timestamp_seconds") == 1_700_000_000
    assert registry.get_sample_value("process_resident_memory_bytes") > 0
    assert isinstance(app.extensions[EXTENSION_KEY], Telemetry)


def test_deploy_time_defaults_to_start_time(
    registry: CollectorRegistry, tracer_provider: TracerProvider
) -> None:
    before = time.time()
    make_app(registry, tracer_provider, DEPLOYED_AT=0)

    assert registry.get_sample_value("app_deploy_timestamp_seconds") >= before


@pytest.mark.parametrize("given", [1, "1", True, "true"])
def test_a_release_that_expects_its_scores_to_shift_says_so(
    registry: CollectorRegistry, tracer_provider: TracerProvider, given: object
) -> None:
    make_app(registry, tracer_provider, EXPECTED_SCORE_SHIFT=given)

    # The labels the alert rules join on, and no others (the scrape adds job and instance).
    scraped = list(text_string_to_metric_families(generate_latest(registry).decode()))
    (family,) = [f for f in scraped if f.name == "app_expected_score_shift"]
    assert [(s.labels, s.value) for s in family.samples] == [
        ({"version": "2.0.0", "model_version": "m2"}, 1)
    ]


def test_a_release_expects_no_shift_by_default(app: Flask, registry: CollectorRegistry) -> None:
    release = {"version": "2.0.0", "model_version": "m2"}

    assert registry.get_sample_value("app_expected_score_shift", release) == 0


def test_an_empty_setting_declares_no_shift(
    registry: CollectorRegistry, tracer_provider: TracerProvider
) -> None:
    """A pod rendered before the setting existed passes it empty: that declares nothing."""
    make_app(registry, tracer_provider, EXPECTED_SCORE_SHIFT="")
    release = {"version": "2.0.0", "model_version": "m2"}

    assert registry.get_sample_value("app_expected_score_shift", release) == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DEPLOYED_AT", "yesterday"),
        ("DEPLOYED_AT", -5),
        ("TELEMETRY", "maybe"),
        ("EXPECTED_SCORE_SHIFT", "yes"),
        ("EXPECTED_SCORE_SHIFT", 2),
    ],
)
def test_bad_settings_name_the_variable(
    registry: CollectorRegistry, tracer_provider: TracerProvider, key: str, value: object
) -> None:
    with pytest.raises(ValueError, match=rf"^OBSLAB_{key} \(config key {key}\)"):
        make_app(registry, tracer_provider, **{key: value})


def test_request_id_is_echoed_or_replaced(app: Flask) -> None:
    client = app.test_client()
    given = client.get("/healthz", headers={"X-Request-ID": "req-42"})
    hostile = client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    missing = client.get("/healthz")

    assert given.headers["X-Request-ID"] == "req-42"
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", missing.headers["X-Request-ID"])
    assert missing.headers["X-Request-ID"] != hostile.headers["X-Request-ID"]


def test_request_lines_carry_trace_and_request_context(
    app: Flask, span_exporter: InMemorySpanExporter
) -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream)
    client = app.test_client()
    client.get("/customers/7/features", headers={"X-Request-ID": "req-7"})
    client.get("/healthz")
    client.get("/metrics")

    app_line, request_line = (orjson.loads(line) for line in stream.getvalue().splitlines())
    (server_span,) = span_exporter.get_finished_spans()
    assert server_span.kind is SpanKind.SERVER
    assert request_line["event"] == "request"
    assert request_line["level"] == "info"
    assert request_line["route"] == "/customers/<int:customer_id>/features"
    assert request_line["method"] == "GET"
    assert request_line["status"] == 200
    assert request_line["duration_ms"] >= 0
    assert request_line["service"] == "scoring"
    assert request_line["version"] == "2.0.0"
    assert request_line["timestamp"].endswith("Z")
    for line in (app_line, request_line):
        assert line["request_id"] == "req-7"
        assert line["trace_id"] == format(server_span.context.trace_id, "032x")
        assert line["span_id"] == format(server_span.context.span_id, "016x")
    assert app_line["customer_id"] == hash_customer_id(7)


def test_what_a_request_binds_ends_with_it(app: Flask) -> None:
    @app.post("/decide")
    def decide() -> dict[str, bool]:
        bind_request_fields(prediction_id="p-1", decision="approve")
        return {"ok": True}

    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream)
    client = app.test_client()
    client.post("/decide", headers={"X-Request-ID": "first"})
    client.post("/predict", headers={"X-Request-ID": "second"})
    structlog.get_logger().info("after")

    first, second, after = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert (first["prediction_id"], first["decision"], first["request_id"]) == (
        "p-1",
        "approve",
        "first",
    )
    assert "prediction_id" not in second
    assert "decision" not in second
    assert second["request_id"] == "second"
    assert after.keys().isdisjoint({"request_id", "prediction_id", "decision"})


def test_a_request_starts_without_fields_left_over(app: Flask) -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream)
    # As a request whose teardown never ran would leave them on a reused worker thread.
    bind_request_fields(prediction_id="stale", request_id="stale")
    app.test_client().post("/predict", headers={"X-Request-ID": "fresh"})

    (line,) = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert line["request_id"] == "fresh"
    assert "prediction_id" not in line


def test_a_failed_request_logs_its_exception(app: Flask) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with structlog.testing.capture_logs() as logs:
        app.test_client().get("/boom")

    (line,) = (entry for entry in logs if entry["event"] == "request")
    assert line["log_level"] == "error"
    assert line["status"] == 500
    assert isinstance(line["exc_info"], RuntimeError)


def test_a_quiet_route_is_logged_when_it_fails(app: Flask) -> None:
    """Health checks are not logged, but one that raises must not vanish."""
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/readyz")
    def readyz() -> str:
        raise RuntimeError("not ready")

    with structlog.testing.capture_logs() as logs:
        app.test_client().get("/healthz")
        app.test_client().get("/readyz")

    (line,) = logs
    assert (line["route"], line["status"]) == ("/readyz", 500)
    assert isinstance(line["exc_info"], RuntimeError)


def test_telemetry_off_records_nothing_but_still_serves_metrics(
    registry: CollectorRegistry,
    tracer_provider: TracerProvider,
    span_exporter: InMemorySpanExporter,
) -> None:
    app = make_app(registry, tracer_provider, TELEMETRY="off")
    client = app.test_client()
    with structlog.testing.capture_logs() as logs:
        response = client.post("/predict")
        scrape = client.get("/metrics")

    assert app.extensions[EXTENSION_KEY].enabled is False
    assert "X-Request-ID" not in response.headers
    assert requests_total(registry, "/predict", "POST", "200") is None
    assert span_exporter.get_finished_spans() == ()
    assert logs == []
    assert scrape.status_code == 200
    assert b'app_build_info{commit="abc123"' in scrape.data
