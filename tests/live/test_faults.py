"""The signal matrix: every fault of the catalogue raises its alerts, and only those, live.

One row per fault. For each: inject it with ``--for`` (so even a crashed test ends it), wait
for each of its alerts at the oncall receiver, check that no page-severity alert outside its
row (and its tolerated consequences) fired meanwhile, clear it, and wait until its alerts
resolve. A renamed or broken fault fails here instead of becoming a silent no-op.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests

from obslab import faults
from obslab.oncall.client import fetch_pages
from obslab.render import CAUSES

pytestmark = pytest.mark.live

#: Per fault: parameters that make it show within the test profile's windows. The faults
#: delivered by a deploy come last: a deploy stays in its attribution window for minutes,
#: and a later fault's errors would rightly be blamed on it.
MATRIX: dict[str, dict[str, str]] = {
    # A quarter of the lookups, just past scoring's 2 s timeout. With every lookup delayed,
    # all of scoring's threads wait on features, and the test profile's 1 s scrapes queue
    # behind them: scoring then reads as down (TargetDown) as often as failing
    # (DependencyFailing), a coin toss a test cannot rest on. The demo profile's longer
    # scrape timeout does not have that race.
    "slow-dependency": {"delay_ms": "2100", "rate": "0.25"},
    "error-burst": {},
    "dependency-down": {},
    "cpu-hog": {},
    "memory-leak": {"mb_per_second": "4"},
    "data-drift": {},
    "unit-change": {},
    "missing-features": {},
    "concept-drift": {},
    "bad-deploy": {},
    "model-regression": {},
}
FAULT_TIMEOUT = 120.0
RESOLVE_TIMEOUT = 120.0


def test_matrix_covers_the_catalogue() -> None:
    assert set(MATRIX) == set(faults.CATALOGUE)


@pytest.fixture
def lab(stack) -> Iterator:
    with stack.environment():
        yield stack


def _firing(stack) -> list[dict]:
    response = requests.get(f"{stack.prometheus}/api/v1/alerts", timeout=5)
    response.raise_for_status()
    return [a for a in response.json()["data"]["alerts"] if a["state"] == "firing"]


def _wait_quiet(stack, names: set[str], timeout: float) -> None:
    """Wait until none of ``names`` fires; the slow SLO burn (hours, or minutes in the test
    profile) outlives any short fault by design, so it is not waited for."""
    deadline = time.monotonic() + timeout
    while True:
        still = {
            a["labels"]["alertname"] for a in _firing(stack) if a["labels"].get("window") != "slow"
        } & names
        if not still:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{sorted(still)} still firing {timeout:.0f}s after the fault ended")
        time.sleep(1)


@pytest.mark.parametrize("name", list(MATRIX))
def test_fault_raises_its_alerts_and_only_those(lab, name: str) -> None:
    fault = faults.get(name)
    tolerated = set(fault.alerts) | set(fault.may_alert)
    # A cause still firing from the row before would hold back this row's symptoms.
    _wait_quiet(lab, tolerated | {"HighErrorRate", "HighLatency", *CAUSES}, RESOLVE_TIMEOUT)
    started = time.time()
    faults.inject(name, MATRIX[name], duration=FAULT_TIMEOUT + 60)
    try:
        for alert in fault.alerts:
            lab.wait_for_page(alert, timeout=FAULT_TIMEOUT, since=started)
        strangers = {
            page["labels"]["alertname"]
            for page in fetch_pages(lab.oncall, status="firing")
            if page["labels"].get("severity") == "page"
            and page["labels"]["alertname"] not in tolerated
            and datetime.fromisoformat(page["starts_at"]).timestamp() >= started
        }
        assert not strangers, f"{name} paged outside its row: {sorted(strangers)}"
    finally:
        faults.clear(name)
    _wait_quiet(lab, set(fault.alerts), RESOLVE_TIMEOUT)
