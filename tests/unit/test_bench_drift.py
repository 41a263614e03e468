"""The drift benchmark's simulation: the rules' windows, guard and ``for:``, on small sizes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import ks_2samp

from app.model.train import train
from app.model.versions import MODELS
from bench.drift import (
    DriftRules,
    KSGrid,
    Reference,
    Windows,
    detection,
    false_alarms,
    simulate,
    training_sample,
)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.of_release()


@pytest.fixture
def rules() -> DriftRules:
    return DriftRules.load("test")


def test_rules_come_from_the_thresholds_file():
    demo = DriftRules.load("demo")
    assert demo.step_seconds == 5
    assert (demo.window_steps, demo.for_steps) == (24, 12)
    assert demo.levels == {"ticket": 0.1, "page": 0.2}


def test_an_alert_fires_once_its_condition_has_held_for_its_for_duration(rules):
    rules = dataclasses.replace(rules, for_steps=2)
    condition = np.array([[1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1]], dtype=bool)
    starts = rules.firing_starts(condition)
    # Held at 3 consecutive evaluations (for: 2 steps) fires; a gap starts the count over.
    assert np.flatnonzero(starts[0]).tolist() == [5, 11]


def test_windows_sum_the_last_steps_whatever_the_blocks():
    rng = np.random.default_rng(0)
    edges = np.array([0.25, 0.5, 0.75])
    per_step = rng.integers(0, 5, size=(2, 9))
    step_of = np.repeat(np.arange(per_step.size), per_step.ravel())
    values = rng.random(len(step_of))
    cells = np.searchsorted(edges, values)

    expected = np.zeros((2, 9, 4), dtype=int)
    for flat, cell in zip(step_of, cells, strict=True):
        replicate, step = divmod(int(flat), 9)
        expected[replicate, step : step + 3, cell] += 1  # counted in this and the next 2 windows

    windows = Windows(edges, window=3, replicates=2)
    blocks = []
    for first, length in ((0, 4), (4, 5)):
        in_block = (step_of % 9 >= first) & (step_of % 9 < first + length)
        replicate, step = np.divmod(step_of[in_block], 9)
        block_step_of = replicate * length + step - first
        blocks.append(windows.feed(block_step_of, values[in_block], length))
    assert np.array_equal(np.concatenate(blocks, axis=1), expected)


def test_ks_distance_is_the_two_sample_statistic_on_discrete_values():
    rng = np.random.default_rng(1)
    training = np.sort(rng.poisson(3.0, 2_000).astype(float))
    live = rng.poisson(3.4, 500).astype(float)
    grid = KSGrid(training)
    counts = np.bincount(np.searchsorted(grid.points, live), minlength=len(grid.points) + 1)
    assert grid.distance(counts) == pytest.approx(ks_2samp(live, training).statistic)


def test_ks_rejects_a_shift_and_holds_back_small_windows():
    rng = np.random.default_rng(2)
    grid = KSGrid(np.sort(rng.normal(size=5_000)))

    def counts(sample: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(grid.points, sample), minlength=len(grid.points) + 1)

    shifted = counts(rng.normal(0.5, size=1_000))
    assert grid.rejects(shifted, min_observations=500)
    assert not grid.rejects(shifted, min_observations=2_000)
    assert not grid.rejects(counts(rng.normal(size=1_000)), min_observations=500)


def test_the_training_sample_is_the_one_the_model_was_fitted_on():
    spec = MODELS["m1"]
    model, _ = train(spec)
    sample = training_sample(spec)
    assert {name: float(np.median(v)) for name, v in sample.items()} == model.medians


def test_psi_is_held_back_until_the_window_has_enough_observations(reference, rules):
    rules = dataclasses.replace(rules, window_steps=10)
    rate = 10.0  # 10 requests a step: the guard of 300 lets no window of 10 steps through
    evaluations = simulate(
        rules, reference, np.random.default_rng(3), rate=rate, steps=40, variables=["age"]
    )
    assert np.isnan(evaluations.psi["age"]).all()
    assert not evaluations.ks_rejects["age"].any()


def test_full_windows_of_normal_traffic_stay_below_the_ticket_level(reference, rules):
    rng = np.random.default_rng(4)
    evaluations = simulate(rules, reference, rng, rate=40, steps=40, variables=["income"])
    values = evaluations.psi["income"][0]
    # The first windows hold fewer than 300 observations; once full, every window is judged.
    assert np.isnan(values[:5]).all()
    assert np.isfinite(values[30:]).all()
    assert (values[30:] < rules.levels["ticket"]).all()


def test_in_distribution_traffic_raises_no_psi_alert(reference, rules):
    result = false_alarms(rules, reference, np.random.default_rng(5), rate=20, seconds=600)
    psi_alerts = {k: v for k, v in result.firings.items() if "PSI" in k}
    assert set(psi_alerts) == {
        "FeatureDrift ticket (PSI > 0.1)",
        "FeatureDrift page (PSI > 0.2)",
        "PredictionDrift ticket (PSI > 0.1)",
        "PredictionDrift page (PSI > 0.2)",
    }
    assert sum(psi_alerts.values()) == 0
    assert 0 < result.highest_feature_psi < rules.levels["ticket"]


def test_a_large_shift_is_detected_no_sooner_than_the_for_duration(reference, rules):
    result = detection(rules, reference, np.random.default_rng(6), rate=20, sds=1.0, replicates=3)
    ticket = result.seconds["FeatureDrift ticket (PSI > 0.1)"]
    assert np.isfinite(ticket).all()
    assert (ticket >= (rules.for_steps + 1) * rules.step_seconds).all()
    assert (ticket <= result.horizon_seconds).all()


def test_a_tiny_shift_is_missed_by_psi_at_the_page_level(reference, rules):
    result = detection(rules, reference, np.random.default_rng(7), rate=20, sds=0.1, replicates=3)
    assert np.isinf(result.seconds["FeatureDrift page (PSI > 0.2)"]).all()
