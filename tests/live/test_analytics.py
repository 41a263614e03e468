"""The analytics alerts catch real shifts of the traffic, and only those, end to end.

Each test switches the running Locust users to another input profile (they re-read the profile
file), waits for the alert at the oncall receiver, switches back to the profile it found, and
returns only once every model alert has resolved, so the next test meets a quiet stack.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from loadgen.profile import Profile
from obslab.oncall.client import fetch_pages

pytestmark = pytest.mark.live

ACTIVE_MODEL_ALERTS = (
    'ALERTS{alertname=~"FeatureDrift|PredictionDrift|DatasetDrift|FeatureMissing'
    '|ModelAccuracyDrop|ModelCalibrationDrift"}'
)
DRIFT_ALERTS = ("FeatureDrift", "PredictionDrift")
#: Under the test profile an alert needs its 30 s window to tip, then its `for:` of 10 s.
ARRIVAL_TIMEOUT = 90
#: The window must mostly forget the shifted traffic before an alert resolves.
RESOLVE_TIMEOUT = 120


@dataclass
class Traffic:
    """Switches the load profile at ``path``; ``since`` is when the last switch happened."""

    path: Path
    oncall: str
    found: Profile
    since: float = 0.0

    def switch(self, words: str) -> None:
        self.since = time.time()
        Profile.parse(words.split(), rate=self.found.rate).save(self.path)

    def restore(self) -> float:
        """Back to the profile the test found; returns when (unix time)."""
        restored = time.time()
        self.found.save(self.path)
        return restored

    def firing_since_switch(self, alertname: str) -> list[dict]:
        return [
            page
            for page in fetch_pages(self.oncall, alertname=alertname, status="firing")
            if datetime.fromisoformat(page["received_at"]).timestamp() >= self.since
        ]


@pytest.fixture
def traffic(stack) -> Iterator[Traffic]:
    path = stack.home / "load" / "profile.json"
    traffic = Traffic(path, stack.oncall, Profile.load(path))
    # Earlier modules' traffic may have left a model alert pending; what it fires must not be
    # taken for the switched profile's doing.
    _wait_until_quiet(stack)
    try:
        yield traffic
    finally:
        traffic.restore()
        _wait_until_quiet(stack)


def _wait_until_quiet(stack) -> None:
    """Wait until no model alert is pending or firing in Prometheus."""
    deadline = time.monotonic() + RESOLVE_TIMEOUT
    while active := stack.query(ACTIVE_MODEL_ALERTS):
        if time.monotonic() > deadline:
            names = sorted({series["metric"]["alertname"] for series in active})
            pytest.fail(f"{', '.join(names)} still active after {RESOLVE_TIMEOUT}s")
        time.sleep(1)


def _arrives(stack, traffic: Traffic, alertname: str, labels: Mapping[str, str]) -> dict:
    return stack.wait_for_page(
        alertname, labels=labels, since=traffic.since, timeout=ARRIVAL_TIMEOUT
    )


def _resolves(stack, alerts: list[tuple[str, Mapping[str, str]]], since: float) -> None:
    for alertname, labels in alerts:
        stack.wait_for_page(
            alertname, status="resolved", labels=labels, since=since, timeout=RESOLVE_TIMEOUT
        )
    _wait_until_quiet(stack)


def test_feature_drift_pages_for_the_drifted_feature_only(stack, traffic):
    traffic.switch("drift income 1.0")
    _arrives(stack, traffic, "FeatureDrift", {"feature": "income"})

    _resolves(stack, [("FeatureDrift", {"feature": "income"})], traffic.restore())
    drifted = {page["labels"]["feature"] for page in traffic.firing_since_switch("FeatureDrift")}
    assert drifted == {"income"}


def test_unit_change_shows_as_feature_and_prediction_drift(stack, traffic):
    # Incomes sent in thousands: every value falls into the lowest training decile, and the
    # model, seeing applicants with almost no income, scores them all as likely defaults.
    traffic.switch("unit-change income 0.001")
    _arrives(stack, traffic, "FeatureDrift", {"feature": "income"})
    _arrives(stack, traffic, "PredictionDrift", {"model_version": "m1"})

    _resolves(
        stack,
        [("FeatureDrift", {"feature": "income"}), ("PredictionDrift", {"model_version": "m1"})],
        traffic.restore(),
    )


def test_missing_inputs_page(stack, traffic):
    traffic.switch("missing employment_years 0.5")
    _arrives(stack, traffic, "FeatureMissing", {"feature": "employment_years"})

    _resolves(stack, [("FeatureMissing", {"feature": "employment_years"})], traffic.restore())


def test_concept_drift_shows_only_in_accuracy(stack, traffic):
    # The world turns: the model now approves the applicants likeliest to default. Its
    # balanced accuracy falls, and performance pages; the inputs look as in training.
    traffic.switch("concept-drift")
    page = _arrives(stack, traffic, "ModelAccuracyDrop", {"model_version": "m1"})
    assert page["labels"]["severity"] == "page"

    _resolves(stack, [("ModelAccuracyDrop", {"model_version": "m1"})], traffic.restore())
    for alertname in DRIFT_ALERTS:
        assert traffic.firing_since_switch(alertname) == [], f"{alertname} fired on concept drift"
