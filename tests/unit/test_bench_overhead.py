"""bench.overhead: interleaving, medians and the ratios it reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from bench import overhead, wrk
from bench.overhead import VARIANTS, Summary, Variant
from bench.pair import ServicePair
from bench.wrk import WrkResult
from obslab.errors import ObslabError


def _variant(key: str) -> Variant:
    return next(variant for variant in VARIANTS if variant.key == key)


def _summary(key: str, rate: float, errors: int = 0) -> Summary:
    return Summary(_variant(key), rate=rate, p50=0.01, p99=0.05, errors=errors)


def _by(rows: list, case: str, measure: str):
    return next(row for row in rows if row.case == case and row.measure == measure)


def test_every_variant_leads_one_round_and_each_round_runs_all() -> None:
    rounds = [overhead.rotated(VARIANTS, index) for index in range(len(VARIANTS))]

    keys = [variant.key for variant in VARIANTS]
    assert [order[0].key for order in rounds] == keys
    assert all(sorted(v.key for v in order) == keys for order in rounds)
    assert overhead.rotated(VARIANTS, len(VARIANTS) + 1) == rounds[1]


def test_summarise_takes_medians_and_sums_errors() -> None:
    variant = Variant("x", "x")
    runs = [
        WrkResult(requests=1000, seconds=10, errors=0, p50=0.010, p99=0.100),
        WrkResult(requests=3000, seconds=10, errors=2, p50=0.030, p99=0.050),
        WrkResult(requests=2000, seconds=10, errors=1, p50=0.020, p99=0.070),
    ]

    summary = overhead.summarise(variant, runs)

    assert (summary.rate, summary.p50, summary.p99, summary.errors) == (200, 0.02, 0.07, 3)


def test_ratios_are_relative_to_telemetry_off_and_only_b_has_the_goal() -> None:
    rows = overhead.rows(
        [_summary("a", 400), _summary("b", 360), _summary("c", 220), _summary("d", 380)]
    )

    full = _by(rows, "b/a", "throughput ratio")
    assert (full.value, full.goal, full.met) == ("0.90", ">= 0.85", True)
    zero_code = _by(rows, "c/a", "throughput ratio")
    assert (zero_code.value, zero_code.met) == ("0.55", None)
    assert _by(rows, "d/a", "throughput ratio").value == "0.95"
    versus = _by(rows, "b vs c", "throughput ratio")
    assert (versus.value, versus.goal, versus.met) == ("1.64", ">= 1.15", True)


def test_b_over_a_is_also_taken_within_each_round() -> None:
    """Rounds are paired: the machine's speed drifts between rounds, and a ratio taken within
    one round does not carry that drift."""
    variant = {key: _variant(key) for key in "ab"}
    # Round by round, b runs at 0.90, 0.80 and 0.86 of a, while the machine slows down.
    off = overhead.summarise(variant["a"], [_run(rate) for rate in (500, 400, 300)])
    full = overhead.summarise(variant["b"], [_run(rate) for rate in (450, 320, 258)])

    rows = overhead.rows([off, full])

    assert _by(rows, "b/a", "throughput ratio").value == "0.80"  # 320 / 400, the medians
    per_round = _by(rows, "b/a", "throughput ratio per round")
    assert per_round.value == "median 0.86, 0.80 to 0.90; >= 0.85 in 2 of 3"


def test_a_single_round_or_unpaired_rounds_show_no_per_round_ratio() -> None:
    variant = {key: _variant(key) for key in "ab"}
    for a_rates, b_rates in [((400,), (380,)), ((400, 410), (380,))]:
        off = overhead.summarise(variant["a"], [_run(rate) for rate in a_rates])
        full = overhead.summarise(variant["b"], [_run(rate) for rate in b_rates])
        rows = overhead.rows([off, full])
        assert not [row for row in rows if row.measure == "throughput ratio per round"]


def _run(rate: float) -> WrkResult:
    return WrkResult(requests=int(rate * 10), seconds=10, errors=0, p50=0.01, p99=0.02)


def test_a_slow_full_variant_and_errors_fail_their_goals() -> None:
    rows = overhead.rows(
        [_summary("a", 400), _summary("b", 300, errors=4), _summary("c", 320), _summary("d", 390)]
    )

    assert _by(rows, "b/a", "throughput ratio").met is False
    assert _by(rows, "b vs c", "throughput ratio").met is False
    errors = _by(rows, "b: obslab, traces 100%", "errors")
    assert (errors.value, errors.met) == ("4", False)


def test_a_dead_trace_backend_is_set_beside_the_same_exporter_alive_by_latency() -> None:
    down = Summary(_variant("e"), rate=290, p50=0.015, p99=0.05, errors=0)
    rows = overhead.rows([_summary("a", 400), _summary("b", 300), down, _summary("f", 300)])

    assert _by(rows, "e vs f", "p50 latency ratio").value == "1.50"


def test_cpu_per_request_is_a_median_per_service_and_b_shows_what_it_adds() -> None:
    variant = _variant("b")
    runs = [WrkResult(requests=1000, seconds=10, errors=0, p50=0.01, p99=0.02)] * 3
    cpu = [
        {"features": 0.0006, "scoring": 0.0020},
        {"features": 0.0008, "scoring": 0.0016},
        {"features": 0.0007, "scoring": 0.0018},
    ]
    full = overhead.summarise(variant, runs, cpu)
    assert full.cpu == {"features": 0.0007, "scoring": 0.0018}

    baseline = Summary(VARIANTS[0], 400, 0.01, 0.02, 0, cpu={"features": 0.0005, "scoring": 0.0012})
    rows = overhead.rows([baseline, full])

    assert _by(rows, "b: obslab, traces 100%", "CPU per request").value == (
        "features 700 µs, scoring 1800 µs"
    )
    assert _by(rows, "b - a", "CPU per request added").value == (
        "features +200 µs (+40%), scoring +600 µs (+50%)"
    )


def test_without_cpu_figures_there_are_no_cpu_rows() -> None:
    rows = overhead.rows([_summary("a", 400), _summary("b", 360)])
    assert not [row for row in rows if "CPU" in row.measure]


def test_a_short_run_measures_throughput_and_each_services_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Real gunicorn pairs under wrk, one short round: the benchmark works end to end."""
    # Clear of a user's stack, of the live suite's and of the kernel's ephemeral ports
    # (32768-60999 on Linux), which any outgoing connection may hold.
    monkeypatch.setenv("OBSLAB_PORT_OFFSET", "10000")
    chosen = [variant for variant in VARIANTS if variant.key in ("a", "b")]

    summaries = overhead.measure(chosen, rounds=1, seconds=2, connections=2)

    for summary in summaries:
        assert summary.rate > 0 and summary.errors == 0, summary
        assert set(summary.cpu) == {"features", "scoring"}
        assert all(seconds > 0 for seconds in summary.cpu.values()), summary


