"""Tracing: provider configuration, the OTLP-JSON file round trip, drops, propagation."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from flask import Flask
from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.span import TraceState
from prometheus_client import CollectorRegistry
from werkzeug.serving import make_server

from app.scoring.features_client import ROUTE, FeaturesClient
from app.settings import SERVICE_DEFAULTS
from app.telemetry import EXTENSION_KEY, build_tracer_provider, init_app, read_spans
from app.telemetry.otlp_json import OtlpJsonFileExporter, encode_request
from app.telemetry.tracing import counted_batch_processor

OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@pytest.fixture
def no_otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in OTLP_ENDPOINT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def file_provider(
    tmp_path: Path, registry: CollectorRegistry, no_otlp_endpoint: None
) -> Iterator[TracerProvider]:
    provider = build_tracer_provider(
        "scoring", "2.0.0", "test", traces_dir=tmp_path, registry=registry
    )
    yield provider
    provider.shutdown()


def make_two_spans(provider: TracerProvider) -> tuple[ReadableSpan, ReadableSpan]:
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("predict", kind=SpanKind.SERVER) as parent:
        parent.set_attributes({"http.route": "/predict", "retries": 2, "score": 0.25, "ok": True})
        with tracer.start_as_current_span("inference") as child:
            child.set_attribute("features", ["income", "age"])
            child.set_status(Status(StatusCode.ERROR, "model failed"))
    return parent, child


def test_file_exporter_writes_otlp_json_with_hex_ids(
    tmp_path: Path, file_provider: TracerProvider
) -> None:
    parent, child = make_two_spans(file_provider)
    file_provider.force_flush()

    (line,) = (tmp_path / "scoring.jsonl").read_bytes().splitlines()
    request = orjson.loads(line)
    (resource_spans,) = request["resourceSpans"]
    resource = {kv["key"]: kv["value"] for kv in resource_spans["resource"]["attributes"]}
    assert resource["service.name"] == {"stringValue": "scoring"}
    assert resource["service.version"] == {"stringValue": "2.0.0"}
    assert resource["deployment.environment"] == {"stringValue": "test"}
    spans = resource_spans["scopeSpans"][0]["spans"]
    trace_id = format(parent.context.trace_id, "032x")
    assert {span["traceId"] for span in spans} == {trace_id}
    assert {span["spanId"] for span in spans} == {
        format(parent.context.span_id, "016x"),
        format(child.context.span_id, "016x"),
    }

    json_format.ParseDict(with_base64_ids(request), ExportTraceServiceRequest())


def with_base64_ids(request: dict) -> dict:
    """OTLP/JSON as plain ProtoJSON, which writes ids as base64 like any other bytes."""

    def convert(message: dict) -> None:
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in message:
                message[key] = base64.b64encode(bytes.fromhex(message[key])).decode()

    for resource_spans in request["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                convert(span)
                for link in span.get("links", ()):
                    convert(link)
    return request


#: A caller's span, sampled and with a trace state, that spans below continue.
REMOTE_CALLER = SpanContext(
    0xABC,
    0xDEF,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "x")]),
)


def encoded_as_protobuf(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """What the OTLP-JSON file holds for ``spans``, read back as the protobuf message."""
    return json_format.ParseDict(
        with_base64_ids(orjson.loads(encode_request(spans))), ExportTraceServiceRequest()
    )


def test_encoding_agrees_with_the_sdk_protobuf_encoder(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    tracer = tracer_provider.get_tracer("scope", "1.2.3")
    with tracer.start_as_current_span(
        "server",
        context=trace.set_span_in_context(NonRecordingSpan(REMOTE_CALLER)),
        kind=SpanKind.SERVER,
        links=[Link(REMOTE_CALLER, {"why": "retry"})],
    ) as span:
        span.set_attributes(
            {"s": "x", "i": -(2**40), "f": 1.5, "b": False, "strings": ["a", "b"], "ints": [1, 2]}
        )
        span.add_event("checkpoint", {"step": 3})
        span.set_status(Status(StatusCode.ERROR, "bad"))
        with tracer_provider.get_tracer("other").start_as_current_span("child"):
            pass
    spans = span_exporter.get_finished_spans()
    assert [span.name for span in spans] == ["child", "server"]

    ours = encoded_as_protobuf(spans)

    assert ours == encode_spans(spans)


def test_equal_values_of_other_types_keep_their_types(
    tmp_path: Path, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter
) -> None:
    # Attribute pairs are encoded once and reused; 1 == 1.0 == True must not share a cache slot.
    tracer = tracer_provider.get_tracer("test")
    for value in (1, True, 1.0, "1"):
        tracer.start_span("step", attributes={"x": value}).end()

    path = tmp_path / "spans.jsonl"
    path.write_bytes(encode_request(span_exporter.get_finished_spans()))
    spans = read_spans(path)

    assert [span["attributes"]["x"] for span in spans] == [1, True, 1.0, "1"]
    assert [type(span["attributes"]["x"]) for span in spans] == [int, bool, float, str]


def test_read_spans_flattens_the_file(tmp_path: Path, file_provider: TracerProvider) -> None:
    parent, _ = make_two_spans(file_provider)
    file_provider.force_flush()
    make_two_spans(file_provider)
    file_provider.force_flush()

    records = read_spans(tmp_path / "scoring.jsonl")

    assert len(records) == 4
    inference, predict = records[:2]
    assert predict == {
        "trace_id": format(parent.context.trace_id, "032x"),
        "span_id": format(parent.context.span_id, "016x"),
        "parent_span_id": None,
        "name": "predict",
        "kind": "server",
        "service": "scoring",
        "start_ns": parent.start_time,
        "end_ns": parent.end_time,
        "status": "unset",
        "attributes": {"http.route": "/predict", "retries": 2, "score": 0.25, "ok": True},
    }
    assert inference["parent_span_id"] == predict["span_id"]
    assert inference["kind"] == "internal"
    assert inference["status"] == "error"
    assert inference["attributes"] == {"features": ["income", "age"]}


def test_read_spans_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "scoring.jsonl"
    path.write_bytes(b'{"resourceSpans": []}\n{"resourceSpans": [tru\n')

    with pytest.raises(ValueError, match=r"scoring\.jsonl:2"):
        read_spans(path)


def test_file_exporter_reports_an_unwritable_file(
    tmp_path: Path, tracer_provider: TracerProvider
) -> None:
    path = tmp_path / "scoring.jsonl"
    path.mkdir()
    exporter = OtlpJsonFileExporter(path)
    span = tracer_provider.get_tracer("test").start_span("lost")
    span.end()

    assert exporter.export([span]) is SpanExportResult.FAILURE


def test_exports_to_otlp_http_when_an_endpoint_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[tuple[str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    try:
        provider = build_tracer_provider("features", "1.0.0", "test", traces_dir=tmp_path)
        provider.get_tracer("test").start_span("lookup").end()
        provider.shutdown()
    finally:
        server.shutdown()
        thread.join()

    ((path, body),) = received
    request = ExportTraceServiceRequest.FromString(body)
    assert path == "/v1/traces"
    assert request.resource_spans[0].scope_spans[0].spans[0].name == "lookup"
    assert list(tmp_path.iterdir()) == []


def test_sampler_and_instance_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_otlp_endpoint: None
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    monkeypatch.setenv("OBSLAB_INSTANCE", "scoring-3")
    provider = build_tracer_provider("scoring", "2.0.0", "test", traces_dir=tmp_path)

    span = provider.get_tracer("test").start_span("unsampled")
    provider.shutdown()

    assert not span.is_recording()
    assert provider.resource.attributes["service.instance.id"] == "scoring-3"


class FailingExporter(SpanExporter):
    def __init__(self, *, raises: bool) -> None:
        self.raises = raises

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.raises:
            raise ConnectionError("collector unreachable")
        return SpanExportResult.FAILURE


class BlockingExporter(SpanExporter):
    """Holds the first batch until released, so later spans pile up in the queue."""

    def __init__(self) -> None:
        self.exporting = threading.Event()
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exporting.set()
        self.release.wait()
        return SpanExportResult.SUCCESS


def dropped(registry: CollectorRegistry, reason: str) -> float | None:
    return registry.get_sample_value("otel_spans_dropped_total", {"reason": reason})


@pytest.mark.parametrize("raises", [False, True], ids=["failure", "exception"])
def test_spans_of_failed_exports_are_counted(registry: CollectorRegistry, raises: bool) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(counted_batch_processor(FailingExporter(raises=raises), registry))
    for name in ("a", "b", "c"):
        provider.get_tracer("test").start_span(name).end()
    provider.force_flush()
    provider.shutdown()

    assert dropped(registry, "export_failed") == 3
    assert dropped(registry, "queue_full") == 0


def test_spans_beyond_a_full_queue_are_counted(registry: CollectorRegistry) -> None:
    exporter = BlockingExporter()
    processor = counted_batch_processor(
        exporter,
        registry,
        max_queue_size=2,
        max_export_batch_size=2,
        schedule_delay_millis=60_000,
    )
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    for _ in range(2):
        tracer.start_span("exported").end()
    assert exporter.exporting.wait(timeout=5)

    for _ in range(5):
        tracer.start_span("queued").end()
    exporter.release.set()
    provider.shutdown()

    assert dropped(registry, "queue_full") == 3
    assert dropped(registry, "export_failed") == 0


def test_a_shut_down_processor_counts_what_it_is_still_given(registry: CollectorRegistry) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(counted_batch_processor(InMemorySpanExporter(), registry))
    tracer = provider.get_tracer("test")
    provider.shutdown()
    tracer.start_span("late").end()

    assert dropped(registry, "already_shutdown") == 1


def test_the_sdk_s_drop_count_can_be_switched_off(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's word on OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED stands."""
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "false")
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(counted_batch_processor(InMemorySpanExporter(), registry))
    provider.shutdown()
    provider.get_tracer("test").start_span("late").end()

    assert os.environ["OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"] == "false"
    assert dropped(registry, "already_shutdown") == 0


