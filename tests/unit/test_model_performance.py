"""The model judged at a 24% default rate: the training baseline's performance, exported for
every trained model, and feedback counted by decision, outcome, probability and delay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from app.model.baseline import Baseline, BinEdges, Performance
from app.model.registry import load_model, trained_baselines
from app.model.train import train
from app.model.versions import MODELS
from app.scoring import create_app as create_scoring
from app.telemetry import ModelMetrics
from tests.unit.services import APPLICANT, make_features, scoring_settings, served

PERFORMANCE = Performance(
    default_rate=0.24, default_recall=0.5, repaid_recall=0.9, default_precision=0.6
)
BASELINE = Baseline(
    model_version="m2",
    features={"income": BinEdges((20_000.0,), (0.5, 0.5))},
    score=BinEdges((0.5,), (0.7, 0.3)),
    accuracy=0.82,
    performance=PERFORMANCE,
)


def test_approving_everyone_is_accurate_but_not_balanced() -> None:
    defaulted = np.array([True] * 24 + [False] * 76)
    approve_all = Performance.of(np.zeros(100, bool), defaulted)
    assert approve_all.default_rate == pytest.approx(0.24)
    assert approve_all.default_recall == 0
    assert approve_all.repaid_recall == 1
    assert approve_all.balanced_accuracy == 0.5
    assert np.isnan(approve_all.default_precision)
    half = Performance.of(np.array([True] * 12 + [False] * 82 + [True] * 6), defaulted)
    assert half.default_recall == 0.5
    assert half.default_precision == pytest.approx(12 / 18)


def test_training_measures_performance_on_held_out_data() -> None:
    _, baseline = train(MODELS["m1"])
    performance = baseline.performance
    assert performance is not None
    assert 0.15 < performance.default_rate < 0.35
    assert 0.5 < performance.balanced_accuracy < baseline.accuracy + 0.1
    assert Baseline.from_json(baseline.to_json()) == baseline


def test_a_baseline_saved_without_performance_is_measured_again(tmp_path: Path) -> None:
    loaded = load_model("m1", tmp_path)
    stale = Baseline.from_json({**loaded.baseline.to_json(), "performance": None})
    document = stale.to_json()
    assert "performance" not in document
    stale.save(tmp_path / "m1" / "baseline.json")
    assert trained_baselines(tmp_path) == []

    again = load_model("m1", tmp_path)

    assert again.baseline == loaded.baseline
    assert trained_baselines(tmp_path) == [loaded.baseline]


def test_every_given_baseline_is_exported_beside_the_models_own() -> None:
    registry = CollectorRegistry()
    model = ModelMetrics(registry, BASELINE, release="1.2.0")
    model.add_baseline(
        Baseline(
            model_version="m1",
            features={},
            score=BinEdges((0.5,), (0.5, 0.5)),
            accuracy=0.8,
            performance=Performance(0.25, 0.6, 0.8, 0.5),
        )
    )

    def baseline(measure: str, version: str) -> float | None:
        return registry.get_sample_value(f"model_baseline_{measure}", {"model_version": version})

    assert baseline("balanced_accuracy", "m2") == pytest.approx(0.7)
    assert baseline("default_rate", "m2") == 0.24
    assert baseline("default_recall", "m2") == 0.5
    assert baseline("default_precision", "m2") == 0.6
    assert baseline("accuracy", "m1") == 0.8
    assert baseline("balanced_accuracy", "m1") == pytest.approx(0.7)


def test_outcomes_count_by_decision_and_default_with_probability_and_delay() -> None:
    registry = CollectorRegistry()
    model = ModelMetrics(registry, BASELINE, release="1.2.0")
    model.observe_outcome(decision="approve", defaulted=True, probability=0.3, delay_seconds=12)
    model.observe_outcome(decision="decline", defaulted=True, probability=0.7, delay_seconds=2)
    model.observe_outcome(
        decision="approve", defaulted=False, probability=0.1, delay_seconds=400, model_version="m1"
    )
    with pytest.raises(ValueError, match="decision"):
        model.observe_outcome(decision="maybe", defaulted=True, probability=0.5, delay_seconds=1)

    def outcomes(version: str, decision: str, defaulted: str) -> float | None:
        labels = {"model_version": version, "decision": decision, "defaulted": defaulted}
        return registry.get_sample_value("model_feedback_outcomes_total", labels)

    assert outcomes("m2", "approve", "true") == 1
    assert outcomes("m2", "decline", "true") == 1
    assert outcomes("m2", "decline", "false") == 0
    assert outcomes("m1", "approve", "false") == 1
    probability = registry.get_sample_value(
        "model_feedback_default_probability_total", {"model_version": "m2"}
    )
    assert probability == pytest.approx(1.0)
    within_15s = registry.get_sample_value(
        "model_feedback_delay_seconds_bucket", {"model_version": "m2", "le": "15.0"}
    )
    assert within_15s == 2


@pytest.fixture(scope="module")
def features_url(tmp_path_factory) -> Iterator[str]:
    with served(make_features(tmp_path_factory.mktemp("features"))) as url:
        yield url


def test_scoring_counts_feedback_outcomes_and_exports_every_trained_baseline(
    tmp_path: Path, features_url: str
) -> None:
    settings = scoring_settings(tmp_path, features_url)
    trained = load_model("m2", Path(settings["MODELS_DIR"])).baseline
    app = create_scoring(settings)
    client = app.test_client()
    registry = app.extensions["obslab_telemetry"].registry

    prediction = client.post("/predict", json=APPLICANT).get_json()
    answer = client.post(
        "/feedback", json={"prediction_id": prediction["prediction_id"], "defaulted": True}
    )

    assert answer.status_code == 202
    labels = {"model_version": "m1", "decision": prediction["decision"], "defaulted": "true"}
    assert registry.get_sample_value("model_feedback_outcomes_total", labels) == 1
    assert registry.get_sample_value(
        "model_feedback_default_probability_total", {"model_version": "m1"}
    ) == pytest.approx(prediction["default_probability"], abs=1e-6)
    assert registry.get_sample_value(
        "model_baseline_balanced_accuracy", {"model_version": "m2"}
    ) == pytest.approx(trained.performance.balanced_accuracy)
