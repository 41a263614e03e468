"""The pure parts of ``bench.capacity``: Locust's CSV, the steps, memory slopes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.capacity import (
    GOAL_P99_SECONDS,
    LocustStats,
    MemoryTrace,
    Step,
    connection_steps,
    memory_rows,
    parse_failure,
    parse_stats,
    slope_per_minute,
    step_rows,
    users_for,
)
from bench.wrk import WrkResult

STATS_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)


def test_parse_stats_reads_the_aggregated_row(tmp_path: Path) -> None:
    path = tmp_path / "run_stats.csv"
    path.write_text(
        STATS_HEADER
        + "\nPOST,/predict,900,0,12,14,3,80,90,30.0,0,12,13,14,15,18,20,25,31,60,80,80"
        + "\n,Aggregated,1000,2,12,14,3,90,90,33.3,0.07,12,13,14,15,18,21,26,40,70,90,90\n"
    )
    assert parse_stats(path) == LocustStats(requests=1000, failures=2, rate=33.3, p99=0.040)


def test_parse_stats_without_aggregated_row_fails(tmp_path: Path) -> None:
    path = tmp_path / "run_stats.csv"
    path.write_text(STATS_HEADER + "\n")
    with pytest.raises(ValueError, match="Aggregated"):
        parse_stats(path)


def test_connections_double_up_to_the_top() -> None:
    assert list(connection_steps(top=16)) == [1, 2, 4, 8, 16]


def test_users_keep_each_under_a_few_requests_a_second() -> None:
    assert users_for(10) == 10
    assert users_for(400) == 100


def test_a_step_passes_only_without_errors_and_under_the_p99_goal() -> None:
    assert Step(8, WrkResult(1000, 10.0, 0, 0.01, GOAL_P99_SECONDS / 2)).passed
    assert not Step(8, WrkResult(1000, 10.0, 1, 0.01, GOAL_P99_SECONDS / 2)).passed
    assert not Step(8, WrkResult(1000, 10.0, 0, 0.01, GOAL_P99_SECONDS)).passed


def test_the_capacity_is_the_highest_rate_reached_by_a_passing_step() -> None:
    steps = [
        Step(8, WrkResult(2400, 10.0, 0, 0.01, 0.05)),
        Step(16, WrkResult(3150, 10.0, 0, 0.02, 0.08)),
        Step(32, WrkResult(4000, 10.0, 3, 0.05, 0.40)),
    ]
    table = step_rows(steps)
    assert [row.met for row in table[:3]] == [True, True, False]
    assert table[-1].value == "315 req/s"


def test_slope_per_minute_of_a_steady_climb() -> None:
    assert slope_per_minute([0, 30, 60], [100, 130, 160]) == pytest.approx(60)


def test_slope_needs_two_samples() -> None:
    with pytest.raises(ValueError):
        slope_per_minute([0], [1])


def test_memory_rows_show_start_end_and_slope() -> None:
    trace = MemoryTrace("scoring-0", (0.0, 60.0), (100 * 2**20, 102 * 2**20))
    (row,) = memory_rows("load", [trace])
    assert row.case == "load, scoring-0"
    assert row.value == "100 -> 102 MiB over 60 s, +2.00 MiB/min"


def test_parse_failure_names_the_most_frequent(tmp_path: Path) -> None:
    path = tmp_path / "run_failures.csv"
    path.write_text(
        "Method,Name,Error,Occurrences\n"
        "POST,/feedback,HTTPError('404'),1\n"
        "POST,/predict,HTTPError('503'),4\n"
    )
    assert parse_failure(path) == "POST /predict: HTTPError('503') (x4)"


def test_parse_failure_without_failures_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "run_failures.csv"
    path.write_text("Method,Name,Error,Occurrences\n")
    assert parse_failure(path) == ""