class SampledByName(Sampler):
    """Records every span, and samples those whose name says so."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None):
        sampled = name.startswith("sampled")
        return SamplingResult(Decision.RECORD_AND_SAMPLE if sampled else Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "SampledByName"


def test_only_sampled_spans_are_exported(registry: CollectorRegistry) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=SampledByName(), shutdown_on_exit=False)
    provider.add_span_processor(counted_batch_processor(exporter, registry))
    tracer = provider.get_tracer("test")
    for name in ("sampled", "recorded only"):
        tracer.start_span(name).end()
    provider.force_flush()
    provider.shutdown()

    assert [span.name for span in exporter.get_finished_spans()] == ["sampled"]


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def service_app(name: str, exporter: InMemorySpanExporter) -> Flask:
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: name}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Flask(name)
    app.config.update(SERVICE_DEFAULTS)
    init_app(app, name, tracer_provider=provider)
    return app


def test_a_call_between_services_is_one_trace(span_exporter: InMemorySpanExporter) -> None:
    features = service_app("features", span_exporter)
    scoring = service_app("scoring", span_exporter)

    @features.get("/customers/<int:customer_id>/features")
    def customer_features(customer_id: int) -> dict[str, int]:
        return {"late_payments": 0}

    with serving(features) as features_url:
        client = FeaturesClient(features_url, tracer=scoring.extensions[EXTENSION_KEY].tracer)

        @scoring.post("/predict")
        def predict() -> dict[str, float | None]:
            return {"late_payments": client.history(98765)["late_payments"]}

        assert scoring.test_client().post("/predict").json == {"late_payments": 0}

    spans = {span.name: span for span in span_exporter.get_finished_spans()}
    scoring_server = spans["POST /predict"]
    lookup = spans["feature_lookup"]
    features_server = spans["GET /customers/<int:customer_id>/features"]
    assert len({span.context.trace_id for span in spans.values()}) == 1
    assert scoring_server.parent is None
    assert lookup.parent.span_id == scoring_server.context.span_id
    assert lookup.kind is SpanKind.CLIENT
    assert lookup.attributes["url.template"] == ROUTE
    assert lookup.attributes["http.response.status_code"] == 200
    texts = [value for value in lookup.attributes.values() if isinstance(value, str)]
    assert not [text for text in texts if "98765" in text], "no customer id in the client span"
    assert features_server.parent.span_id == lookup.context.span_id
    assert features_server.parent.is_remote
    assert features_server.resource.attributes["service.name"] == "features"
