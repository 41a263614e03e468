"""A real Alertmanager beside the oncall receiver, for the tests that need its API."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from obslab.stack import gunicorn_argv
from obslab.stackconfig import load_stack
from tests.unit.oncall_payloads import AUTH, TOKEN, alert, notification
from tests.unit.processes import ALERTMANAGER, Process, clean_environ, free_port, wait_for

TARGET_DOWN = {"alertname": "TargetDown", "job": "features", "severity": "page"}
ERRORS = {"alertname": "HighErrorRate", "job": "features", "severity": "page"}
DRIFT = {"alertname": "FeatureDrift", "feature": "income", "severity": "ticket"}

#: TargetDown holds back the HighErrorRate of the same job: a cause before its symptom.
INHIBIT_RULES = """
inhibit_rules:
  - source_matchers: ['alertname="TargetDown"']
    target_matchers: ['alertname="HighErrorRate"']
    equal: [job]
"""


def receiver(name: str, url: str | None) -> str:
    if url is None:
        return f"  - name: {name}\n"
    return f"""  - name: {name}
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
"""


def config(oncall_url: str | None = None) -> str:
    """Alerts to ``oncall_url``/webhook and the Watchdog to ``oncall_url``/watchdog every
    second, or nowhere without a URL."""
    webhook = f"{oncall_url}/webhook" if oncall_url else None
    heartbeat = f"{oncall_url}/watchdog" if oncall_url else None
    return f"""
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: watchdog
      matchers: ['alertname="Watchdog"']
      group_interval: 1s
      repeat_interval: 1s
receivers:
{receiver("oncall", webhook)}{receiver("watchdog", heartbeat)}{INHIBIT_RULES}"""


def start_alertmanager(
    workdir: Path, config_text: str, *, port: int | None = None, name: str = "alertmanager"
) -> tuple[str, Process]:
    """Alertmanager on ``port`` (else a free one), its storage under ``workdir``."""
    assert ALERTMANAGER is not None
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / f"{name}.yml"
    config_file.write_text(config_text)
    url = f"http://127.0.0.1:{port or free_port()}"
    command = [
        ALERTMANAGER,
        f"--config.file={config_file}",
        f"--storage.path={workdir / name}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--cluster.listen-address=",
    ]
    return url, Process(name, command, dict(os.environ), workdir, f"{url}/-/ready")


def post_alerts(alertmanager: str, *labelsets: dict[str, str], starts_at: datetime) -> None:
    """Fire these alerts at Alertmanager as Prometheus would, for the next ten minutes."""
    body = [
        {
            "labels": labels,
            "annotations": {"summary": f"{labels['alertname']} summary"},
            "startsAt": starts_at.isoformat(),
            "endsAt": (datetime.now(UTC) + timedelta(minutes=10)).isoformat(),
            "generatorURL": "http://127.0.0.1:9090/graph",
        }
        for labels in labelsets
    ]
    requests.post(f"{alertmanager}/api/v2/alerts", json=body, timeout=5).raise_for_status()


def held_alerts(alertmanager: str) -> dict[str, dict]:
    """Alertmanager's alerts by name, as its API v2 shows them."""
    response = requests.get(f"{alertmanager}/api/v2/alerts", timeout=5)
    response.raise_for_status()
    return {alert["labels"]["alertname"]: alert for alert in response.json()}


def start_receiver(workdir: Path, **settings: str) -> tuple[str, Process]:
    """The receiver under gunicorn, as the lab runs it, with ``OBSLAB_<name>`` settings."""
    port = free_port()
    env = clean_environ() | {
        "OBSLAB_HOME": str(workdir / "home"),
        "OBSLAB_ONCALL_TOKEN": TOKEN,
        **{f"OBSLAB_{name}": value for name, value in settings.items()},
    }
    url = f"http://127.0.0.1:{port}"
    command = gunicorn_argv(load_stack().oncall, port)
    return url, Process(f"oncall-{port}", command, env, workdir, f"{url}/readyz")


def deliver(oncall_url: str, alertmanager: str, *names: str) -> None:
    """Send the receiver the webhooks Alertmanager would send for these alerts it holds."""
    held = held_alerts(alertmanager)
    for name in names:
        sent = alert(name, fingerprint=held[name]["fingerprint"], starts_at=held[name]["startsAt"])
        sent["labels"] = held[name]["labels"]
        response = requests.post(
            f"{oncall_url}/webhook", json=notification(sent), headers=AUTH, timeout=5
        )
        response.raise_for_status()


def hold_back(alertmanager: str) -> None:
    """Fire TargetDown and HighErrorRate of features, and the FeatureDrift ticket; wait until
    the inhibition holds back HighErrorRate."""
    post_alerts(alertmanager, TARGET_DOWN, ERRORS, DRIFT, starts_at=datetime.now(UTC))
    wait_for(
        "the inhibition",
        lambda: held_alerts(alertmanager)["HighErrorRate"]["status"]["inhibitedBy"],
    )
