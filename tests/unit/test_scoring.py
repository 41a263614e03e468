"""The scoring API over a real HTTP hop to a real features service."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import orjson
import pytest
import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import StatusCode

from app import faults, logs
from app.scoring import create_app as create_scoring
from tests.unit.services import APPLICANT, make_features, scoring_settings, served


@pytest.fixture(scope="module")
def features_url(tmp_path_factory) -> Iterator[str]:
    """The features service on a real local port, so scoring crosses a real HTTP hop."""
    with served(make_features(tmp_path_factory.mktemp("features"))) as url:
        yield url


def scoring(tmp_path, features_url: str, tracer_provider=None, **config):
    settings = scoring_settings(tmp_path, features_url)
    return create_scoring(settings | config, tracer_provider=tracer_provider)


@pytest.fixture
def app(tmp_path, features_url, tracer_provider):
    return scoring(tmp_path, features_url, tracer_provider)


@pytest.fixture
def client(app):
    return app.test_client()


def sample(app, name: str, **labels) -> float:
    value = app.extensions["obslab_telemetry"].registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_predict_scores_an_applicant(client):
    response = client.post("/predict", json=APPLICANT)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {
        "prediction_id",
        "default_probability",
        "decision",
        "model_version",
        "version",
    }
    assert 0 < body["default_probability"] < 1
    assert body["decision"] in {"approve", "decline"}
    assert (body["model_version"], body["version"]) == ("m1", "1.0.0")


def test_predict_records_model_signals(app, client):
    client.post("/predict", json=APPLICANT | {"age": None})
    labels = {"version": "1.0.0", "model_version": "m1"}
    assert sample(app, "model_prediction_score_count", **labels) == 1
    assert (
        sum(
            sample(app, "model_predictions_total", decision=d, **labels)
            for d in ("approve", "decline")
        )
        == 1
    )
    assert sample(app, "model_feature_missing_total", feature="age", **labels) == 1
    assert sample(app, "model_feature_missing_total", feature="income", **labels) == 0
    income_bins = sum(
        sample(app, "model_feature_bin_total", feature="income", bin=str(b), **labels)
        for b in range(10)
    )
    assert income_bins == 1
    assert sample(app, "dependency_requests_total", dependency="features", outcome="ok") == 1


def test_predict_spans_cover_validation_lookup_and_inference(client, span_exporter):
    client.post("/predict", json=APPLICANT)
    spans = {span.name: span for span in span_exporter.get_finished_spans()}
    assert {"validate", "feature_lookup", "inference"} <= set(spans)
    trace_ids = {span.context.trace_id for span in spans.values()}
    assert len(trace_ids) == 1, "validation, lookup, the HTTP call and inference share a trace"
    assert spans["inference"].attributes["model.version"] == "m1"


class StartedSpans(SpanProcessor):
    """Remembers the name of every span it sees start, and of every one it sees end."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended: list[str] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started.append(span.name)

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span.name)


def test_span_processors_see_every_step_start_and_end(tmp_path, features_url):
    processor = StartedSpans()
    provider = TracerProvider()
    provider.add_span_processor(processor)
    client = scoring(tmp_path, features_url, provider).test_client()
    assert client.post("/predict", json=APPLICANT).status_code == 200

    steps = ["POST /predict", "validate", "feature_lookup", "inference"]
    assert processor.started == steps
    assert sorted(processor.ended) == sorted(steps)


