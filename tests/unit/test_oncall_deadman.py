"""The dead-man's switch: the Watchdog's arrivals judged in a real SQLite store.

The switch itself runs on a clock the test moves, so that "three minutes without a Watchdog"
takes no three minutes; the app tests drive ``POST /watchdog`` with a timeout of a fraction
of a second and poll for its page.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from obslab.oncall import ConfigError, create_app, deadman
from obslab.oncall.store import PageStore
from tests.unit.oncall_payloads import AUTH, TOKEN, alert, notification, watchdog
from tests.unit.processes import wait_for

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(minutes=3)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(autouse=True)
def _no_obslab_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("OBSLAB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path / "home"))


@pytest.fixture
def store(tmp_path: Path) -> PageStore:
    return PageStore(tmp_path / "pages.db")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def switch(store: PageStore, clock: Clock) -> deadman.DeadMansSwitch:
    return deadman.DeadMansSwitch(store, TIMEOUT, clock=clock)


def episodes(store: PageStore) -> list[tuple[str, str, str | None]]:
    """The dead-man's pages, oldest first: (status, starts_at, ends_at)."""
    found = store.pages(alertname=deadman.ALERTNAME)
    return [(page.status, page.starts_at, page.ends_at) for page in reversed(found)]


def test_the_first_watchdog_arms_the_switch(
    switch: deadman.DeadMansSwitch, store: PageStore, clock: Clock
) -> None:
    clock.advance(hours=1)
    assert switch.check() is False
    assert switch.deadline() is None

    switch.arrived()
    clock.advance(minutes=3)
    assert switch.check() is False
    assert episodes(store) == []

    clock.advance(seconds=1)
    assert switch.check() is True
    assert episodes(store) == [("firing", "2024-05-01T13:03:00.000Z", None)]
    [page] = store.pages(alertname=deadman.ALERTNAME)
    assert page.kind == "page"
    assert page.annotations["runbook_url"] == "/runbook#deadmansswitch"


def test_a_watchdog_in_time_keeps_it_quiet(
    switch: deadman.DeadMansSwitch, store: PageStore, clock: Clock
) -> None:
    for _ in range(10):
        clock.advance(minutes=2, seconds=59)
        assert switch.check() is False
        switch.arrived()
        arrived_at = clock.now

    assert episodes(store) == []
    assert switch.last_seen() == arrived_at


def test_silence_pages_once_and_the_watchdog_resolves_it(
    switch: deadman.DeadMansSwitch, store: PageStore, clock: Clock
) -> None:
    clock.advance(minutes=1)
    switch.arrived()
    clock.advance(minutes=5)
    assert switch.check() is True
    clock.advance(minutes=5)
    assert switch.check() is True

    clock.advance(minutes=1)
    switch.arrived()

    assert switch.check() is False
    assert episodes(store) == [
        ("firing", "2024-05-01T12:04:00.000Z", None),
        ("resolved", "2024-05-01T12:04:00.000Z", "2024-05-01T12:12:00.000Z"),
    ]
    assert all(page.ended for page in store.pages(alertname=deadman.ALERTNAME))


def test_a_silence_nobody_looked_at_is_still_recorded(
    switch: deadman.DeadMansSwitch, store: PageStore, clock: Clock
) -> None:
    switch.arrived()
    clock.advance(minutes=10)

    switch.arrived()

    assert episodes(store) == [
        ("firing", "2024-05-01T12:03:00.000Z", None),
        ("resolved", "2024-05-01T12:03:00.000Z", "2024-05-01T12:10:00.000Z"),
    ]


def test_a_restarted_receiver_remembers_the_watchdog_and_keeps_one_page_open(
    store: PageStore, clock: Clock
) -> None:
    first = deadman.DeadMansSwitch(store, TIMEOUT, clock=clock)
    first.arrived()
    clock.advance(minutes=4)
    assert first.check() is True

    clock.advance(minutes=10)
    second = deadman.DeadMansSwitch(store, TIMEOUT, clock=clock)
    assert second.last_seen() == START
    # It grants Alertmanager one timeout to reach it again; the page of the silence that
    # began before is still the one open.
    assert second.deadline() == clock.now + TIMEOUT
    clock.advance(minutes=4)
    assert second.check() is True
    assert episodes(store) == [("firing", "2024-05-01T12:03:00.000Z", None)]


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    app = create_app({"ONCALL_TOKEN": TOKEN, "ONCALL_DB": str(tmp_path / "pages.db")})
    return app.test_client()


