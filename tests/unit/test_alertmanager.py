"""Alertmanager's routes and inhibitions as rendered from config/stack.yaml, in a real
Alertmanager: pages and tickets reach oncall's webhook on their own schedules, the Watchdog
reaches its dead-man's switch, and a cause holds back the symptoms it explains.

The receiver here is a small HTTP server standing in for the oncall service: it records what
Alertmanager delivers, so the test checks Alertmanager's side of the contract (paths, token,
webhook JSON), not oncall's handling of it (tests/unit/test_oncall*.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from alerts.thresholds import duration_seconds
from obslab import render
from obslab.layout import StateLayout
from obslab.stackconfig import StackConfig, load_stack
from tests.unit.processes import ALERTMANAGER, Process, free_port, wait_for

TOKEN = "test-oncall-token"


@pytest.fixture
def layout(tmp_path: Path) -> StateLayout:
    layout = StateLayout(tmp_path / "state")
    layout.create()
    layout.oncall_token.write_text(TOKEN)
    return layout


class _Receiver(ThreadingHTTPServer):
    """Every webhook delivery: (path, Authorization header, JSON body)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.deliveries: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()

    def received(self, path: str) -> list[dict]:
        with self.lock:
            return [body for at, _, body in self.deliveries if at == path]


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.deliveries.append((self.path, self.headers["Authorization"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest shows what the assertions say."""


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def alertmanager(tmp_path: Path, layout: StateLayout, receiver: _Receiver) -> Iterator[str]:
    """A real Alertmanager on the test profile's config, delivering to ``receiver``."""
    if ALERTMANAGER is None:
        pytest.fail("prometheus-alertmanager is not on PATH: run `make setup`")
    stack = _stack_delivering_to(receiver.server_address[1])
    config = tmp_path / "alertmanager.yml"
    config.write_text(render.render_alertmanager(stack, stack.profile("test"), layout))
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        ALERTMANAGER,
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'alertmanager'}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--cluster.listen-address=",
    ]
    process = Process("alertmanager", command, dict(os.environ), tmp_path, f"{url}/-/ready")
    try:
        yield url
    finally:
        process.kill()


def _stack_delivering_to(port: int) -> StackConfig:
    return load_stack(port_offset=port - load_stack().oncall.port)


def _alert(name: str, severity: str, **labels: str) -> dict:
    return {"labels": {"alertname": name, "severity": severity, **labels}}


def _key(alert: dict) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(alert["labels"].items()))


