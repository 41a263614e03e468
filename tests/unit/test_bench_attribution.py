"""``bench.attribution`` without a stack: the samples significance needs, read from the rules'
own tests, the bound built from them, and how runs become precision and recall."""

from __future__ import annotations

import pytest

from alerts.rules import ks_coefficient, two_proportion_z, z_critical
from alerts.thresholds import load_profile
from bench.attribution import (
    DEPLOY_ALERTS,
    SCENARIOS,
    Expected,
    Run,
    Scenario,
    fill_seconds,
    ks_samples,
    least_samples,
    ratio_samples,
    rows,
    score_distance,
)

Z = z_critical(0.001)
COEFFICIENT = ks_coefficient(0.001)


@pytest.mark.parametrize("threshold", [1, 2, 3, 17, 1000, 123_457])
def test_least_samples_finds_where_a_monotone_test_turns(threshold: int) -> None:
    assert least_samples(lambda n: n >= threshold) == threshold


def test_least_samples_says_when_no_sample_is_enough() -> None:
    assert least_samples(lambda n: False, limit=1000) is None


@pytest.mark.parametrize(
    ("share", "reference", "margin"), [(0.077, 10_000, 0.01), (0.3, 500, 0.05), (1.0, 50, 0.01)]
)
def test_ratio_samples_is_where_the_rules_z_test_first_convicts(
    share: float, reference: float, margin: float
) -> None:
    n = ratio_samples(share, reference, margin, Z)
    assert n is not None
    assert two_proportion_z((share * n, n), (0, reference), margin) > Z
    assert two_proportion_z((share * (n - 1), n - 1), (0, reference), margin) <= Z


def test_a_share_within_the_margin_never_convicts() -> None:
    assert ratio_samples(0.005, 10_000, 0.01, Z) is None


def test_ks_samples_is_where_the_distance_first_passes_its_chance_bound() -> None:
    n = ks_samples(0.28, 600, COEFFICIENT, 0.1, 30)
    assert n is not None and n >= 30
    assert COEFFICIENT * (1 / n + 1 / 600) ** 0.5 < 0.28
    assert n == 30 or COEFFICIENT * (1 / (n - 1) + 1 / 600) ** 0.5 >= 0.28


def test_a_distance_under_the_floor_never_convicts() -> None:
    assert ks_samples(0.09, 10**6, COEFFICIENT, 0.1, 30) is None


def test_the_miscalibrated_model_is_beyond_the_floor_and_the_retrain_is_not() -> None:
    assert score_distance("m1", "m1") == 0
    assert score_distance("m2", "m1") < 0.02
    assert score_distance("m3", "m1") > 0.2


def test_a_smaller_canary_share_needs_longer_traffic() -> None:
    config = load_profile("test")
    times = [
        fill_seconds(Expected("DeployErrorRegression", "1.2.0", share=share), 20.0, config)
        for share in (0.5, 0.25, 0.1)
    ]
    assert None not in times
    assert times == sorted(times)
    assert times[-1] > 3 * times[0]


def test_every_expected_page_is_a_deploy_alert_the_rules_can_raise_in_time() -> None:
    config = load_profile("test")
    onset = config.seconds("deploy.onset_window")
    for scenario in SCENARIOS:
        for expected in scenario.expected:
            assert expected.alert in DEPLOY_ALERTS
            fill = fill_seconds(expected, scenario.rate, config)
            assert fill is not None and fill < onset / 2, scenario.name


def _steps(lab: object) -> float:
    return 0.0


BAD = Scenario("bad", _steps, (Expected("DeployErrorRegression", "1.2.0"),))
GOOD = Scenario("good", _steps)


def test_rows_count_true_and_false_pages_and_missed_releases() -> None:
    runs = [
        Run(BAD, {("DeployErrorRegression", "1.2.0")}, {BAD.expected[0]: 20.0}),
        Run(BAD, {("DeployErrorRegression", "1.2.0"), ("DeployErrorRegression", "1.0.0")}),
        Run(GOOD, {("DeployPredictionShift", "1.1.1")}),
        Run(GOOD),
    ]
    table = {row.measure: row for row in rows(runs, {BAD.expected[0]: 15.0}, [BAD, GOOD])}

    assert table["precision of deploy pages"].value == "2/4 = 0.50"
    assert table["precision of deploy pages"].met is False
    assert table["recall of bad releases"].value == "2/2 = 1.00"
    assert table["false deploy pages"].value == "1 in 2 runs"
    # The second run's page came only in the quiet period: it is no time to attribute.
    assert table["page DeployErrorRegression 1.2.0"].value.startswith("1 of 2 runs paged")
    assert table["page DeployErrorRegression 1.2.0"].met is False


def test_rows_hold_the_time_to_attribute_to_its_bound() -> None:
    runs = [Run(BAD, {("DeployErrorRegression", "1.2.0")}, {BAD.expected[0]: s}) for s in (18, 20)]
    within = rows(runs, {BAD.expected[0]: 16.0}, [BAD])[-1]
    beyond = rows(runs, {BAD.expected[0]: 12.0}, [BAD])[-1]

    assert within.value == "median 19.0 s / bound 16 s = 1.19 (runs 18.0 to 20.0 s)"
    assert within.met is True
    assert beyond.met is False
