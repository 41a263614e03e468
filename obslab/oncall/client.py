"""Reads the oncall receiver's pages, for ``obslab pages``."""

from __future__ import annotations

import requests

# Labels every page has, or shown in their own column.
_SHOWN_APART = ("alertname", "severity")
_HEADERS = ("RECEIVED (UTC)", "STATUS", "SEVERITY", "ALERT", "LABELS", "SUMMARY")
_MAX_CELL = 60


def fetch_pages(
    base_url: str,
    *,
    alertname: str | None = None,
    status: str | None = None,
    timeout: float = 5,
) -> list[dict]:
    """The pages at ``base_url``, newest first; raises ``requests.RequestException`` on failure."""
    filters = {"alertname": alertname, "status": status}
    response = requests.get(
        f"{base_url.rstrip('/')}/pages",
        params={name: value for name, value in filters.items() if value is not None},
        timeout=timeout,
    )
    _raise_for_status(response)
    pages = response.json()
    if not isinstance(pages, list):
        raise requests.HTTPError(
            f"{response.url} did not answer a list of pages", response=response
        )
    return pages


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


def format_pages(pages: list[dict]) -> str:
    """A table for the terminal, one page a line, newest first as given."""
    if not pages:
        return "No pages."
    rows = [_HEADERS, *(_row(page) for page in pages)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_HEADERS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _row(page: dict) -> tuple[str, ...]:
    labels = page.get("labels", {})
    others = " ".join(
        f"{name}={value}" for name, value in sorted(labels.items()) if name not in _SHOWN_APART
    )
    return (
        page.get("received_at", "")[:19].replace("T", " "),
        page.get("status", ""),
        labels.get("severity", ""),
        page.get("alertname", ""),
        _cell(others),
        _cell(page.get("annotations", {}).get("summary", "")),
    )


def _cell(text: str) -> str:
    # One page per line: newlines would break the table, and long text would wrap it.
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_CELL else flat[: _MAX_CELL - 1] + "…"
