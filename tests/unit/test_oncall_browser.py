"""The oncall page as a person sees it: rendered by a real headless Chromium.

The receiver runs under gunicorn beside a real Alertmanager that holds a page, a ticket and an
alert an inhibition holds back, and one Watchdog arrives and no other, so the dead-man's
switch fires.
Chromium loads the page and dumps the document it built; each alert must sit in its own
section, saying what it is.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from obslab.oncall.client import fetch_pages
from tests.unit import oncall_stack
from tests.unit.oncall_payloads import AUTH, notification, watchdog
from tests.unit.processes import ALERTMANAGER, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (make setup installs it)"),
    pytest.mark.skipif(ALERTMANAGER is None, reason="needs the Alertmanager binary"),
]


class _Sections(HTMLParser):
    """The text of each table row, by the id of the section it sits in, and each banner."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.banners: dict[str, str] = {}
        self._section: str | None = None
        self._row: list[str] | None = None
        self._banner: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self._section = attributes.get("id")
            self.rows[self._section or ""] = []
        elif tag == "tr" and self._section:
            self._row = []
        elif tag == "p" and "banner" in (attributes.get("class") or ""):
            self._banner = attributes.get("id") or ""
            self.banners[self._banner] = ""

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row.append(data)
        if self._banner is not None:
            self.banners[self._banner] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None and self._section:
            self.rows[self._section].append(" ".join(" ".join(self._row).split()))
            self._row = None
        elif tag == "section":
            self._section = None
        elif tag == "p":
            self._banner = None


def dump_dom(url: str, profile: Path) -> str:
    """The document Chromium built from ``url``."""
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def rendered(url: str, profile: Path) -> _Sections:
    sections = _Sections()
    sections.feed(dump_dom(url, profile))
    return sections


@pytest.fixture
def oncall(tmp_path: Path) -> Iterator[str]:
    """The receiver with a page, a ticket, a held-back alert and a dead-man's page."""
    with ExitStack() as running:
        am_url, alertmanager = oncall_stack.start_alertmanager(tmp_path, oncall_stack.config())
        running.callback(alertmanager.kill)
        # One Watchdog arms the switch, and it fires a second after.
        base_url, receiver = oncall_stack.start_receiver(
            tmp_path, ALERTMANAGER_URL=am_url, WATCHDOG_TIMEOUT_SECONDS="1"
        )
        running.callback(receiver.kill)
        oncall_stack.hold_back(am_url)
        # What Alertmanager delivers: the page and the ticket, never the held-back alert.
        oncall_stack.deliver(base_url, am_url, "TargetDown", "FeatureDrift")
        requests.post(
            f"{base_url}/watchdog", json=notification(watchdog()), headers=AUTH, timeout=5
        ).raise_for_status()
        wait_for(
            "the dead-man's page",
            lambda: fetch_pages(base_url, alertname="DeadMansSwitch", state="firing"),
        )
        yield base_url


def test_a_person_sees_pages_tickets_held_back_alerts_and_the_dead_mans_switch(
    oncall: str, tmp_path: Path
) -> None:
    page = rendered(f"{oncall}/", tmp_path / "chromium-profile")

    pages, tickets, held_back = page.rows["pages"], page.rows["tickets"], page.rows["held-back"]
    assert any("TargetDown" in row and " firing " in f" {row} " for row in pages), pages
    assert any("DeadMansSwitch" in row and "No Watchdog" in row for row in pages), pages
    assert not any("FeatureDrift" in row for row in pages), pages
    assert any("FeatureDrift" in row and "ticket" in row for row in tickets), tickets
    assert not any("TargetDown" in row for row in tickets), tickets
    [_, row] = held_back
    assert "HighErrorRate" in row and "held back by TargetDown" in row
    assert "Dead man's switch firing" in page.banners["watchdog"]
    assert "alertmanager" not in page.banners


def test_the_runbook_renders_with_its_sections(oncall: str, tmp_path: Path) -> None:
    parser = _Anchors()
    parser.feed(dump_dom(f"{oncall}/runbook#targetdown", tmp_path / "chromium-runbook"))

    assert {"targetdown", "higherrorrate", "deadmansswitch"} <= parser.ids


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag.startswith("h") and (found := dict(attrs).get("id")):
            self.ids.add(found)
