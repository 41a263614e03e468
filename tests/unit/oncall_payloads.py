"""Alertmanager webhook bodies (version 4) for the oncall receiver's tests."""

from __future__ import annotations

TOKEN = "s3cret-oncall-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def alert(
    name: str = "HighErrorRate",
    *,
    status: str = "firing",
    fingerprint: str = "a1b2c3d4e5f60718",
    starts_at: str = "2024-05-01T12:00:00Z",
    ends_at: str = GO_ZERO_TIME,
    severity: str = "page",
    **labels: str,
) -> dict:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, "job": "scoring", **labels},
        "annotations": {"summary": f"{name} on scoring", "runbook_url": f"runbook.md#{name}"},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


def watchdog(status: str = "firing") -> dict:
    return alert(
        "Watchdog",
        status=status,
        severity="none",
        fingerprint="0f0f0f0f0f0f0f0f",
        ends_at="2024-05-01T12:05:00Z" if status == "resolved" else GO_ZERO_TIME,
    )


def notification(*alerts: dict) -> dict:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "status": alerts[0]["status"] if alerts else "firing",
        "receiver": "oncall",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "truncatedAlerts": 0,
        "alerts": list(alerts),
    }
