"""The oncall webhook under a mixed stream: malformed notifications never cost a valid page."""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obslab.oncall import create_app

TOKEN = "s3cret-oncall-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def notification(fingerprint: str) -> dict:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "status": "firing",
        "receiver": "oncall",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HighErrorRate", "severity": "page", "job": "scoring"},
                "annotations": {"summary": "HighErrorRate on scoring"},
                "startsAt": "2024-05-01T12:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


def _without(key: str) -> Callable[[dict], None]:
    return lambda payload: payload["alerts"][0].pop(key)


def _set_alert(key: str, value: object) -> Callable[[dict], None]:
    return lambda payload: payload["alerts"][0].__setitem__(key, value)


# Each one alone makes a notification invalid, whatever else it holds.
BREAKAGES: dict[str, Callable[[dict], None]] = {
    "no status": _without("status"),
    "no labels": _without("labels"),
    "no startsAt": _without("startsAt"),
    "no fingerprint": _without("fingerprint"),
    "labels a list": _set_alert("labels", ["alertname"]),
    "status unknown": _set_alert("status", "exploded"),
    "startsAt no time": _set_alert("startsAt", "yesterday"),
    "alerts a string": lambda payload: payload.__setitem__("alerts", "HighErrorRate"),
    "alert a number": lambda payload: payload["alerts"].__setitem__(0, 7),
}

STREAM = st.lists(
    st.none() | st.sampled_from(sorted(BREAKAGES)) | st.sampled_from(["not json", "a list"]),
    min_size=1,
    max_size=20,
)


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    for name in list(os.environ):
        if name.startswith("OBSLAB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path / "home"))
    app = create_app({"ONCALL_TOKEN": TOKEN, "ONCALL_DB": str(tmp_path / "pages.db")})
    return app.test_client()


def send(client: FlaskClient, fingerprint: str, breakage: str | None):
    """Post the notification for ``fingerprint``, broken as ``breakage`` says (None: valid)."""
    if breakage == "not json":
        data, content_type = b'{"alerts": [', "application/json"
        return client.post("/webhook", data=data, content_type=content_type, headers=AUTH)
    payload: object = notification(fingerprint)
    if breakage == "a list":
        payload = [payload]
    elif breakage is not None:
        payload = copy.deepcopy(payload)
        BREAKAGES[breakage](payload)
    return client.post("/webhook", json=payload, headers=AUTH)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=STREAM)
def test_malformed_notifications_are_refused_and_valid_ones_all_kept(
    client: FlaskClient, stream: list[str | None]
) -> None:
    before = {page["fingerprint"] for page in client.get("/pages").get_json()}
    kept = set()
    for breakage in stream:
        # Fresh fingerprints: hypothesis reuses the client, and its store, across examples.
        fingerprint = uuid.uuid4().hex[:16]
        response = send(client, fingerprint, breakage)
        if breakage is None:
            assert response.status_code == 200
            kept.add(fingerprint)
        else:
            assert response.status_code == 400
            assert response.get_json()["error"]

    listed = {page["fingerprint"] for page in client.get("/pages").get_json()}
    assert listed - before == kept