def test_b_over_a_comes_with_a_bootstrap_interval_around_the_ratio_of_medians() -> None:
    variant = {key: _variant(key) for key in "ab"}
    steady = overhead.summarise(variant["a"], [_run(400)] * 8)
    # b runs at 0.80 to 0.95 of a: the interval lies within that spread and holds the ratio.
    full = overhead.summarise(
        variant["b"], [_run(rate) for rate in (320, 340, 380, 360, 350, 344, 336, 372)]
    )

    interval = _by(overhead.rows([steady, full]), "b/a", "throughput ratio, 95 % interval")

    low, high = (float(part) for part in interval.value.split(" (")[0].split(" to "))
    ratio = float(_by(overhead.rows([steady, full]), "b/a", "throughput ratio").value)
    assert 0.80 <= low < ratio < high <= 0.95
    assert interval.value.endswith("(bootstrap over 8 rounds)")
    assert (interval.goal, interval.met) == ("low end >= 0.85", low >= 0.85)
    # Same figures, same interval: the draws are seeded.
    assert overhead.rows([steady, full]) == overhead.rows([steady, full])


def test_a_bench_run_can_be_limited_to_some_variants() -> None:
    assert [variant.key for variant in overhead.chosen("")] == ["a", "b", "c", "d", "e", "f"]
    assert [variant.key for variant in overhead.chosen(" b, a ")] == ["a", "b"]
    # Diagnostic variants run only when named.
    assert [variant.key for variant in overhead.chosen("h,a,g")] == ["a", "g", "h"]


@pytest.mark.parametrize(
    ("keys", "message"),
    [("a,z", "names no variant z; choose from a, b, c, d, e, f, g, h"), ("b,c", "must include a")],
)
def test_an_unknown_or_baseless_variant_choice_is_refused_by_name(keys: str, message: str) -> None:
    with pytest.raises(ObslabError, match="OBSLAB_BENCH_VARIANTS") as refused:
        overhead.chosen(keys)
    assert message in str(refused.value)


def test_the_goal_is_met_reliably_only_when_the_whole_interval_meets_it() -> None:
    variant = {key: _variant(key) for key in "ab"}
    off = overhead.summarise(variant["a"], [_run(400)] * 6)
    for b_rates, reliably in [((372, 368, 380, 364, 376, 370), True), ((300, 360, 380) * 2, False)]:
        full = overhead.summarise(variant["b"], [_run(rate) for rate in b_rates])
        rows = overhead.rows([off, full])
        assert _by(rows, "b/a", "throughput ratio").met is True
        assert _by(rows, "b/a", "throughput ratio, 95 % interval").met is reliably


def test_a_variant_can_turn_telemetry_on_in_one_service_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Real gunicorn pairs: g has obslab's telemetry in scoring alone, h in features alone."""
    monkeypatch.setenv("OBSLAB_PORT_OFFSET", "10000")
    counted = {}
    for slot, key in enumerate("gh"):
        variant = _variant(key)
        with ServicePair(key, slot, tmp_path / key, env=variant.env, only=variant.only) as pair:
            body = json.loads(wrk.applicant_bodies(1)[0])
            assert requests.post(f"{pair.scoring_url}/predict", json=body, timeout=10).ok
            counted[key] = {
                service: "http_requests_total{" in requests.get(f"{url}/metrics", timeout=10).text
                for service, url in (("scoring", pair.scoring_url), ("features", pair.features_url))
            }

    assert counted == {
        "g": {"scoring": True, "features": False},
        "h": {"scoring": False, "features": True},
    }


def test_a_pair_refuses_settings_for_a_service_it_does_not_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not nginx"):
        ServicePair("x", 0, tmp_path, only={"nginx": {}})