def metric(client: FlaskClient, name: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not exposed")


def test_the_watchdog_endpoint_takes_the_webhook_with_the_token(client: FlaskClient) -> None:
    assert metric(client, "oncall_watchdog_last_seen_timestamp_seconds") == 0
    before = datetime.now(UTC).timestamp()

    refused = client.post("/watchdog", json=notification(watchdog()))
    taken = client.post("/watchdog", json=notification(watchdog()), headers=AUTH)

    assert refused.status_code == 401
    assert refused.get_json()["field"] == "Authorization"
    assert taken.status_code == 200
    assert taken.get_json() == {"received": 1, "heartbeat": True}
    assert metric(client, "oncall_watchdog_last_seen_timestamp_seconds") >= math.floor(before)
    assert metric(client, "oncall_watchdog_notifications_total") == 1
    assert metric(client, "oncall_dead_mans_switch_firing") == 0
    assert metric(client, "oncall_watchdog_timeout_seconds") == deadman.DEFAULT_TIMEOUT_SECONDS
    # A heartbeat is no page.
    assert client.get("/pages").get_json() == []


def test_a_resolved_watchdog_is_no_heartbeat(client: FlaskClient) -> None:
    response = client.post("/watchdog", json=notification(watchdog("resolved")), headers=AUTH)

    assert response.get_json() == {"received": 1, "heartbeat": False}
    assert metric(client, "oncall_watchdog_last_seen_timestamp_seconds") == 0
    assert metric(client, "oncall_watchdog_notifications_total") == 0


def test_only_the_watchdog_belongs_at_the_watchdog_endpoint(client: FlaskClient) -> None:
    response = client.post(
        "/watchdog", json=notification(watchdog(), alert("HighErrorRate")), headers=AUTH
    )

    assert response.status_code == 400
    assert response.get_json()["field"] == "alerts[1].labels.alertname"
    assert metric(client, "oncall_watchdog_last_seen_timestamp_seconds") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**notification(watchdog()), "alerts": "Watchdog"}, "alerts"),
        (notification(), "alerts"),
        ({"alerts": [watchdog()]}, "version"),
    ],
    ids=["alerts not a list", "empty alerts", "no version"],
)
def test_a_malformed_watchdog_is_refused_naming_the_field(
    client: FlaskClient, body: dict, field: str
) -> None:
    response = client.post("/watchdog", json=body, headers=AUTH)

    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_the_receiver_pages_on_silence_and_resolves_when_the_watchdog_returns(
    tmp_path: Path,
) -> None:
    client = create_app(
        {
            "ONCALL_TOKEN": TOKEN,
            "ONCALL_DB": str(tmp_path / "pages.db"),
            "WATCHDOG_TIMEOUT_SECONDS": 0.2,
        }
    ).test_client()

    def dead_mans_page() -> list[dict]:
        return client.get("/pages?alertname=DeadMansSwitch&state=firing").get_json()

    assert "the dead-man's switch is not armed" in client.get("/").get_data(as_text=True)
    client.post("/watchdog", json=notification(watchdog()), headers=AUTH)

    [page] = wait_for("the dead-man's page", dead_mans_page)
    assert (page["kind"], page["status"], page["state"]) == ("page", "firing", "firing")
    assert metric(client, "oncall_dead_mans_switch_firing") == 1
    assert "Dead man's switch firing" in client.get("/").get_data(as_text=True)

    client.post("/watchdog", json=notification(watchdog()), headers=AUTH)

    states = [
        (p["status"], p["state"]) for p in client.get("/pages?alertname=DeadMansSwitch").get_json()
    ]
    assert states[:2] == [("resolved", "resolved"), ("firing", "resolved")]


@pytest.mark.parametrize("value", ["soon", 0, -5, True, math.nan, "180"])
def test_a_bad_watchdog_timeout_names_the_setting(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match="OBSLAB_WATCHDOG_TIMEOUT_SECONDS"):
        create_app(
            {
                "ONCALL_TOKEN": TOKEN,
                "ONCALL_DB": str(tmp_path / "pages.db"),
                "WATCHDOG_TIMEOUT_SECONDS": value,
            }
        )


@pytest.mark.parametrize(("raw", "accepted"), [("90", True), ("2.5", True), ("3m", False)])
def test_the_watchdog_timeout_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, raw: str, accepted: bool
) -> None:
    monkeypatch.setenv("OBSLAB_WATCHDOG_TIMEOUT_SECONDS", raw)
    config = {"ONCALL_TOKEN": TOKEN, "ONCALL_DB": str(tmp_path / "pages.db")}
    if accepted:
        client = create_app(config).test_client()
        assert metric(client, "oncall_watchdog_timeout_seconds") == float(raw)
    else:
        with pytest.raises(ConfigError, match=r"OBSLAB_WATCHDOG_TIMEOUT_SECONDS.*3m"):
            create_app(config)
