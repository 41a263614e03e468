"""The physical bound of ``bench.detect``: its terms, read from the real rules and stack."""

from __future__ import annotations

import pytest

from alerts.rules import build_rules
from bench.detect import Bound, Detected, Timing, alert_bounds, rows, samples_needed

TIMING = Timing("t", scrape=1.0, evaluation=2.0, group_wait=3.0)


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


def test_bound_adds_scrape_evaluation_for_group_wait_and_the_second_sample() -> None:
    bounds = alert_bounds(
        _rules(
            {"alert": "Down", "expr": "up == 0", "for": "5s"},
            {"alert": "Errors", "expr": "rate(e[15s]) > 1", "for": "10s"},
        ),
        TIMING,
    )
    assert bounds["Down"] == Bound("Down", 5.0, 1, 1 + 2 + 5 + 3)
    assert bounds["Errors"] == Bound("Errors", 10.0, 2, 1 + 2 + 10 + 3 + 1)


def test_an_alert_with_several_rules_takes_the_lowest_bound() -> None:
    bounds = alert_bounds(
        _rules(
            {"alert": "Burn", "expr": "rate(e[1h]) > 1", "for": "2m"},
            {"alert": "Burn", "expr": "rate(e[5m]) > 1", "for": "30s"},
        ),
        TIMING,
    )
    assert bounds["Burn"].for_seconds == 30.0


def test_every_alert_of_the_real_test_rules_has_a_bound() -> None:
    bounds = alert_bounds(build_rules("test"), Timing.of_profile("test"))
    assert bounds["TargetDown"].samples == 1
    assert bounds["HighErrorRate"].samples == 2
    # test profile: 1 s scrape and evaluation, 1 s group_wait, HighErrorRate for: 5s.
    assert bounds["HighErrorRate"].seconds == pytest.approx(1 + 1 + 5 + 1 + 1)


def test_rows_judge_the_ratio_and_a_missed_page() -> None:
    bound = Bound("HighErrorRate", 5.0, 2, 10.0)
    table = rows([Detected("error-burst", "test", bound, 12.0), Detected("x", "test", bound, None)])
    assert [row.met for row in table] == [True, False]
    assert "1.20" in table[0].value
    assert table[1].value.startswith("no page")
