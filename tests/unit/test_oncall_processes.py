"""The receiver as it runs for real: under gunicorn, fed by the real Alertmanager."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from obslab.oncall.client import fetch_pages
from obslab.stack import gunicorn_argv
from obslab.stackconfig import load_stack
from tests.unit import oncall_stack
from tests.unit.processes import (
    ALERTMANAGER,
    STARTUP_TIMEOUT,
    Process,
    free_port,
    wait_for,
)

TOKEN = "s3cret-oncall-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


@pytest.fixture
def start_receiver(tmp_path: Path, processes: list[Process]) -> Callable[..., tuple[str, Process]]:
    def start(db_path: Path, **settings: str) -> tuple[str, Process]:
        port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("OBSLAB_")}
        env |= {"OBSLAB_ONCALL_TOKEN": TOKEN, "OBSLAB_ONCALL_DB": str(db_path)}
        env |= {f"OBSLAB_{name}": value for name, value in settings.items()}
        command = gunicorn_argv(load_stack().oncall, port)
        base_url = f"http://127.0.0.1:{port}"
        process = Process(f"receiver-{port}", command, env, tmp_path, f"{base_url}/readyz")
        processes.append(process)
        return base_url, process

    return start


def alert(fingerprint: str, name: str = "HighErrorRate", status: str = "firing") -> dict:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": "page", "job": "scoring"},
        "annotations": {"summary": f"{name} on scoring"},
        "startsAt": "2024-05-01T12:00:00Z",
        "endsAt": "2024-05-01T12:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict) -> dict:
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "status": alerts[0]["status"],
        "receiver": "oncall",
        "alerts": list(alerts),
    }


def test_every_acknowledged_page_survives_sigkill(
    tmp_path: Path, start_receiver: Callable[..., tuple[str, Process]]
) -> None:
    db_path = tmp_path / "pages.db"
    base_url, receiver = start_receiver(db_path)
    sent: set[str] = set()
    acknowledged: set[str] = set()
    enough = threading.Event()
    lock = threading.Lock()

    def deliver(sender: int) -> None:
        with requests.Session() as session:
            for number in itertools.count():
                fingerprint = f"{sender:04x}{number:012x}"
                with lock:
                    sent.add(fingerprint)
                try:
                    response = session.post(
                        f"{base_url}/webhook",
                        json=notification(alert(fingerprint)),
                        headers=AUTH,
                        timeout=5,
                    )
                except requests.RequestException:
                    return  # the receiver is gone
                if response.status_code == 200:
                    with lock:
                        acknowledged.add(fingerprint)
                        if len(acknowledged) >= 100:
                            enough.set()

    senders = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
    for sender in senders:
        sender.start()
    # The kill lands while deliveries are still in flight.
    assert enough.wait(STARTUP_TIMEOUT)
    receiver.kill()
    for sender in senders:
        sender.join()

    base_url, _ = start_receiver(db_path)
    stored = {page["fingerprint"] for page in fetch_pages(base_url)}

    assert acknowledged <= stored
    assert stored <= sent


def test_fetch_pages_reads_a_running_receiver(
    tmp_path: Path, start_receiver: Callable[..., tuple[str, Process]]
) -> None:
    base_url, _ = start_receiver(tmp_path / "pages.db")
    for body in (
        notification(alert("f1", "TargetDown")),
        notification(alert("f2", "HighLatency")),
        notification(alert("f1", "TargetDown", "resolved")),
    ):
        requests.post(f"{base_url}/webhook", json=body, headers=AUTH, timeout=5).raise_for_status()

    everything = fetch_pages(base_url)
    target_down = fetch_pages(f"{base_url}/", alertname="TargetDown")
    firing_target_down = fetch_pages(base_url, alertname="TargetDown", status="firing")

    assert [(page["alertname"], page["status"]) for page in everything] == [
        ("TargetDown", "resolved"),
        ("HighLatency", "firing"),
        ("TargetDown", "firing"),
    ]
    assert [page["status"] for page in target_down] == ["resolved", "firing"]
    assert [page["status"] for page in firing_target_down] == ["firing"]
    with pytest.raises(requests.HTTPError, match="status must be one of firing, resolved"):
        fetch_pages(base_url, status="pending")


ALERTMANAGER_CONFIG = """
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: oncall
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""


