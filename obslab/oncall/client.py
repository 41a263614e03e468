"""Reads the oncall receiver's pages and held-back alerts, laid out for ``obslab pages``."""

from __future__ import annotations

import requests

# Labels every page has, or shown in their own column.
_SHOWN_APART = ("alertname", "severity")
_HEADERS = ("RECEIVED (UTC)", "STATUS", "NOW", "SEVERITY", "ALERT", "LABELS", "SUMMARY")
_HELD_BACK_HEADERS = ("SINCE (UTC)", "KIND", "ALERT", "HELD BACK BY", "LABELS", "SUMMARY")
_SECTIONS = (("page", "PAGES: interrupt now"), ("ticket", "TICKETS: a queue, for working hours"))
_MAX_CELL = 60


def fetch_pages(
    base_url: str,
    *,
    alertname: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    state: str | None = None,
    timeout: float = 5,
) -> list[dict]:
    """The pages at ``base_url``, newest first; raises ``requests.RequestException`` on failure.

    ``status`` is what a notification said (firing or resolved), ``state`` what its alert is
    now (firing, held_back, silenced, resolved or expired); ``kind`` is page or ticket.
    """
    filters = {"alertname": alertname, "status": status, "kind": kind, "state": state}
    return _get_list(f"{base_url.rstrip('/')}/pages", filters, timeout)


def fetch_held_back(base_url: str, *, timeout: float = 5) -> list[dict]:
    """The alerts an inhibition holds back now, each with ``held_back_by``; raises
    ``requests.RequestException`` when the receiver cannot ask Alertmanager."""
    return _get_list(f"{base_url.rstrip('/')}/held-back", {}, timeout)


def _get_list(url: str, filters: dict[str, str | None], timeout: float) -> list[dict]:
    response = requests.get(
        url,
        params={name: value for name, value in filters.items() if value is not None},
        timeout=timeout,
    )
    _raise_for_status(response)
    found = response.json()
    if not isinstance(found, list):
        raise requests.HTTPError(f"{response.url} did not answer a list", response=response)
    return found


def _raise_for_status(response: requests.Response) -> None:
    if response.ok:
        return
    # The receiver names the problem (a bad filter, say); show that, not a bare status line.
    try:
        detail = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        detail = response.reason
    raise requests.HTTPError(
        f"{response.url} answered {response.status_code}: {detail}", response=response
    )


def format_pages(pages: list[dict], held_back: list[dict] | None = None) -> str:
    """Tables for the terminal: pages, then tickets, then what is held back; one alert a
    line, newest first as given."""
    blocks = []
    for kind, title in _SECTIONS:
        rows = [_row(page) for page in pages if page.get("kind", "ticket") == kind]
        if rows:
            blocks.append(f"{title}\n{_table(_HEADERS, rows)}")
    if held_back:
        rows = [_held_back_row(alert) for alert in held_back]
        blocks.append(
            f"HELD BACK: an inhibition holds these back\n{_table(_HELD_BACK_HEADERS, rows)}"
        )
    return "\n\n".join(blocks) or "No pages."


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    rows = [headers, *rows]
    widths = [max(len(row[column]) for row in rows) for column in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _now(page: dict) -> str:
    state = page.get("state", "")
    if state == "held_back":
        return "held back by " + ", ".join(page.get("held_back_by", []))
    if state == "expired":
        return "expired (no resolve)"
    if state == "firing" and not page.get("checked", True):
        return "firing (unchecked)"
    return state


def _others(labels: dict) -> str:
    return " ".join(
        f"{name}={value}" for name, value in sorted(labels.items()) if name not in _SHOWN_APART
    )


def _row(page: dict) -> tuple[str, ...]:
    labels = page.get("labels", {})
    return (
        page.get("received_at", "")[:19].replace("T", " "),
        page.get("status", ""),
        _now(page),
        labels.get("severity", ""),
        page.get("alertname", ""),
        _cell(_others(labels)),
        _cell(page.get("annotations", {}).get("summary", "")),
    )


def _held_back_row(alert: dict) -> tuple[str, ...]:
    return (
        alert.get("starts_at", "")[:19].replace("T", " "),
        alert.get("kind", ""),
        alert.get("alertname", ""),
        ", ".join(alert.get("held_back_by", [])),
        _cell(_others(alert.get("labels", {}))),
        _cell(alert.get("annotations", {}).get("summary", "")),
    )


def _cell(text: str) -> str:
    # One page per line: newlines would break the table, and long text would wrap it.
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_CELL else flat[: _MAX_CELL - 1] + "…"
