"""ModelMetrics and DependencyMetrics: every series from the start, counted in the right bin."""

from __future__ import annotations

import pytest
import requests
from prometheus_client import CollectorRegistry

from app.model.baseline import Baseline, BinEdges
from app.telemetry import DependencyMetrics, ModelMetrics

BASELINE = Baseline(
    model_version="m2",
    features={
        "income": BinEdges((20_000.0, 50_000.0), (0.3, 0.4, 0.3)),
        "age": BinEdges((30.0,), (0.45, 0.55)),
    },
    score=BinEdges((0.2, 0.5, 0.8), (0.4, 0.3, 0.2, 0.1)),
    accuracy=0.87,
)


@pytest.fixture
def model(registry: CollectorRegistry) -> ModelMetrics:
    return ModelMetrics(registry, BASELINE, release="1.2.0")


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    per_model = ("model_feedback", "model_baseline")
    served_by = {} if name.startswith(per_model) else {"version": "1.2.0"}
    return registry.get_sample_value(name, {"model_version": "m2", **served_by, **labels})


def test_every_series_exists_at_zero_with_the_training_shares(
    model: ModelMetrics, registry: CollectorRegistry
) -> None:
    for feature, edges in BASELINE.features.items():
        assert sample(registry, "model_feature_missing_total", feature=feature) == 0
        for index, share in enumerate(edges.shares):
            bin_labels = {"feature": feature, "bin": str(index)}
            assert sample(registry, "model_feature_bin_total", **bin_labels) == 0
            assert sample(registry, "model_baseline_share", **bin_labels) == share
    for index, share in enumerate(BASELINE.score.shares):
        assert sample(registry, "model_score_bin_total", bin=str(index)) == 0
        assert sample(registry, "model_baseline_share", feature="score", bin=str(index)) == share
    for decision in ("approve", "decline"):
        assert sample(registry, "model_predictions_total", decision=decision) == 0
    for outcome in ("correct", "incorrect"):
        assert sample(registry, "model_feedback_total", outcome=outcome) == 0
    assert sample(registry, "model_baseline_accuracy") == 0.87
    assert sample(registry, "model_feature_bin_total", feature="income", bin="3") is None


def test_a_prediction_is_binned_per_feature_and_score(
    model: ModelMetrics, registry: CollectorRegistry
) -> None:
    model.observe_inputs({"income": 60_000.0, "age": 25.0})
    model.observe_prediction(0.55, "decline")
    model.observe_inputs({"income": 10_000.0, "age": 31.0})
    model.observe_prediction(0.1, "approve")

    assert sample(registry, "model_feature_bin_total", feature="income", bin="2") == 1
    assert sample(registry, "model_feature_bin_total", feature="income", bin="0") == 1
    assert sample(registry, "model_feature_bin_total", feature="age", bin="0") == 1
    assert sample(registry, "model_feature_bin_total", feature="age", bin="1") == 1
    assert sample(registry, "model_score_bin_total", bin="2") == 1
    assert sample(registry, "model_score_bin_total", bin="0") == 1
    assert sample(registry, "model_predictions_total", decision="decline") == 1
    assert sample(registry, "model_predictions_total", decision="approve") == 1
    assert sample(registry, "model_prediction_score_bucket", le="0.1") == 1
    assert sample(registry, "model_prediction_score_bucket", le="0.55") == 2
    assert sample(registry, "model_prediction_score_sum") == pytest.approx(0.65)


def test_inputs_are_counted_as_observed_whatever_the_caller_does_next(
    model: ModelMetrics, registry: CollectorRegistry
) -> None:
    features: dict[str, float | None] = {"income": 60_000.0, "age": 25.0}
    model.observe_inputs(features)
    features.update(income=None, age=31.0)  # the caller reuses its mapping
    assert sample(registry, "model_feature_bin_total", feature="income", bin="2") == 1
    assert sample(registry, "model_feature_bin_total", feature="age", bin="0") == 1
    assert sample(registry, "model_feature_missing_total", feature="income") == 0


def test_missing_inputs_are_counted_and_not_binned(
    model: ModelMetrics, registry: CollectorRegistry
) -> None:
    model.observe_inputs({"income": None})

    assert sample(registry, "model_feature_missing_total", feature="income") == 1
    assert sample(registry, "model_feature_missing_total", feature="age") == 1
    for index in range(3):
        assert sample(registry, "model_feature_bin_total", feature="income", bin=str(index)) == 0


def test_an_unknown_decision_is_rejected_before_counting(
    model: ModelMetrics, registry: CollectorRegistry
) -> None:
    with pytest.raises(ValueError, match="decision"):
        model.observe_prediction(0.3, "maybe")

    assert sample(registry, "model_prediction_score_count") == 0
    assert sample(registry, "model_score_bin_total", bin="0") == 0


def test_feedback_counts_outcomes(model: ModelMetrics, registry: CollectorRegistry) -> None:
    model.observe_feedback(correct=True)
    model.observe_feedback(correct=True)
    model.observe_feedback(correct=False)

    assert sample(registry, "model_feedback_total", outcome="correct") == 2
    assert sample(registry, "model_feedback_total", outcome="incorrect") == 1


def test_late_feedback_counts_for_the_model_that_predicted(
    model: ModelMetrics, registry: CollectorRegistry
) -> None:
    model.observe_feedback(correct=False, model_version="m1")

    labels = {"model_version": "m1", "outcome": "incorrect"}
    assert registry.get_sample_value("model_feedback_total", labels) == 1
    assert sample(registry, "model_feedback_total", outcome="incorrect") == 0


def dependency_calls(registry: CollectorRegistry, outcome: str) -> float | None:
    labels = {"dependency": "features", "outcome": outcome}
    return registry.get_sample_value("dependency_requests_total", labels)


def test_dependency_calls_are_timed_by_outcome(registry: CollectorRegistry) -> None:
    dependency = DependencyMetrics(registry, "features")
    assert [dependency_calls(registry, o) for o in ("ok", "error", "timeout")] == [0, 0, 0]

    with dependency.track():
        pass
    with pytest.raises(requests.ReadTimeout), dependency.track():
        raise requests.ReadTimeout("slow")
    with pytest.raises(requests.HTTPError), dependency.track():
        raise requests.HTTPError("503 Service Unavailable")
    with pytest.raises(requests.ConnectionError), dependency.track():
        raise requests.ConnectionError("refused")

    assert dependency_calls(registry, "ok") == 1
    assert dependency_calls(registry, "timeout") == 1
    assert dependency_calls(registry, "error") == 2
    duration = {"dependency": "features"}
    assert registry.get_sample_value("dependency_request_duration_seconds_count", duration) == 4


def test_the_block_can_name_the_outcome(registry: CollectorRegistry) -> None:
    dependency = DependencyMetrics(registry, "features")
    with pytest.raises(LookupError), dependency.track() as call:
        call.outcome = "timeout"  # e.g. a client that wraps requests.Timeout in its own error
        raise LookupError("features unavailable")

    assert dependency_calls(registry, "timeout") == 1
    assert dependency_calls(registry, "error") == 0


def test_an_unknown_dependency_outcome_is_rejected(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="outcome"):
        DependencyMetrics(registry, "features").observe("slow", 0.1)
