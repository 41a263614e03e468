"""The terminal table of ``obslab pages``; fetching is tested against gunicorn in
test_oncall_processes.py."""

from __future__ import annotations

from obslab.oncall.client import format_pages


def page(alertname: str, status: str = "firing", summary: str = "", **labels: str) -> dict:
    return {
        "alertname": alertname,
        "status": status,
        "labels": {"alertname": alertname, "severity": "page", **labels},
        "annotations": {"summary": summary},
        "starts_at": "2024-05-01T12:00:00.000Z",
        "ends_at": None,
        "fingerprint": "a1b2c3d4e5f60718",
        "generator_url": "",
        "received_at": "2024-05-01T12:00:03.250Z",
    }


def test_no_pages_says_so() -> None:
    assert format_pages([]) == "No pages."


def test_one_line_a_page_in_aligned_columns() -> None:
    table = format_pages(
        [
            page("TargetDown", "resolved", "features is down", job="features", instance="h:8201"),
            page("HighErrorRate", summary="5xx above 5%", job="scoring"),
        ]
    ).splitlines()

    assert len(table) == 3
    header, first, second = table
    columns = ("STATUS", "SEVERITY", "ALERT", "LABELS", "SUMMARY")
    assert header.split() == ["RECEIVED", "(UTC)", *columns]
    assert first.startswith("2024-05-01 12:00:03  resolved")
    assert "instance=h:8201 job=features" in first
    assert first.endswith("features is down")
    assert second.endswith("5xx above 5%")
    for column in columns:
        start = header.index(column)
        assert first[start - 1] == second[start - 1] == " "
        assert first[start] != " " and second[start] != " "


def test_long_or_multiline_text_stays_on_one_short_line() -> None:
    summary = "line one\nline two " + "x" * 200

    [_, row] = format_pages([page("FeatureDrift", summary=summary, feature="income")]).splitlines()

    assert row.endswith("…")
    assert "line one line two" in row
    assert len(row) < 200
