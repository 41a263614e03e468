"""The oncall receiver in the running lab: pages tell the truth after a restart, and the
dead-man's switch pages when Alertmanager dies.

Both restart or stop parts of the shared stack, so this module runs after the others (it is
not in conftest's ``MODULE_ORDER``, which puts unlisted modules last).
"""

from __future__ import annotations

import time

import pytest
import requests

from obslab import faults
from obslab import stack as native
from obslab.oncall import deadman
from obslab.oncall.client import fetch_pages
from obslab.stack import urls

pytestmark = pytest.mark.live

FAULT = "error-burst"
PAGE_TIMEOUT = 120.0
SETTLE_TIMEOUT = 120.0


def _poll(what: str, probe, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        if found := probe():
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f}s")
        time.sleep(1)


def test_a_page_from_before_down_and_up_is_not_shown_firing(stack) -> None:
    alertname = faults.get(FAULT).alerts[0]
    with stack.environment():
        started = time.time()
        faults.inject(FAULT, {}, duration=PAGE_TIMEOUT + 60)
        try:
            page = stack.wait_for_page(alertname, timeout=PAGE_TIMEOUT, since=started)
            # Still firing when the lab goes down: no resolve can reach the receiver.
            [before] = [
                listed
                for listed in fetch_pages(stack.oncall, alertname=alertname, status="firing")
                if listed["fingerprint"] == page["fingerprint"]
                and listed["starts_at"] == page["starts_at"]
            ]
            assert (before["state"], before["checked"]) == ("firing", True)
            native.down()
            # The fault lived in the service processes: the restarted lab runs without it.
            native.up("test", load=True)
        finally:
            faults.clear(FAULT)
        assert urls()["oncall"] == stack.oncall

    def the_episode_now() -> dict | None:
        [episode] = [
            listed
            for listed in fetch_pages(stack.oncall, alertname=alertname, status="firing")
            if (listed["fingerprint"], listed["starts_at"])
            == (page["fingerprint"], page["starts_at"])
        ]
        return episode if episode["state"] != "firing" else None

    # Prometheus may send the alert once more from the data it kept, and then resolve it;
    # otherwise the new Alertmanager never heard of it and the page has expired.
    episode = _poll(f"end of the {alertname} page", the_episode_now, SETTLE_TIMEOUT)
    print(f"{alertname} page after the restart: {episode['state']}")
    assert episode["state"] in ("expired", "resolved")
    assert episode["checked"] is True
    html = requests.get(f"{stack.oncall}/", timeout=5).text
    assert alertname in html


def test_the_dead_mans_switch_pages_when_alertmanager_stops(stack) -> None:
    config = (stack.home / "alertmanager" / "alertmanager.yml").read_text()
    if "/watchdog" not in config:
        pytest.skip("this Alertmanager config routes no Watchdog to the receiver")

    def metric(name: str) -> float:
        for line in requests.get(f"{stack.oncall}/metrics", timeout=5).text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not exposed by {stack.oncall}")

    _poll(
        "Watchdog at the receiver",
        lambda: metric("oncall_watchdog_last_seen_timestamp_seconds"),
        SETTLE_TIMEOUT,
    )
    stack.stop("alertmanager")
    try:
        # Its page is due one timeout after the last Watchdog; the rest is slack for a
        # machine under load.
        timeout = metric("oncall_watchdog_timeout_seconds") + 60
        [page] = _poll(
            "dead-man's page",
            lambda: fetch_pages(stack.oncall, alertname=deadman.ALERTNAME, state="firing"),
            timeout,
        )
        assert page["kind"] == "page"
    finally:
        stack.start("alertmanager")
    _poll(
        "resolve of the dead-man's page",
        lambda: not fetch_pages(stack.oncall, alertname=deadman.ALERTNAME, state="firing"),
        SETTLE_TIMEOUT,
    )


def test_pages_and_tickets_are_listed_apart(stack) -> None:
    """Whatever reached on-call in this session: each alert is listed by its severity."""
    every = fetch_pages(stack.oncall)
    pages = fetch_pages(stack.oncall, kind="page")
    tickets = fetch_pages(stack.oncall, kind="ticket")

    assert pages, "the earlier tests raised no page"
    assert all(page["labels"].get("severity") == "page" for page in pages)
    assert all(ticket["labels"].get("severity") != "page" for ticket in tickets)
    assert len(pages) + len(tickets) == len(every)
    html = requests.get(f"{stack.oncall}/", params={"kind": "ticket"}, timeout=5).text
    assert "No pages match these filters." in html