def _post(url: str, alerts: list[dict]) -> None:
    requests.post(f"{url}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()


def _alerts(url: str, **query: str) -> dict[tuple[tuple[str, str], ...], dict]:
    response = requests.get(f"{url}/api/v2/alerts", params=query, timeout=5)
    response.raise_for_status()
    return {_key(alert): alert for alert in response.json()}


@pytest.mark.parametrize("profile", ["demo", "test", "prod"])
def test_amtool_accepts_the_config(layout: StateLayout, profile: str) -> None:
    stack = load_stack()
    layout.alertmanager_config.write_text(
        render.render_alertmanager(stack, stack.profile(profile), layout)
    )
    result = subprocess.run(
        ["amtool", "check-config", str(layout.alertmanager_config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f" - {len(render.inhibit_rules())} inhibit rules" in result.stdout


@pytest.mark.parametrize("profile", ["demo", "test", "prod"])
def test_tickets_repeat_daily_pages_on_the_profile_and_the_watchdog_often(
    layout: StateLayout, profile: str
) -> None:
    stack = load_stack(port_offset=100)
    timing = stack.profile(profile).alertmanager
    document = yaml.safe_load(render.render_alertmanager(stack, stack.profile(profile), layout))

    route = document["route"]
    assert route["repeat_interval"] == timing.repeat_interval
    routes = {child["receiver"]: child for child in route["routes"]}
    assert routes["oncall-page"]["matchers"] == ['severity="page"']
    assert "repeat_interval" not in routes["oncall-page"]
    assert routes["oncall-ticket"]["matchers"] == ['severity="ticket"']
    assert routes["oncall-ticket"]["repeat_interval"] == "24h"
    # Under both severities, what a cause may explain waits longer for that cause.
    for severity in ("oncall-page", "oncall-ticket"):
        (symptoms,) = routes[severity]["routes"]
        assert symptoms == {
            "matchers": [f'alertname=~"{"|".join(render.WAITS_FOR_CAUSE)}"'],
            "group_wait": timing.symptom_group_wait,
        }
    watchdog = routes["oncall-watchdog"]
    assert watchdog["matchers"] == ['alertname="Watchdog"']
    assert watchdog["group_wait"] == "0s"
    assert watchdog["repeat_interval"] == timing.watchdog_repeat_interval
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in document["receivers"]}
    assert urls == {
        "oncall-page": "http://127.0.0.1:8102/webhook",
        "oncall-ticket": "http://127.0.0.1:8102/webhook",
        "oncall-watchdog": "http://127.0.0.1:8102/watchdog",
    }


def test_the_watchdog_timeout_outlasts_three_watchdog_repeats() -> None:
    stack = load_stack()
    timeouts = {name: render.watchdog_timeout_seconds(p) for name, p in stack.profiles.items()}
    assert timeouts == {"demo": 180, "test": 9, "prod": 180}


def test_pages_tickets_and_the_watchdog_reach_their_oncall_paths(
    alertmanager: str, receiver: _Receiver
) -> None:
    """With the oncall token, in Alertmanager's webhook JSON; the Watchdog again and again."""
    _post(
        alertmanager,
        [
            _alert("Watchdog", "none"),
            _alert("HighErrorRate", "page", job="scoring"),
            _alert("FeatureDrift", "ticket", feature="income", model_version="m1"),
        ],
    )

    def watchdog_twice() -> list[dict] | None:
        bodies = receiver.received("/watchdog")
        return bodies if len(bodies) >= 2 else None

    watchdogs = wait_for("the Watchdog to arrive twice", watchdog_twice, timeout=60)
    webhook = wait_for(
        "a page and a ticket at /webhook",
        lambda: (lambda got: got if len(got) >= 2 else None)(receiver.received("/webhook")),
        timeout=60,
    )

    assert {a["labels"]["alertname"] for body in watchdogs for a in body["alerts"]} == {"Watchdog"}
    assert watchdogs[0]["receiver"] == "oncall-watchdog"
    by_receiver = {body["receiver"]: body for body in webhook}
    assert by_receiver["oncall-page"]["alerts"][0]["labels"]["severity"] == "page"
    assert by_receiver["oncall-ticket"]["alerts"][0]["labels"]["severity"] == "ticket"
    assert {auth for _, auth, _ in receiver.deliveries} == {f"Bearer {TOKEN}"}


def test_a_dead_dependency_pages_once_and_holds_back_its_symptoms(alertmanager: str) -> None:
    """Every features instance down: the TargetDown pages are the only pages notified; the
    symptoms of features and of scoring, which calls it, stay in Alertmanager, inhibited by a
    cause. A page holds back its own ticket, and nothing unrelated is held back."""
    down = {
        "features down a": _alert("TargetDown", "page", job="features", instance="a"),
        "features down b": _alert("TargetDown", "page", job="features", instance="b"),
        "features down ticket": _alert("TargetDown", "ticket", job="features", instance="a"),
    }
    symptoms = {
        "scoring calls fail": _alert(
            "DependencyFailing", "page", job="scoring", dependency="features"
        ),
        "scoring errors": _alert("HighErrorRate", "page", job="scoring"),
        "scoring burn": _alert("ErrorBudgetBurn", "page", job="scoring", window="fast"),
        "scoring slow": _alert("HighLatency", "page", job="scoring", route="/predict"),
        "scoring latency burn": _alert(
            "LatencyBudgetBurn", "page", job="scoring", route="/predict", window="fast"
        ),
        "features burn": _alert("ErrorBudgetBurn", "ticket", job="features", window="chronic"),
    }
    unrelated = {
        "scoring memory": _alert("MemoryGrowth", "ticket", job="scoring", instance="s"),
        "income drift": _alert("FeatureDrift", "ticket", feature="income", model_version="m1"),
    }
    sent = down | symptoms | unrelated

    def once_symptoms_are_inhibited() -> dict | None:
        current = _alerts(alertmanager)
        held = [a for a in current.values() if a["status"]["inhibitedBy"]]
        return current if len(current) == len(sent) and len(held) == len(symptoms) + 1 else None

    _post(alertmanager, list(sent.values()))
    received = wait_for("the symptoms to be held back", once_symptoms_are_inhibited)
    notified = _alerts(alertmanager, inhibited="false")

    found = {name: received[_key(alert)] for name, alert in sent.items()}
    causes = {found[name]["fingerprint"] for name in ("features down a", "features down b")}
    # A held-back alert still explains others: scoring's errors may be held back by its
    # failing calls, which features being down holds back in turn.
    explained = causes | {
        found[name]["fingerprint"]
        for name in ("scoring calls fail", "scoring errors", "scoring slow")
    }
    assert set(found["scoring calls fail"]["status"]["inhibitedBy"]) <= causes
    for name in symptoms:
        assert found[name]["status"]["state"] == "suppressed", name
        assert set(found[name]["status"]["inhibitedBy"]) <= explained, name
    assert set(found["features down ticket"]["status"]["inhibitedBy"]) <= causes
    assert {name for name, alert in sent.items() if _key(alert) in notified} == (
        {"features down a", "features down b"} | set(unrelated)
    )


def test_a_symptom_that_arrives_before_its_cause_is_still_held_back(
    alertmanager: str, receiver: _Receiver
) -> None:
    """As when features stops gracefully: it answers scrapes while it drains, and scoring's
    calls to it fail meanwhile, so DependencyFailing reaches Alertmanager first. Its group waits
    symptom_group_wait, and the cause arriving later than group_wait still holds it back.

    An unexplained symptom, sent with the cause, is the control: its group was created after
    the held-back one's, with the same wait, so once it is delivered the other group's first
    notification is due too.
    """
    timing = load_stack().profile("test").alertmanager
    wait, symptom_wait = (
        duration_seconds(timing.group_wait),
        duration_seconds(timing.symptom_group_wait),
    )
    # Firing for the whole test: the test profile's resolve_timeout would end them sooner.
    ends = {"endsAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    calls_fail = _alert("DependencyFailing", "page", job="scoring", dependency="features") | ends
    _post(alertmanager, [calls_fail])
    # Later than any other alert's group would wait, well before the symptom's is due.
    time.sleep(wait + (symptom_wait - wait) / 2)
    features_down = _alert("TargetDown", "page", job="features", instance="a") | ends
    control = _alert("HighErrorRate", "page", job="oncall") | ends
    _post(alertmanager, [features_down, control])

    def delivered() -> set[str] | None:
        names = {
            alert["labels"]["alertname"]
            for body in receiver.received("/webhook")
            for alert in body["alerts"]
        }
        return names if "HighErrorRate" in names else None

    names = wait_for("the control symptom's page", delivered, timeout=60)
    assert names == {"TargetDown", "HighErrorRate"}
    current = _alerts(alertmanager)
    held = current[_key(calls_fail)]["status"]
    assert held["inhibitedBy"] == [current[_key(features_down)]["fingerprint"]]


def test_a_failing_dependency_holds_back_its_callers_symptoms_and_the_acute_alert_the_burn(
    alertmanager: str,
) -> None:
    """DependencyFailing holds back scoring's errors and latency; HighErrorRate, the acute page,
    holds back features' budget burn (one page for one problem); features' own latency, which
    no cause explains, still pages."""
    sent = {
        "scoring calls fail": _alert(
            "DependencyFailing", "page", job="scoring", dependency="features"
        ),
        "scoring errors": _alert("HighErrorRate", "page", job="scoring"),
        "scoring burn": _alert("ErrorBudgetBurn", "page", job="scoring", window="slow"),
        "features errors": _alert("HighErrorRate", "page", job="features"),
        "features burn": _alert("ErrorBudgetBurn", "page", job="features", window="fast"),
        "features slow": _alert("HighLatency", "page", job="features", route="/customers"),
    }

    def once_three_are_inhibited() -> dict | None:
        current = _alerts(alertmanager)
        held = [a for a in current.values() if a["status"]["inhibitedBy"]]
        return current if len(current) == len(sent) and len(held) == 3 else None

    _post(alertmanager, list(sent.values()))
    received = wait_for("three alerts to be held back", once_three_are_inhibited)
    found = {name: received[_key(alert)] for name, alert in sent.items()}
    fingerprint = {name: alert["fingerprint"] for name, alert in found.items()}

    assert found["scoring errors"]["status"]["inhibitedBy"] == [fingerprint["scoring calls fail"]]
    assert set(found["scoring burn"]["status"]["inhibitedBy"]) <= {
        fingerprint["scoring calls fail"],
        fingerprint["scoring errors"],
    }
    assert found["features burn"]["status"]["inhibitedBy"] == [fingerprint["features errors"]]
    for name in ("scoring calls fail", "features errors", "features slow"):
        assert found[name]["status"]["inhibitedBy"] == [], name


def test_a_page_holds_back_only_the_ticket_about_the_same_subject(alertmanager: str) -> None:
    """Each page inhibits its own ticket, and no ticket about another feature, model, job or
    release: after two quick deploys of one model, the newer release's shift page leaves the
    shift ticket of the release it replaced standing."""
    m1 = {"model_version": "m1"}
    release = {"job": "scoring", "model_version": "m2"}
    sent = {
        "income page": _alert("FeatureDrift", "page", feature="income", **m1),
        "income ticket": _alert("FeatureDrift", "ticket", feature="income", **m1),
        "age ticket": _alert("FeatureDrift", "ticket", feature="age", **m1),
        "m2 income ticket": _alert("FeatureDrift", "ticket", feature="income", model_version="m2"),
        "1.2.0 shift page": _alert(
            "DeployPredictionShift", "page", version="1.2.0", previous_version="1.1.0", **release
        ),
        "1.2.0 shift ticket": _alert(
            "DeployPredictionShift", "ticket", version="1.2.0", previous_version="1.1.0", **release
        ),
        "1.1.0 shift ticket": _alert(
            "DeployPredictionShift", "ticket", version="1.1.0", previous_version="1.0.0", **release
        ),
    }

    def once_two_are_inhibited() -> dict | None:
        current = _alerts(alertmanager)
        held = [a for a in current.values() if a["status"]["inhibitedBy"]]
        return current if len(current) == len(sent) and len(held) >= 2 else None

    _post(alertmanager, list(sent.values()))
    received = wait_for("the tickets under a page to be held back", once_two_are_inhibited)
    found = {name: received[_key(alert)] for name, alert in sent.items()}
    fingerprint = {name: alert["fingerprint"] for name, alert in found.items()}

    assert {name: alert["status"]["inhibitedBy"] for name, alert in found.items()} == {
        "income page": [],
        "income ticket": [fingerprint["income page"]],
        "age ticket": [],
        "m2 income ticket": [],
        "1.2.0 shift page": [],
        "1.2.0 shift ticket": [fingerprint["1.2.0 shift page"]],
        "1.1.0 shift ticket": [],
    }
