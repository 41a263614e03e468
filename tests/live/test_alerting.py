"""Alerting a team can live with, on the live test-profile stack: one page per cause with
its symptoms held back in Alertmanager, tickets apart from pages, a dead-man's switch that
pages when the alerting path breaks, and runbook links that resolve.

The dead-man's switch (``DeadMansSwitch``) and the runbook page (``GET /runbook``) are the
oncall receiver's; these tests drive them through its public interface.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from html.parser import HTMLParser

import pytest
import requests

from app.settings import state_dir
from obslab import render
from obslab.layout import StateLayout
from obslab.oncall.client import fetch_pages
from obslab.processes import Supervisor
from obslab.stack import STOP_GRACE
from obslab.stackconfig import load_stack

pytestmark = pytest.mark.live

#: Symptoms scoring and features show while every features instance is down.
SYMPTOMS = ("HighErrorRate", "DependencyFailing")
#: The test profile's Watchdog timeout (three repeats of 3 s), plus the scrape, evaluation
#: and delivery of the last Watchdog before the break, and the receiver's own check: the
#: bound within which DeadMansSwitch must page.
DEAD_MANS_BOUND = 60.0


def _alertmanager_alerts(stack) -> list[dict]:
    response = requests.get(f"{stack.alertmanager}/api/v2/alerts", timeout=5)
    response.raise_for_status()
    return response.json()


def _pages_since(stack, since: float, **filters: str) -> list[dict]:
    return [
        page
        for page in fetch_pages(stack.oncall, **filters)
        if datetime.fromisoformat(page["received_at"]).timestamp() >= since
    ]


def _features_instances() -> list[str]:
    """The features instances' process names, in the environment of ``stack.environment()``."""
    supervisor = Supervisor(StateLayout(state_dir()).run)
    return sorted(name for name in supervisor.names() if name.startswith("features-"))


@pytest.fixture(params=[0, STOP_GRACE], ids=["killed", "stopped"])
def features_down(stack, request: pytest.FixtureRequest) -> Iterator[float]:
    """Every features instance at once killed, as in a crash, or stopped gracefully; yields
    when; starts them again after the test.

    A stopped instance drains, answering scrapes while scoring's calls already fail, so the
    symptom reaches Alertmanager before its cause: its longer group_wait lets the cause catch
    up (config/stack.yaml, symptom_group_wait).
    """
    since = time.time()
    with stack.environment():
        Supervisor(StateLayout(state_dir()).run).stop(_features_instances(), request.param)
    try:
        yield since
    finally:
        stack.start("features")
        stack.wait_for_page(
            "TargetDown", status="resolved", labels={"job": "features"}, since=since, timeout=120
        )


def test_features_down_pages_once_for_the_cause_and_holds_back_the_symptoms(
    stack, features_down: float
) -> None:
    stack.wait_for_page(
        "TargetDown", labels={"job": "features", "severity": "page"}, since=features_down
    )

    def held_back() -> list[dict]:
        alerts = _alertmanager_alerts(stack)
        held = [a for a in alerts if a["labels"]["alertname"] in SYMPTOMS]
        found = {a["labels"]["alertname"] for a in held if a["status"]["inhibitedBy"]}
        return held if found == set(SYMPTOMS) else []

    deadline = time.monotonic() + 60
    while not (symptoms := held_back()):
        if time.monotonic() > deadline:
            pytest.fail(f"{SYMPTOMS} not held back in Alertmanager within 60s")
        time.sleep(1)

    causes = {
        alert["fingerprint"]
        for alert in _alertmanager_alerts(stack)
        if alert["labels"]["alertname"] in ("TargetDown", "DependencyFailing")
    }
    for symptom in symptoms:
        assert symptom["status"]["state"] == "suppressed", symptom["labels"]
        assert set(symptom["status"]["inhibitedBy"]) <= causes, symptom["labels"]
    # The oncall receiver shows them too, each held back by the cause (GET /held-back).
    answer = requests.get(f"{stack.oncall}/held-back", timeout=5)
    answer.raise_for_status()
    shown = {a["alertname"]: set(a["held_back_by"]) for a in answer.json()}
    for symptom in SYMPTOMS:
        assert shown.get(symptom), f"{symptom} not shown as held back: {shown}"
        assert shown[symptom] <= {"TargetDown", "DependencyFailing"}, shown
    pages = _pages_since(stack, features_down, status="firing")
    paged = {(p["labels"]["alertname"], p["labels"]["severity"]) for p in pages}
    assert {name for name, severity in paged if severity == "page"} == {"TargetDown"}, [
        (p["alertname"], p["labels"].get("job"), p["starts_at"], p["received_at"]) for p in pages
    ]
    assert {p["labels"]["job"] for p in pages if p["labels"]["alertname"] == "TargetDown"} == {
        "features"
    }

    # Recovery: the cause outlasts its symptoms, so none of them pages after the fact.
    stack.start("features")
    stack.wait_for_page(
        "TargetDown",
        status="resolved",
        labels={"job": "features", "severity": "page"},
        since=features_down,
        timeout=120,
    )
    late = _pages_since(stack, features_down, status="firing")
    assert {p["alertname"] for p in late if p["labels"]["severity"] == "page"} == {"TargetDown"}


