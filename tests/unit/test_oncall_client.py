"""The terminal tables of ``obslab pages``; fetching is tested against gunicorn in
test_oncall_processes.py."""

from __future__ import annotations

from obslab.oncall.client import format_pages


def page(
    alertname: str,
    status: str = "firing",
    summary: str = "",
    *,
    severity: str = "page",
    state: str | None = None,
    held_back_by: tuple[str, ...] = (),
    checked: bool = True,
    **labels: str,
) -> dict:
    return {
        "alertname": alertname,
        "kind": "page" if severity == "page" else "ticket",
        "status": status,
        "state": state or status,
        "held_back_by": list(held_back_by),
        "checked": checked,
        "labels": {"alertname": alertname, "severity": severity, **labels},
        "annotations": {"summary": summary},
        "starts_at": "2024-05-01T12:00:00.000Z",
        "ends_at": None,
        "fingerprint": "a1b2c3d4e5f60718",
        "generator_url": "",
        "received_at": "2024-05-01T12:00:03.250Z",
    }


def held(alertname: str, *holders: str, severity: str = "page", **labels: str) -> dict:
    return {
        "alertname": alertname,
        "kind": "page" if severity == "page" else "ticket",
        "labels": {"alertname": alertname, "severity": severity, **labels},
        "annotations": {"summary": f"{alertname} summary"},
        "starts_at": "2024-05-01T12:01:00.000Z",
        "fingerprint": "0123456789abcdef",
        "held_back_by": list(holders),
    }


def test_no_pages_says_so() -> None:
    assert format_pages([]) == "No pages."
    assert format_pages([], []) == "No pages."


def test_one_line_a_page_in_aligned_columns() -> None:
    table = format_pages(
        [
            page("TargetDown", "resolved", "features is down", job="features", instance="h:8201"),
            page("HighErrorRate", summary="5xx above 5%", job="scoring"),
        ]
    ).splitlines()

    assert len(table) == 4
    title, header, first, second = table
    assert title.startswith("PAGES")
    columns = ("STATUS", "NOW", "SEVERITY", "ALERT", "LABELS", "SUMMARY")
    assert header.split() == ["RECEIVED", "(UTC)", *columns]
    assert first.startswith("2024-05-01 12:00:03  resolved  resolved")
    assert "instance=h:8201 job=features" in first
    assert first.endswith("features is down")
    assert second.endswith("5xx above 5%")
    for column in columns:
        start = header.index(column)
        assert first[start - 1] == second[start - 1] == " "
        assert first[start] != " " and second[start] != " "


def test_pages_and_tickets_are_listed_apart_and_held_back_alerts_after_them() -> None:
    text = format_pages(
        [
            page("FeatureDrift", severity="ticket", feature="income"),
            page("TargetDown", job="features"),
            page("HighLatency", state="expired", job="scoring"),
        ],
        [held("HighErrorRate", "TargetDown", "DependencyFailing", job="scoring")],
    )

    pages_block, tickets_block, held_block = text.split("\n\n")
    assert pages_block.startswith("PAGES")
    assert "TargetDown" in pages_block and "FeatureDrift" not in pages_block
    assert "expired (no resolve)" in pages_block
    assert tickets_block.startswith("TICKETS")
    assert "FeatureDrift" in tickets_block and "TargetDown" not in tickets_block
    assert held_block.startswith("HELD BACK")
    [_, _, row] = held_block.splitlines()
    assert "HighErrorRate" in row and "TargetDown, DependencyFailing" in row


def test_the_now_column_says_what_the_alert_is_now() -> None:
    text = format_pages(
        [
            page("A", state="held_back", held_back_by=("TargetDown",)),
            page("B", checked=False),
            page("C", state="resolved"),
        ]
    )

    rows = text.splitlines()[2:]
    assert "held back by TargetDown" in rows[0]
    assert "firing (unchecked)" in rows[1]
    assert "  resolved  " in rows[2]


def test_long_or_multiline_text_stays_on_one_short_line() -> None:
    summary = "line one\nline two " + "x" * 200

    [_, _, row] = format_pages(
        [page("FeatureDrift", summary=summary, feature="income")]
    ).splitlines()

    assert row.endswith("…")
    assert "line one line two" in row
    assert len(row) < 200