@pytest.mark.skipif(ALERTMANAGER is None, reason="needs the Alertmanager binary on PATH")
def test_alertmanager_notifications_become_pages(
    tmp_path: Path,
    start_receiver: Callable[..., tuple[str, Process]],
    processes: list[Process],
) -> None:
    base_url, _ = start_receiver(tmp_path / "pages.db")
    config = tmp_path / "alertmanager.yml"
    config.write_text(ALERTMANAGER_CONFIG.format(url=f"{base_url}/webhook", token=TOKEN))
    am_url = f"http://127.0.0.1:{free_port()}"
    command = [
        str(ALERTMANAGER),
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'alertmanager'}",
        f"--web.listen-address={am_url.removeprefix('http://')}",
        "--cluster.listen-address=",
    ]
    processes.append(
        Process("alertmanager", command, dict(os.environ), tmp_path, f"{am_url}/-/ready")
    )
    started = datetime.now(UTC).replace(microsecond=0)
    sent = {
        "labels": {"alertname": "TargetDown", "job": "features", "severity": "page"},
        "annotations": {"summary": "features is down <b>now</b>", "runbook_url": "r#TargetDown"},
        "startsAt": started.isoformat(),
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
    }

    def post_alert(**changes: str) -> None:
        response = requests.post(f"{am_url}/api/v2/alerts", json=[sent | changes], timeout=5)
        response.raise_for_status()

    def pages_once_there_are(count: int) -> Callable[[], list[dict] | None]:
        return lambda: pages if len(pages := fetch_pages(base_url)) >= count else None

    post_alert()
    [firing] = wait_for("the firing page", pages_once_there_are(1))
    post_alert(endsAt=datetime.now(UTC).isoformat())
    resolved, again = wait_for("the resolved page", pages_once_there_are(2))

    # The firing notification stays listed, and reads as resolved once its resolve is in.
    assert again == firing | {"state": "resolved", "checked": True}
    assert (firing["state"], firing["checked"]) == ("firing", False)
    assert firing["status"] == "firing" and resolved["status"] == "resolved"
    assert firing["labels"] == resolved["labels"] == sent["labels"]
    assert firing["annotations"] == sent["annotations"]
    assert (
        firing["starts_at"]
        == resolved["starts_at"]
        == started.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
    assert firing["ends_at"] is None and resolved["ends_at"] is not None
    assert firing["fingerprint"] == resolved["fingerprint"] != ""


def _metric(base_url: str, name: str) -> float:
    text = requests.get(f"{base_url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not exposed at {base_url}")


@pytest.mark.skipif(ALERTMANAGER is None, reason="needs the Alertmanager binary on PATH")
def test_a_page_alertmanager_forgot_in_a_restart_is_expired(
    tmp_path: Path,
    start_receiver: Callable[..., tuple[str, Process]],
    processes: list[Process],
) -> None:
    am_port = free_port()
    am_url = f"http://127.0.0.1:{am_port}"
    base_url, _ = start_receiver(tmp_path / "pages.db", ALERTMANAGER_URL=am_url)
    am_config = oncall_stack.config(base_url)
    _, alertmanager = oncall_stack.start_alertmanager(tmp_path, am_config, port=am_port)
    processes.append(alertmanager)
    oncall_stack.post_alerts(
        am_url,
        {"alertname": "TargetDown", "job": "features", "severity": "page"},
        starts_at=datetime.now(UTC),
    )
    [page] = wait_for("the page", lambda: fetch_pages(base_url, alertname="TargetDown"))
    assert (page["state"], page["checked"]) == ("firing", True)

    # As `obslab down` and `obslab up` do: the new Alertmanager never hears of the alert.
    alertmanager.stop()
    _, alertmanager = oncall_stack.start_alertmanager(tmp_path, am_config, port=am_port)
    processes.append(alertmanager)

    [after] = fetch_pages(base_url, alertname="TargetDown")
    assert (after["status"], after["state"], after["checked"]) == ("firing", "expired", True)
    assert after["fingerprint"] == page["fingerprint"]
    assert fetch_pages(base_url, state="firing") == []


@pytest.mark.skipif(ALERTMANAGER is None, reason="needs the Alertmanager binary on PATH")
def test_the_dead_mans_switch_pages_when_alertmanager_dies_and_resolves_on_its_return(
    tmp_path: Path,
    start_receiver: Callable[..., tuple[str, Process]],
    processes: list[Process],
) -> None:
    am_port = free_port()
    am_url = f"http://127.0.0.1:{am_port}"
    base_url, _ = start_receiver(
        tmp_path / "pages.db", ALERTMANAGER_URL=am_url, WATCHDOG_TIMEOUT_SECONDS="5"
    )
    am_config = oncall_stack.config(base_url)
    watchdog = {"alertname": "Watchdog", "severity": "none"}

    def start_alertmanager() -> Process:
        _, process = oncall_stack.start_alertmanager(tmp_path, am_config, port=am_port)
        processes.append(process)
        oncall_stack.post_alerts(am_url, watchdog, starts_at=datetime.now(UTC))
        return process

    def dead_mans_pages(state: str) -> list[dict]:
        return fetch_pages(base_url, alertname="DeadMansSwitch", state=state)

    alertmanager = start_alertmanager()
    wait_for(
        "the first Watchdog",
        lambda: _metric(base_url, "oncall_watchdog_last_seen_timestamp_seconds") > 0,
    )
    alertmanager.kill()

    [firing] = wait_for("the dead-man's page", lambda: dead_mans_pages("firing"))
    assert (firing["kind"], firing["checked"]) == ("page", True)
    assert _metric(base_url, "oncall_dead_mans_switch_firing") == 1

    start_alertmanager()
    wait_for("the dead-man's page resolved", lambda: not dead_mans_pages("firing"))
    resolved = fetch_pages(base_url, alertname="DeadMansSwitch", status="resolved")
    assert [page["starts_at"] for page in resolved] == [firing["starts_at"]]
    assert _metric(base_url, "oncall_dead_mans_switch_firing") == 0
