"""Traffic profiles: parsed strictly, applied faithfully, switched through a file."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.data import APPLICANT_FEATURES, FEATURE_SPECS
from loadgen.profile import Profile, ProfileError, training_sd


def _column(rows, feature, which=0):
    return np.array([row[which][feature] for row in rows], dtype=float)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["normal"], Profile("normal")),
        (["drift", "income", "1.0"], Profile("drift", "income", 1.0)),
        (["unit-change", "income", "0.001"], Profile("unit-change", "income", 0.001)),
        (["missing", "age", "0.3"], Profile("missing", "age", 0.3)),
        (["concept-drift"], Profile("concept-drift")),
    ],
)
def test_profiles_parse(words, expected):
    assert Profile.parse(words) == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([], "profile must be one of"),
        (["sideways"], "profile must be one of"),
        (["normal", "extra"], "takes no arguments"),
        (["drift", "income"], "takes FEATURE and a number"),
        (["drift", "late_payments", "1"], "feature must be one the applicant sends"),
        (["drift", "income", "lots"], "is not a number"),
        (["drift", "income", "nan"], "finite"),
        (["missing", "age", "1.5"], "between 0 and 1"),
        (["unit-change", "income", "0"], "must be positive"),
    ],
)
def test_bad_profiles_say_what_is_wrong(words, message):
    with pytest.raises(ProfileError, match=message):
        Profile.parse(words)


def test_rate_is_bounded():
    assert Profile().with_rate(20).rate == 20
    with pytest.raises(ProfileError, match="rate"):
        Profile().with_rate(0)


def test_normal_rows_are_valid_and_sent_as_is():
    rows = Profile().applicants(np.random.default_rng(1), 500)
    for sent, truth in rows:
        assert sent == truth
        for name in APPLICANT_FEATURES:
            spec = FEATURE_SPECS[name]
            assert spec.minimum <= sent[name] <= spec.maximum


def test_drift_shifts_the_mean_by_standard_deviations():
    rng = np.random.default_rng(2)
    normal = _column(Profile().applicants(rng, 4000), "age")
    drifted = _column(Profile("drift", "age", 1.0).applicants(rng, 4000), "age")
    shift = (drifted.mean() - normal.mean()) / training_sd()["age"]
    assert shift == pytest.approx(1.0, abs=0.1)


def test_unit_change_corrupts_what_is_sent_but_not_the_truth():
    rows = Profile("unit-change", "income", 0.001).applicants(np.random.default_rng(3), 200)
    sent, truth = _column(rows, "income", 0), _column(rows, "income", 1)
    assert np.allclose(sent, truth * 0.001)


def test_missing_sends_nulls_at_the_rate():
    rows = Profile("missing", "debt_ratio", 0.3).applicants(np.random.default_rng(4), 4000)
    share = np.mean([sent["debt_ratio"] is None for sent, _ in rows])
    assert share == pytest.approx(0.3, abs=0.03)
    assert all(truth["debt_ratio"] is not None for _, truth in rows)


def test_profile_round_trips_through_its_file(tmp_path):
    path = tmp_path / "load" / "profile.json"
    assert Profile.load(path) == Profile()
    profile = Profile("drift", "income", 0.5).with_rate(25)
    profile.save(path)
    assert Profile.load(path) == profile
