"""The pure parts of ``bench.soak``: the schedule, errors outside windows, flatness."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.capacity import LocustStats, MemoryTrace
from bench.soak import (
    MAX_FAULT_SECONDS,
    Window,
    delivered,
    errors_outside,
    is_flat,
    parse_history,
    rows,
    schedule,
)


def test_schedule_puts_each_fault_in_the_middle_of_its_part() -> None:
    assert schedule(120, ["a", "b", "c"]) == [
        ("a", 7.5, 22.5),
        ("b", 37.5, 52.5),
        ("c", 67.5, 82.5),
    ]


def test_schedule_caps_a_fault_and_leaves_a_quiet_end() -> None:
    plan = schedule(3600, ["a", "b"])
    assert all(end - start == MAX_FAULT_SECONDS for _, start, end in plan)
    assert plan[-1][2] < 3600 * 2 / 3


def test_parse_history_keeps_the_aggregated_rows(tmp_path: Path) -> None:
    path = tmp_path / "soak_stats_history.csv"
    path.write_text(
        "Timestamp,User Count,Type,Name,Requests/s,Failures/s,Total Request Count,"
        "Total Failure Count\n"
        "100,10,,Aggregated,20,0,20,0\n"
        "101,10,POST,/predict,20,0,40,1\n"
        "101,10,,Aggregated,20,1,40,1\n"
    )
    assert parse_history(path) == [(100.0, 0), (101.0, 1)]


HISTORY = [(100.0, 0), (101.0, 2), (110.0, 2), (111.0, 7), (130.0, 7), (131.0, 8)]


def test_errors_inside_a_window_or_its_grace_do_not_count() -> None:
    assert errors_outside(HISTORY, [Window("f", 109.5, 112.0)], grace=5) == 2 + 1


def test_errors_after_the_grace_count() -> None:
    assert errors_outside(HISTORY, [Window("f", 105.0, 106.0)], grace=2) == 2 + 5 + 1


def test_without_windows_every_error_counts() -> None:
    assert errors_outside(HISTORY, []) == 8


def _trace(rss_mib: list[float]) -> MemoryTrace:
    return MemoryTrace(
        "scoring-0",
        tuple(range(0, 60 * len(rss_mib), 60)),
        tuple(int(mib * 2**20) for mib in rss_mib),
    )


def test_a_process_that_settles_after_start_up_is_flat() -> None:
    assert is_flat(_trace([80, 95, 100, 100, 100.2, 100.1]))


def test_a_process_that_keeps_growing_is_not_flat() -> None:
    assert not is_flat(_trace([80, 85, 90, 95, 100, 105]))


def test_rows_report_lost_pages_by_name() -> None:
    table = rows(
        60,
        LocustStats(1200, 3, 20.0, 0.05),
        0,
        [_trace([80, 80, 80, 80])],
        fired=[{"alertname": "HighErrorRate"}, {"alertname": "FeatureDrift"}],
        lost=[{"alertname": "FeatureDrift"}],
    )
    by_measure = {row.measure: row for row in table}
    assert by_measure["request errors outside fault windows"].met is True
    assert by_measure["resident memory"].met is True
    lost = by_measure["pages lost"]
    assert lost.value == "1 of 2 alerts fired (FeatureDrift)"
    assert lost.met is False


@pytest.mark.parametrize("outside", [1, 10])
def test_errors_outside_windows_miss_the_goal(outside: int) -> None:
    table = rows(60, LocustStats(10, outside, 1.0, 0.01), outside, [], [], [])
    assert {row.measure: row.met for row in table}["request errors outside fault windows"] is False


def test_a_ticket_held_back_by_its_page_is_not_lost() -> None:
    page = {"alertname": "FeatureDrift", "feature": "income", "model_version": "m1"}
    pages = [page | {"severity": "page"}]
    income_ticket = page | {"severity": "ticket"}
    age_ticket = income_ticket | {"feature": "age"}

    assert delivered(income_ticket, pages)
    assert not delivered(age_ticket, pages)
    # A page is never held back: it must arrive itself.
    assert not delivered(page | {"severity": "page", "feature": "age"}, pages)
