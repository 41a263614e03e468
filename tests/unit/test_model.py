"""The model and its baseline: deterministic, sane, and consistent in how they bin."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.baseline import Baseline, BinEdges
from app.model.data import FEATURES, default_probability, sample_population
from app.model.registry import UnknownModelError, load_model
from app.model.train import LinearModel, train
from app.model.versions import MODELS


def test_same_seed_gives_the_same_model_and_baseline():
    first, second = train(MODELS["m1"]), train(MODELS["m1"])
    assert first[0].to_json() == second[0].to_json()
    assert first[1].to_json() == second[1].to_json()


def test_baseline_covers_every_feature_and_shares_sum_to_one():
    _, baseline = train(MODELS["m1"])
    assert set(baseline.features) == set(FEATURES)
    for bins in [*baseline.features.values(), baseline.score]:
        assert len(bins.shares) == len(bins.edges) + 1
        assert sum(bins.shares) == pytest.approx(1.0)
    assert baseline.score.shares == pytest.approx([0.1] * 10, abs=1e-3)


def test_model_beats_the_base_rate_and_its_accuracy_is_recorded():
    model, baseline = train(MODELS["m1"])
    rng = np.random.default_rng(5)
    x = sample_population(rng, 20_000)
    y = rng.random(20_000) < default_probability(x)
    accuracy = np.mean((model.predict_many(x) >= model.threshold) == y)
    assert accuracy == pytest.approx(baseline.accuracy, abs=0.02)
    assert accuracy > max(y.mean(), 1 - y.mean()) + 0.03


def test_single_row_scoring_matches_the_vectorised_pipeline():
    model, _ = train(MODELS["m2"])
    x = sample_population(np.random.default_rng(3), 50)
    batch = model.predict_many(x)
    for i in range(50):
        row = {name: float(x[name][i]) for name in FEATURES}
        assert model.predict_proba(row) == pytest.approx(batch[i], rel=1e-9)


@pytest.mark.parametrize(("weight", "expected"), [(1.0, 1.0), (-1.0, 0.0)])
def test_scores_saturate_instead_of_overflowing(weight: float, expected: float):
    model = LinearModel(
        version="steep",
        weights=(0.0, weight * 1e4, *(0.0,) * (len(FEATURES) - 2)),
        intercept=0.0,
        medians=dict.fromkeys(FEATURES, 0.0),
    )
    assert FEATURES[1] == "age"
    assert model.predict_proba({"age": 120.0}) == expected


def test_missing_values_are_imputed_with_training_medians():
    model, _ = train(MODELS["m1"])
    everything_missing = dict.fromkeys(FEATURES)
    medians = {name: model.medians[name] for name in FEATURES}
    assert model.predict_proba(everything_missing) == model.predict_proba(medians)


def test_miscalibrated_model_scores_higher_with_the_same_inputs():
    x = sample_population(np.random.default_rng(8), 5_000)
    good, _ = train(MODELS["m2"])
    miscalibrated, _ = train(MODELS["m3"])
    assert miscalibrated.predict_many(x).mean() > good.predict_many(x).mean() + 0.1


def test_concept_drift_changes_outcomes_not_inputs_and_costs_accuracy():
    model, baseline = train(MODELS["m1"])
    rng = np.random.default_rng(4)
    x = sample_population(rng, 20_000)
    drifted = rng.random(20_000) < default_probability(x, concept_drift=True)
    accuracy = np.mean((model.predict_many(x) >= model.threshold) == drifted)
    assert accuracy < baseline.accuracy - 0.15


def test_bin_index_agrees_with_the_shares_it_was_built_from():
    values = np.random.default_rng(1).poisson(0.8, 10_000).astype(float)
    bins = BinEdges.from_sample(values)
    counts = np.bincount([bins.bin_index(v) for v in values], minlength=len(bins.shares))
    assert tuple(counts / len(values)) == pytest.approx(bins.shares)
    assert len(bins.edges) < 9  # ties merge decile edges of an integer feature


def test_registry_trains_once_then_loads_the_saved_artifacts(tmp_path):
    loaded = load_model("m1", tmp_path)
    assert (tmp_path / "m1" / "model.json").exists()
    assert (tmp_path / "m1" / "baseline.json").exists()
    again = load_model("m1", tmp_path)
    assert again.model == loaded.model
    assert again.baseline == Baseline.load(tmp_path / "m1" / "baseline.json")
    assert isinstance(again.model, LinearModel)


def test_unknown_model_version_names_the_known_ones(tmp_path):
    with pytest.raises(UnknownModelError, match="m1, m2, m3"):
        load_model("m9", tmp_path)