class DropsInference(Sampler):
    """Samples every span but those named inference: a sampler that decides per step."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None):
        return SamplingResult(Decision.DROP if name == "inference" else Decision.RECORD_AND_SAMPLE)

    def get_description(self) -> str:
        return "DropsInference"


def test_the_provider_s_sampler_decides_for_every_step(tmp_path, features_url):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=DropsInference())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = scoring(tmp_path, features_url, provider).test_client()
    assert client.post("/predict", json=APPLICANT).status_code == 200

    names = {span.name for span in exporter.get_finished_spans()}
    assert names == {"POST /predict", "validate", "feature_lookup"}


def armed_cpu_hog(tmp_path, features_url, tracer_provider, log_stream=None):
    """Scoring with the cpu-hog fault on, whose burn runs inside the inference span; logging
    to ``log_stream`` if given. (Loggers are taken at their first use, so before any request.)
    """
    app = scoring(tmp_path, features_url, tracer_provider, ADMIN_ENABLED=True, ADMIN_TOKEN="t")
    if log_stream is not None:
        logs.configure_logging("scoring", "1.0.0", stream=log_stream)
    client = app.test_client()
    injected = client.post(
        "/admin/faults",
        json={"name": "cpu-hog", "params": {"cpu_ms": 50}},
        headers={"Authorization": "Bearer t"},
    )
    assert injected.status_code == 201
    return client


def test_a_line_logged_inside_inference_carries_the_inference_span_s_id(
    tmp_path, features_url, tracer_provider, span_exporter, monkeypatch
):
    stream = io.BytesIO()
    client = armed_cpu_hog(tmp_path, features_url, tracer_provider, stream)
    monkeypatch.setattr(faults, "burn_cpu", lambda _: structlog.get_logger().info("burning"))
    span_exporter.clear()
    assert client.post("/predict", json=APPLICANT).status_code == 200

    lines = {line["event"]: line for line in map(orjson.loads, stream.getvalue().splitlines())}
    spans = {span.name: span.context for span in span_exporter.get_finished_spans()}
    assert lines["burning"]["span_id"] == trace.format_span_id(spans["inference"].span_id)
    assert lines["request"]["span_id"] == trace.format_span_id(spans["POST /predict"].span_id)
    assert lines["burning"]["trace_id"] == lines["request"]["trace_id"]


def test_a_cpu_hog_burns_its_cpu_inside_the_inference_span(
    tmp_path, features_url, tracer_provider, span_exporter, monkeypatch
):
    client = armed_cpu_hog(tmp_path, features_url, tracer_provider)
    # The test client serves the request on this thread, so its CPU clock sees the burn.
    before = time.thread_time()
    assert client.post("/predict", json=APPLICANT).status_code == 200
    assert time.thread_time() - before >= 0.05

    # Where it burns: a burn that fails marks the span it runs in, and only that one.
    def failing_burn(seconds: float) -> None:
        raise RuntimeError(f"burned {seconds:g} s")

    monkeypatch.setattr(faults, "burn_cpu", failing_burn)
    span_exporter.clear()
    assert client.post("/predict", json=APPLICANT).status_code == 500
    failed = {
        span.name: span.status.description
        for span in span_exporter.get_finished_spans()
        if span.status.status_code is StatusCode.ERROR
    }
    assert failed.pop("inference") == "RuntimeError: burned 0.05 s"
    assert set(failed) == {"POST /predict"}


def test_feedback_is_taken_once_and_scored(app, client):
    prediction = client.post("/predict", json=APPLICANT).get_json()
    defaulted = prediction["decision"] == "decline"
    answer = client.post(
        "/feedback", json={"prediction_id": prediction["prediction_id"], "defaulted": defaulted}
    )
    assert answer.status_code == 202
    assert answer.get_json()["correct"] is True
    assert sample(app, "model_feedback_total", model_version="m1", outcome="correct") == 1
    again = client.post(
        "/feedback", json={"prediction_id": prediction["prediction_id"], "defaulted": True}
    )
    assert again.status_code == 409
    assert again.get_json()["field"] == "prediction_id"


def test_feedback_for_an_unknown_prediction_is_404(client):
    answer = client.post("/feedback", json={"prediction_id": "nope", "defaulted": False})
    assert answer.status_code == 404
    assert answer.get_json() == {"error": "unknown prediction", "field": "prediction_id"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in APPLICANT.items() if k != "income"}, "income"),
        (APPLICANT | {"ssn": "123"}, "ssn"),
        (APPLICANT | {"income": "lots"}, "income"),
        (APPLICANT | {"customer_id": True}, "customer_id"),
        (APPLICANT | {"customer_id": 1.5}, "customer_id"),
        (APPLICANT | {"customer_id": 0}, "customer_id"),
        (APPLICANT | {"age": 12}, "age"),
        (APPLICANT | {"age": 40.5}, "age"),
        (APPLICANT | {"debt_ratio": -0.1}, "debt_ratio"),
        (APPLICANT | {"loan_amount": 1e300}, "loan_amount"),
        (APPLICANT | {"employment_years": [1]}, "employment_years"),
    ],
)
def test_bad_fields_are_named(client, body, field):
    response = client.post("/predict", json=body)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'{"customer_id": 17, "income": NaN}', 400),
        (b'{"customer_id": 17, "income": Infinity}', 400),
        (b'{"customer_id": 17, "income": 1e999}', 400),
        (b"[" * 5000 + b"]" * 5000, 400),
        (b'{"customer_id": ' + b"9" * 40 + b"}", 400),
    ],
)
def test_hostile_bodies_get_a_json_4xx(client, data, status):
    response = client.post("/predict", data=data, content_type="application/json")
    assert response.status_code == status
    assert "error" in response.get_json()


def test_wrong_content_type_is_415(client):
    response = client.post("/predict", data=orjson.dumps(APPLICANT), content_type="text/plain")
    assert response.status_code == 415
    assert "application/json" in response.get_json()["error"]


def test_oversized_body_is_413(client):
    body = b'{"pad": "' + b"x" * 20_000 + b'"}'
    response = client.post("/predict", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]


def test_unknown_customer_is_422_naming_the_field(client):
    response = client.post("/predict", json=APPLICANT | {"customer_id": 999_999})
    assert response.status_code == 422
    assert response.get_json()["field"] == "customer_id"


def test_features_down_answers_503_and_counts_it(tmp_path):
    app = scoring(tmp_path, "http://127.0.0.1:9")  # discard port: nothing listens
    response = app.test_client().post("/predict", json=APPLICANT)
    assert response.status_code == 503
    assert response.get_json() == {"error": "features service unavailable"}
    assert sample(app, "dependency_requests_total", dependency="features", outcome="error") == 1
    assert (
        sample(
            app,
            "http_requests_total",
            route="/predict",
            method="POST",
            status="503",
            version="1.0.0",
        )
        == 1
    )


def test_erroring_release_fails_only_its_subset(tmp_path, features_url):
    client = scoring(tmp_path, features_url, SERVICE_VERSION="1.2.0").test_client()
    assert client.post("/predict", json=APPLICANT | {"debt_ratio": 0.2}).status_code == 200
    assert client.post("/predict", json=APPLICANT | {"debt_ratio": 0.55}).status_code == 500


def test_a_new_release_exports_its_api_errors_at_zero_before_its_first_request(
    tmp_path, features_url
):
    # Otherwise a canary's first failure is its 5xx series' first sample, and increase()
    # never counts it: at half a prediction a second that is a dozen more requests to wait.
    app = scoring(tmp_path, features_url, SERVICE_VERSION="1.2.0")
    registry = app.extensions["obslab_telemetry"].registry

    for route in ("/predict", "/feedback"):
        labels = {"route": route, "method": "POST", "version": "1.2.0"}
        assert registry.get_sample_value("http_requests_total", labels | {"status": "500"}) == 0
        assert registry.get_sample_value("http_request_duration_seconds_count", labels) == 0


def test_inputs_count_even_when_the_model_fails_on_them(tmp_path, features_url):
    # Otherwise a release that fails on high debt ratios empties their bins, and the
    # unchanged population pages as FeatureDrift.
    app = scoring(tmp_path, features_url, SERVICE_VERSION="1.2.0")
    assert (
        app.test_client().post("/predict", json=APPLICANT | {"debt_ratio": 0.55}).status_code == 500
    )

    def binned(feature: str) -> float:
        return sum(
            sample(
                app,
                "model_feature_bin_total",
                version="1.2.0",
                model_version="m2",
                feature=feature,
                bin=str(b),
            )
            for b in range(10)
        )

    assert binned("debt_ratio") == 1
    assert binned("income") == 1
    assert sample(app, "model_prediction_score_count", version="1.2.0", model_version="m2") == 0
    assert sample(app, "model_score_bin_total", version="1.2.0", model_version="m2", bin="0") == 0


def test_miscalibrated_release_ships_its_model(tmp_path, features_url):
    client = scoring(tmp_path, features_url, SERVICE_VERSION="1.4.0").test_client()
    body = client.post("/predict", json=APPLICANT).get_json()
    assert (body["version"], body["model_version"]) == ("1.4.0", "m3")


def test_model_can_be_overridden_and_unknown_release_is_refused(tmp_path, features_url):
    client = scoring(tmp_path, features_url, MODEL_VERSION="m2").test_client()
    assert client.post("/predict", json=APPLICANT).get_json()["model_version"] == "m2"
    with pytest.raises(LookupError, match=r"unknown release '9\.9\.9'"):
        scoring(tmp_path, features_url, SERVICE_VERSION="9.9.9")


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json()["status"] == "ok"
    assert client.get("/readyz").status_code == 200


def test_telemetry_off_records_no_model_or_dependency_signal(tmp_path, features_url):
    app = scoring(tmp_path, features_url, TELEMETRY="off")
    client = app.test_client()
    prediction = client.post("/predict", json=APPLICANT).get_json()
    client.post("/feedback", json={"prediction_id": prediction["prediction_id"], "defaulted": True})
    assert sample(app, "model_prediction_score_count", version="1.0.0", model_version="m1") == 0
    assert sample(app, "model_feedback_total", model_version="m1", outcome="correct") == 0
    assert sample(app, "dependency_requests_total", dependency="features", outcome="ok") == 0
    assert "model_prediction_score" in client.get("/metrics").get_data(as_text=True)
