"""The receiver asks a real Alertmanager (API v2) what each page is now: firing, held back by
an inhibition, silenced, or gone without a resolve."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient

from obslab.oncall import ConfigError, create_app
from tests.unit.oncall_payloads import AUTH, TOKEN, alert, notification
from tests.unit.oncall_stack import (
    DRIFT,
    ERRORS,
    TARGET_DOWN,
    config,
    held_alerts,
    post_alerts,
    start_alertmanager,
)
from tests.unit.processes import ALERTMANAGER, free_port, wait_for

pytestmark = pytest.mark.skipif(ALERTMANAGER is None, reason="needs the Alertmanager binary")

STARTED = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
LATENCY = {"alertname": "HighLatency", "job": "scoring", "severity": "page"}


@pytest.fixture(autouse=True)
def _no_obslab_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("OBSLAB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Alertmanager holding TargetDown, the HighErrorRate it holds back, HighLatency
    under a silence and FeatureDrift; it delivers nowhere."""
    url, process = start_alertmanager(tmp_path_factory.mktemp("am"), config())
    try:
        post_alerts(url, TARGET_DOWN, ERRORS, LATENCY, DRIFT, starts_at=STARTED)
        silence = {
            "matchers": [{"name": "alertname", "value": "HighLatency", "isRegex": False}],
            "startsAt": datetime.now(UTC).isoformat(),
            "endsAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "createdBy": "test",
            "comment": "a silenced alert",
        }
        requests.post(f"{url}/api/v2/silences", json=silence, timeout=5).raise_for_status()
        wait_for(
            "the inhibition and the silence",
            lambda: (
                (found := held_alerts(url))["HighErrorRate"]["status"]["inhibitedBy"]
                and found["HighLatency"]["status"]["silencedBy"]
            ),
        )
        yield url
    finally:
        process.kill()


def receiver(tmp_path: Path, alertmanager_url: object) -> FlaskClient:
    config = {"ONCALL_TOKEN": TOKEN, "ONCALL_DB": str(tmp_path / "pages.db")}
    return create_app({**config, "ALERTMANAGER_URL": alertmanager_url}).test_client()


@pytest.fixture
def client(alertmanager: str, tmp_path: Path) -> FlaskClient:
    return receiver(tmp_path, alertmanager)


def delivered(alertmanager: str, name: str, **changes: str) -> dict:
    """The webhook alert Alertmanager sends for the alert ``name`` it holds."""
    held = held_alerts(alertmanager)[name]
    sent = alert(name, fingerprint=held["fingerprint"], starts_at=held["startsAt"])
    sent["labels"] = held["labels"]
    return sent | changes


def states(client: FlaskClient, query: str = "") -> dict[tuple[str, str], tuple]:
    response = client.get(f"/pages{query}")
    assert response.status_code == 200
    return {
        (page["alertname"], page["starts_at"]): (page["state"], page["held_back_by"])
        for page in response.get_json()
    }


def test_each_page_says_what_its_alert_is_now(client: FlaskClient, alertmanager: str) -> None:
    for name in ("TargetDown", "HighErrorRate", "HighLatency", "FeatureDrift"):
        client.post("/webhook", json=notification(delivered(alertmanager, name)), headers=AUTH)
    # The same alert's earlier episode, and an alert this Alertmanager never heard of (as
    # after a restart of the lab): neither was resolved, and neither is firing.
    earlier = delivered(alertmanager, "TargetDown", startsAt="2024-05-01T12:00:00Z")
    unknown = alert("MemoryGrowth", fingerprint="0123456789abcdef")
    client.post("/webhook", json=notification(earlier, unknown), headers=AUTH)
    since = STARTED.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    found = states(client)

    assert found == {
        ("TargetDown", since): ("firing", []),
        ("HighErrorRate", since): ("held_back", ["TargetDown"]),
        ("HighLatency", since): ("silenced", []),
        ("FeatureDrift", since): ("firing", []),
        ("TargetDown", "2024-05-01T12:00:00.000Z"): ("expired", []),
        ("MemoryGrowth", "2024-05-01T12:00:00.000Z"): ("expired", []),
    }
    assert all(page["checked"] for page in client.get("/pages").get_json())
    assert set(states(client, "?state=expired")) == {
        ("TargetDown", "2024-05-01T12:00:00.000Z"),
        ("MemoryGrowth", "2024-05-01T12:00:00.000Z"),
    }
    assert set(states(client, "?state=held_back&kind=page")) == {("HighErrorRate", since)}


def test_held_back_alerts_are_listed_with_what_holds_them(
    client: FlaskClient, alertmanager: str
) -> None:
    response = client.get("/held-back")

    assert response.status_code == 200
    [held] = response.get_json()
    assert held["alertname"] == "HighErrorRate"
    assert held["kind"] == "page"
    assert held["labels"] == ERRORS
    assert held["held_back_by"] == ["TargetDown"]
    assert held["fingerprint"] == held_alerts(alertmanager)["HighErrorRate"]["fingerprint"]


def test_the_html_view_shows_held_back_and_expired_pages(
    client: FlaskClient, alertmanager: str
) -> None:
    client.post(
        "/webhook",
        json=notification(alert("MemoryGrowth", fingerprint="0123456789abcdef")),
        headers=AUTH,
    )

    html = client.get("/").get_data(as_text=True)

    held = html[html.index('<section id="held-back">') :]
    assert "HighErrorRate" in held and "held back by TargetDown" in held
    assert "expired: no resolve, Alertmanager no longer holds it" in html
    assert "Not checked with Alertmanager" not in html


def test_an_unreachable_alertmanager_leaves_pages_unchecked(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    client = receiver(tmp_path, nowhere)
    client.post("/webhook", json=notification(alert()), headers=AUTH)

    [page] = client.get("/pages").get_json()
    held = client.get("/held-back")
    html = client.get("/").get_data(as_text=True)

    assert (page["state"], page["checked"]) == ("firing", False)
    assert held.status_code == 503
    assert nowhere in held.get_json()["error"]
    assert f"Alertmanager at {nowhere} cannot be asked" in html


@pytest.mark.parametrize("url", ["127.0.0.1:9093", "ftp://alertmanager", 9093])
def test_a_bad_alertmanager_url_names_the_setting(tmp_path: Path, url: object) -> None:
    with pytest.raises(ConfigError, match="OBSLAB_ALERTMANAGER_URL"):
        receiver(tmp_path, url)