def test_one_features_instance_down_is_a_ticket_not_a_page(stack) -> None:
    """nginx fails over to the other instance: half the job down waits in the ticket queue."""
    since = time.time()
    with stack.environment():
        first = _features_instances()[0]
        Supervisor(StateLayout(state_dir()).run).stop([first], STOP_GRACE)
    try:
        ticket = stack.wait_for_page("TargetDown", labels={"job": "features"}, since=since)
        assert ticket["labels"]["severity"] == "ticket"
        # Listed in the receiver's ticket queue, not among the pages that interrupt.
        queued = _pages_since(stack, since, alertname="TargetDown", kind="ticket")
        assert ticket["fingerprint"] in {page["fingerprint"] for page in queued}
        # Past the page's `for:`: had all of features been down, the page would be here.
        time.sleep(10)
        down = _pages_since(stack, since, alertname="TargetDown", status="firing")
        assert {page["labels"]["severity"] for page in down} == {"ticket"}
        assert _pages_since(stack, since, alertname="TargetDown", kind="page") == []
    finally:
        stack.start("features")
    stack.wait_for_page(
        "TargetDown", status="resolved", labels={"job": "features"}, since=since, timeout=120
    )


def test_alertmanager_down_pages_the_dead_mans_switch(stack) -> None:
    """Needs the oncall receiver's dead-man's switch (POST /watchdog, DeadMansSwitch)."""
    timeout = render.watchdog_timeout_seconds(load_stack().profile("test"))
    assert timeout < DEAD_MANS_BOUND
    # The stack hands the receiver the profile's timeout: three Watchdog repeats.
    assert stack.dead_mans_switch()["oncall_watchdog_timeout_seconds"] == timeout
    stack.wait_until_switch_armed_and_quiet(DEAD_MANS_BOUND)
    stopped = time.time()
    stack.stop("alertmanager")
    try:
        page = stack.wait_for_page("DeadMansSwitch", since=stopped, timeout=DEAD_MANS_BOUND)
        # No Watchdog arrives while Alertmanager is down: the last one seen stays put.
        last_seen = stack.dead_mans_switch()["oncall_watchdog_last_seen_timestamp_seconds"]
    finally:
        stack.start("alertmanager")
    assert page["labels"]["severity"] == "page"
    # Never before the timeout has passed since the last Watchdog: one late repeat never pages.
    assert datetime.fromisoformat(page["received_at"]).timestamp() - last_seen >= timeout
    stack.wait_for_page("DeadMansSwitch", status="resolved", since=stopped, timeout=60)


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids |= {value for name, value in attrs if name in ("id", "name") and value}


def test_every_runbook_url_answers_and_lands_on_its_alerts_section(stack) -> None:
    """Needs the oncall receiver's runbook page (GET /runbook)."""
    response = requests.get(f"{stack.prometheus}/api/v1/rules", params={"type": "alert"}, timeout=5)
    response.raise_for_status()
    links = {
        rule["name"]: rule["annotations"]["runbook_url"]
        for group in response.json()["data"]["groups"]
        for rule in group["rules"]
    }
    assert links
    pages: dict[str, _Anchors] = {}
    for name, link in links.items():
        url, _, anchor = link.partition("#")
        assert url == f"{stack.oncall}/runbook", name
        assert anchor == name.lower(), name
        if url not in pages:
            answer = requests.get(url, timeout=5)
            assert answer.status_code == 200, url
            pages[url] = _Anchors()
            pages[url].feed(answer.text)
        assert anchor in pages[url].ids, f"{url} has no section #{anchor} for {name}"
