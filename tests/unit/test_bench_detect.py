"""The physical bound of ``bench.detect``: its terms, read from the real rules and stack, and
the onset each fault's definition adds."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from alerts.rules import build_rules, psi
from alerts.thresholds import load_profile
from bench import detect
from bench.detect import (
    Bound,
    Detected,
    Timing,
    alert_bounds,
    fault_bounds,
    fill_seconds,
    growth_fill,
    job_error_share,
    onsets,
    psi_fill,
    rows,
    samples_needed,
    window_seconds,
)
from bench.lab import LOAD_RATE
from loadgen.profile import DEFAULT_FEEDBACK_SHARE, Profile
from obslab import faults
from obslab.stackconfig import load_stack

TIMING = Timing("t", scrape=1.0, evaluation=2.0, group_wait=3.0, symptom_group_wait=7.0)


def _rules(*rules: dict) -> dict:
    return {"groups": [{"name": "g", "interval": "2s", "rules": list(rules)}]}


def test_an_instant_condition_needs_one_sample() -> None:
    assert samples_needed('up{job="scoring"} == 0', {}) == 1


def test_a_range_function_needs_two_samples() -> None:
    assert samples_needed("rate(http_requests_total[15s]) > 1", {}) == 2


def test_a_range_function_inside_a_recording_rule_counts() -> None:
    records = {
        "job:errors:ratio": "job:errors:rate / job:requests:rate",
        "job:errors:rate": "sum(rate(x[1m]))",
        "job:requests:rate": "job:errors:rate",
    }
    assert samples_needed("job:errors:ratio > 0.05", records) == 2
    assert samples_needed("job:other > 0.05", records) == 1


def test_the_window_is_the_longest_range_a_range_function_reads() -> None:
    records = {"job:burn:long": "sum(rate(x[1m]))", "job:burn:short": "sum(rate(x[15s]))"}
    assert window_seconds("job:burn:long > 1 and job:burn:short > 1", records) == 60
    assert window_seconds('up{job="scoring"} == 0', records) == 0


def test_a_last_over_time_memory_is_no_window() -> None:
    expr = "last_over_time(deploy:x[5m]) and rate(y[30s]) > 0"
    assert window_seconds(expr, {}) == 30


def test_bound_adds_scrape_evaluation_for_group_wait_and_the_second_sample() -> None:
    bounds = alert_bounds(
        _rules(
            {"alert": "Down", "expr": "up == 0", "for": "5s"},
            {"alert": "Errors", "expr": "rate(e[15s]) > 1", "for": "10s"},
        ),
        TIMING,
    )
    assert bounds["Down"] == Bound("Down", 5.0, 1, 0.0, 0.0, 1 + 2 + 5 + 3)
    assert bounds["Down"].seconds == 1 + 2 + 5 + 3
    assert bounds["Errors"] == Bound("Errors", 10.0, 2, 15.0, 1.0, 1 + 2 + 10 + 3)
    assert bounds["Errors"].seconds == 1 + 2 + 10 + 3 + 1


def test_a_symptom_waits_for_its_cause_in_alertmanager() -> None:
    bounds = alert_bounds(
        _rules(
            {"alert": "HighErrorRate", "expr": "up == 0", "for": "5s"},
            {"alert": "TargetDown", "expr": "up == 0", "for": "5s"},
        ),
        TIMING,
    )
    assert bounds["HighErrorRate"].plumbing == 1 + 2 + 5 + 7
    assert bounds["TargetDown"].plumbing == 1 + 2 + 5 + 3


def test_an_alert_with_several_rules_takes_the_lowest_bound() -> None:
    bounds = alert_bounds(
        _rules(
            {"alert": "Burn", "expr": "rate(e[1h]) > 1", "for": "2m"},
            {"alert": "Burn", "expr": "rate(e[5m]) > 1", "for": "30s"},
        ),
        TIMING,
    )
    assert bounds["Burn"].for_seconds == 30.0
    assert bounds["Burn"].window == 300.0


def test_an_onset_longer_than_the_second_sample_replaces_it() -> None:
    bound = Bound("Errors", 10.0, 2, 15.0, 1.0, 16.0)
    assert bound.with_onset(4.0) == Bound("Errors", 10.0, 2, 15.0, 4.0, 16.0)
    assert bound.with_onset(4.0).seconds == 20.0
    assert bound.with_onset(0.5) == bound


def test_fill_is_the_threshold_over_the_effect_of_the_window() -> None:
    # Every request failing against a 5% error ratio over 15 s: 5% of the window.
    assert fill_seconds(0.05, 1.0, 15.0) == pytest.approx(0.75)
    # Half of them failing: twice as long.
    assert fill_seconds(0.05, 0.5, 15.0) == pytest.approx(1.5)


def test_an_effect_that_never_passes_the_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="never passes"):
        fill_seconds(0.05, 0.05, 15.0)


def test_feedback_dilutes_the_error_share_only_while_predictions_succeed() -> None:
    assert job_error_share(1.0) == 1.0
    # Half fail; the other half is accepted and half of those report feedback: 0.5 / 1.25.
    assert job_error_share(0.5) == pytest.approx(0.4)


def test_error_burst_onsets_follow_its_rate_and_the_thresholds() -> None:
    test = load_profile("test")
    errors = job_error_share(0.5)
    onset = onsets("error-burst", {}, "test")
    assert onset["HighErrorRate"] == pytest.approx(0.05 / errors * test.seconds("rate_window"))
    burn_ratio = 14.4 * (1 - 0.995)
    long_window = test.seconds("slo.fast.long_window")
    assert onset["ErrorBudgetBurn"] == pytest.approx(burn_ratio / errors * long_window)


def test_a_slower_pace_takes_longer_to_fill_the_window() -> None:
    # 5% errors over 15 s when every request fails but only 4 of 20 a second get through:
    # 4d / (4d + 20 (15 - d)) > 0.05 once d > 0.05 x 15 / (0.2 x 0.95 + 0.05).
    assert fill_seconds(0.05, 1.0, 15.0, pace=0.2) == pytest.approx(0.75 / 0.24)
    with pytest.raises(ValueError, match="pace"):
        fill_seconds(0.05, 1.0, 15.0, pace=0.0)


def test_a_slow_dependency_shows_when_scoring_times_out_at_the_pace_of_its_threads() -> None:
    onset = onsets("slow-dependency", {}, "test")
    # 2 s read timeout (features waits 2.5 s): scoring's threads pass threads / 2 s of the
    # load's predictions, then 5% (p95) or 10% (failures) of 15 s must be faulted.
    scoring = load_stack().scoring
    passed = scoring.instances * scoring.threads / 2.0
    predictions = passed / LOAD_RATE
    assert onset["HighLatency"] == pytest.approx(2.0 + fill_seconds(0.05, 1.0, 15, predictions))
    assert onset["DependencyFailing"] == pytest.approx(
        2.0 + fill_seconds(0.1, 1.0, 15, predictions)
    )
    # scoring's ratio also counts the load's /feedback, which stops with the predictions.
    requests = passed / (LOAD_RATE * (1 + DEFAULT_FEEDBACK_SHARE))
    assert onset["HighErrorRate"] == pytest.approx(2.0 + fill_seconds(0.05, 1.0, 15, requests))


def test_a_shorter_delay_than_the_timeout_shows_sooner() -> None:
    slow = onsets("slow-dependency", {}, "test")["HighLatency"]
    sooner = onsets("slow-dependency", {"delay_ms": "1000"}, "test")["HighLatency"]
    assert sooner < slow - 1.0


def test_a_cpu_hog_shows_at_the_pace_its_instances_can_answer() -> None:
    # 300 ms of CPU a prediction: two instances answer 6.7 a second of the load's 20, and the
    # ten users queue for them, each answer taking 5 x 0.3 - 0.5 = 1 s, past the 0.5 s p95.
    stack = load_stack()
    assert (stack.scoring.instances, stack.locust.users) == (2, 10)
    predictions = 2 / 0.3 / LOAD_RATE
    onset = onsets("cpu-hog", {}, "test")["HighLatency"]
    assert onset == pytest.approx(0.5 + fill_seconds(0.05, 1.0, 15, predictions))
    assert onsets("cpu-hog", {"cpu_ms": "600"}, "test")["HighLatency"] > onset


def test_a_cpu_hog_the_load_does_not_queue_for_is_refused() -> None:
    # 150 ms a prediction: answers of 5 x 0.15 - 0.5 = 0.25 s never pass a 0.5 s p95.
    with pytest.raises(ValueError, match="never pass"):
        onsets("cpu-hog", {"cpu_ms": "150"}, "test")


def test_the_bad_release_fails_about_one_applicant_in_nine() -> None:
    share = detect.release_failure_share("1.2.0")
    assert 0.09 < share < 0.13
    assert detect.release_failure_share("1.1.0") == 0.0


def test_concept_drift_takes_accuracy_well_below_the_alert_threshold() -> None:
    drop = detect.concept_drift_accuracy_drop("m1")
    assert drop > load_profile("test").fraction("accuracy.max_drop")


def test_the_new_release_must_gather_the_minimum_score_sample() -> None:
    expected = load_profile("test").number("deploy.min_score_samples") / LOAD_RATE
    assert onsets("model-regression", {}, "test")["DeployPredictionShift"] == expected


TENTHS = [0.1] * 10
EPSILON = 1e-4


def test_psi_fill_is_the_least_drifted_share_whose_mix_passes_the_level() -> None:
    drifted = [1.0] + [0.0] * 9
    seconds = psi_fill(TENTHS, drifted, 0.1, 30.0, EPSILON)
    share = seconds / 30.0
    # Share s in the lowest bin and 0.1 (1 - s) in the others: PSI = 0.9 s ln((1 + 9 s) / (1 - s)).
    assert 0.9 * share * math.log((1 + 9 * share) / (1 - share)) == pytest.approx(0.1)

    def mixed(s: float) -> float:
        live = [(1 - s) * b + s * d for b, d in zip(TENTHS, drifted, strict=True)]
        return psi(live, TENTHS, EPSILON)

    assert mixed(share) > 0.1 > mixed(share * 0.99)


def test_a_higher_psi_level_takes_a_longer_fill() -> None:
    drifted = [0.0] * 8 + [0.3, 0.7]
    page, ticket = (psi_fill(TENTHS, drifted, level, 30.0, EPSILON) for level in (0.2, 0.1))
    assert page > ticket


def test_a_drift_that_never_passes_the_level_is_refused() -> None:
    slight = [0.12, 0.08] + [0.1] * 8
    with pytest.raises(ValueError, match="never passes"):
        psi_fill(TENTHS, slight, 0.1, 30.0, EPSILON)


def test_a_unit_change_to_thousands_sends_every_income_into_the_lowest_bin() -> None:
    baseline, drifted = detect.feature_bin_shares(Profile("unit-change", "income", 0.001), "m1")
    assert drifted[0] == 1.0
    assert sum(drifted) == pytest.approx(1.0)
    assert len(drifted) == len(baseline) == 10


def test_feature_drift_onsets_follow_the_ticket_level_and_the_drift_window() -> None:
    test = load_profile("test")
    baseline, drifted = detect.feature_bin_shares(Profile("unit-change", "income", 0.001), "m1")
    onset = onsets("unit-change", {}, "test")["FeatureDrift"]
    ticket = test.number("drift.ticket_psi")
    assert onset == pytest.approx(psi_fill(baseline, drifted, ticket, 30.0, EPSILON))
    # The demo's drift window is 4 times the test's; the shares are the same.
    assert onsets("unit-change", {}, "demo")["FeatureDrift"] == pytest.approx(onset * 4)


def test_a_smaller_shift_must_fill_more_of_the_window() -> None:
    default = onsets("data-drift", {}, "test")["FeatureDrift"]
    smaller = onsets("data-drift", {"shift": "1.0"}, "test")["FeatureDrift"]
    assert default < smaller < load_profile("test").seconds("drift.window")


def test_a_leak_from_unknown_memory_keeps_the_two_sample_bound() -> None:
    bounds = alert_bounds(build_rules("test"), Timing.of_profile("test"))
    assert fault_bounds("memory-leak", bounds, "test")["MemoryGrowth"] == bounds["MemoryGrowth"]


MiB = 2**20
#: A leak of 4 MiB/s, as the benchmark injects, under the demo profile's MemoryGrowth.
LEAK = {"rate": 4 * MiB, "window": 600.0, "horizon": 3600.0, "limit": 512 * MiB}


def _fitted(x: float, start: float, rate: float, window: float, horizon: float) -> tuple:
    """What Prometheus computes from samples every 0.1 s, the leak x seconds old: the slope
    (deriv) and the prediction (predict_linear) of the least-squares line over the window."""
    t = np.arange(-window, 0.0, 0.1)
    values = start + rate * np.maximum(0.0, t + x)
    slope, level = np.polyfit(t, values, 1)
    return slope, level + slope * horizon


@pytest.mark.parametrize("start", [100 * MiB, 147 * MiB, 400 * MiB])
def test_a_leak_passes_the_fitted_prediction_when_the_fill_says(start: float) -> None:
    fill = growth_fill(start=start, min_growth=16384, **LEAK)
    window, horizon = LEAK["window"], LEAK["horizon"]

    before = _fitted(fill - 1, start, LEAK["rate"], window, horizon)
    after = _fitted(fill + 1, start, LEAK["rate"], window, horizon)

    assert before[1] < LEAK["limit"] < after[1]
    assert after[0] > 16384


def test_memory_that_starts_higher_passes_sooner() -> None:
    low = growth_fill(start=100 * MiB, min_growth=16384, **LEAK)
    high = growth_fill(start=400 * MiB, min_growth=16384, **LEAK)
    assert 0 < high < low < LEAK["window"]


def test_a_slow_leak_needs_more_than_its_window() -> None:
    fill = growth_fill(
        rate=0.01 * MiB, window=20, horizon=600, start=100 * MiB, limit=512 * MiB, min_growth=1
    )
    # The window is all ramp by then: the line is the leak itself.
    assert fill == pytest.approx((412 * MiB) / (0.01 * MiB) - 600)


def test_a_leak_no_faster_than_the_growth_threshold_never_passes() -> None:
    with pytest.raises(ValueError, match="never passes"):
        growth_fill(rate=1000, window=20, horizon=600, start=0, limit=1, min_growth=1000)


def test_memory_leak_onset_reads_the_profiles_memory_rule() -> None:
    onset = onsets("memory-leak", {"mb_per_second": "4"}, "demo", resident_bytes=147 * MiB)
    demo = load_profile("demo")
    assert onset["MemoryGrowth"] == pytest.approx(
        growth_fill(
            rate=4 * MiB,
            window=demo.seconds("memory.window"),
            horizon=demo.seconds("memory.horizon"),
            start=147 * MiB,
            limit=demo.number("memory.limit_bytes"),
            min_growth=demo.number("memory.min_growth_bytes_per_second"),
        )
    )
    assert onsets("memory-leak", {"mb_per_second": "4"}, "demo") == {}


@pytest.mark.parametrize("profile", ["test", "demo"])
def test_every_fault_has_a_bound_for_each_of_its_alerts(profile: str) -> None:
    bounds = alert_bounds(build_rules(profile), Timing.of_profile(profile))
    for name, fault in faults.CATALOGUE.items():
        assert set(fault_bounds(name, bounds, profile)) == set(fault.alerts)


def test_every_alert_of_the_real_test_rules_has_a_bound() -> None:
    bounds = alert_bounds(build_rules("test"), Timing.of_profile("test"))
    assert bounds["TargetDown"].samples == 1
    assert bounds["HighErrorRate"].samples == 2
    # test profile: 1 s scrape and evaluation, HighErrorRate for: 5s, and a symptom's 8 s
    # group_wait (config/stack.yaml).
    assert bounds["HighErrorRate"].seconds == pytest.approx(1 + 1 + 5 + 8 + 1)
    assert bounds["TargetDown"].seconds == pytest.approx(1 + 1 + 3 + 1)
    # The fast burn's long window, not the slow one's: that rule gives the bound.
    assert bounds["ErrorBudgetBurn"].window == 60


def test_deploy_faults_come_last(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSLAB_BENCH_FAULTS", "bad-deploy,error-burst,model-regression,cpu-hog")
    assert detect.selected_faults() == ["error-burst", "cpu-hog", "bad-deploy", "model-regression"]


def test_a_page_of_the_slow_burn_is_not_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = [
        {"received_at": "2026-11-28T10:00:05+00:00", "labels": {"window": "slow"}},
        {"received_at": "2026-11-28T10:00:09+00:00", "labels": {"window": "fast"}},
        {"received_at": "2026-11-28T09:59:00+00:00", "labels": {"window": "fast"}},
    ]
    monkeypatch.setattr(detect, "fetch_pages", lambda *args, **kwargs: pages)
    since = datetime(2026, 11, 28, 10, tzinfo=UTC).timestamp()
    assert detect.first_page("http://oncall", "Burn", since, timeout=0) == since + 9


def test_rows_judge_the_ratio_and_a_missed_page() -> None:
    bound = Bound("HighErrorRate", 5.0, 2, 15.0, 1.0, 9.0)
    table = rows([Detected("error-burst", "test", bound, 12.0), Detected("x", "test", bound, None)])
    assert [row.met for row in table] == [True, False]
    assert "1.20" in table[0].value
    assert table[1].value.startswith("no page")


def test_the_first_notice_is_the_earliest_of_the_fault_s_alerts_since_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pages = [
        {"received_at": "2026-11-28T10:00:40+00:00", "kind": "page", "labels": {"alertname": "A"}},
        {
            "received_at": "2026-11-28T10:00:30+00:00",
            "kind": "ticket",
            "labels": {"alertname": "B"},
        },
        {"received_at": "2026-11-28T10:00:10+00:00", "kind": "page", "labels": {"alertname": "C"}},
        {"received_at": "2026-11-28T09:59:00+00:00", "kind": "page", "labels": {"alertname": "A"}},
    ]
    monkeypatch.setattr(detect, "fetch_pages", lambda *args, **kwargs: pages)
    since = datetime(2026, 11, 28, 10, tzinfo=UTC).timestamp()
    assert detect.first_notice("http://oncall", {"A", "B"}, since, timeout=0) == ("B", "ticket", 30)
    assert detect.first_notice("http://oncall", {"D"}, since, timeout=0) is None


def test_a_cold_start_is_met_within_three_minutes_and_without_another_alert() -> None:
    table = detect.cold_rows(
        [
            detect.ColdStart("data-drift", ("FeatureDrift", "ticket", 131.0)),
            detect.ColdStart("memory-leak", ("MemoryGrowth", "page", 181.0)),
            detect.ColdStart("cpu-hog", None),
            detect.ColdStart(
                "error-burst", ("HighErrorRate", "page", 80.0), ("TargetDown (page)",)
            ),
        ]
    )
    assert [row.met for row in table] == [True, False, False, False]
    assert table[0].value == "131.0 s (FeatureDrift, ticket)"
    assert table[2].value.startswith("nothing within")
    assert table[3].value.endswith("also: TargetDown (page)")
