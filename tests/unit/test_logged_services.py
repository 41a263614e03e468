"""Every service the Logs dashboard offers writes the shared structured logs.

The dashboard's ``service`` variable filters Loki on ``service_name``; a service that logs
plain text (as the oncall receiver once did) would be offered there and show nothing. Each
value is created through its app factory, which must configure the shared logging, and a
line logged afterwards must arrive as JSON carrying that service's name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog
from flask import Flask

from app.features import create_app as create_features
from app.scoring import create_app as create_scoring
from obslab.oncall import create_app as create_oncall
from tests.unit.processes import wait_for
from tests.unit.services import scoring_settings

LOGS_DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards/json/obslab-logs-traces.json"

#: How each service of the lab is created, as gunicorn creates it.
FACTORIES: dict[str, Callable[[Path, Path], Flask]] = {
    "scoring": lambda home, log: create_scoring(
        {**scoring_settings(home, "http://127.0.0.1:9"), "LOG_FILE": str(log)}
    ),
    "features": lambda home, log: create_features(
        {"FEATURES_DB": str(home / "customers.db"), "LOG_FILE": str(log)}
    ),
    "oncall": lambda home, log: create_oncall(
        {"ONCALL_TOKEN": "token", "ONCALL_DB": str(home / "pages.db"), "LOG_FILE": str(log)}
    ),
}


def dashboard_services() -> list[str]:
    dashboard = json.loads(LOGS_DASHBOARD.read_text(encoding="utf-8"))
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "service"]
    return [value.strip() for value in variable["query"].split(",")]


def test_the_dashboard_offers_services() -> None:
    assert dashboard_services()


@pytest.mark.parametrize("service", dashboard_services())
def test_each_offered_service_logs_json_lines_with_its_name(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("OBSLAB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path / "home"))
    assert service in FACTORIES, f"the Logs dashboard offers {service}, which no factory makes"
    log = tmp_path / f"{service}.jsonl"

    FACTORIES[service](tmp_path, log)
    structlog.get_logger().info("probe_line", probe=service)

    def probe_line() -> dict | None:
        lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        found = [json.loads(line) for line in lines if '"probe_line"' in line]
        return found[0] if found else None

    line = wait_for(f"{service}'s JSON line in {log}", probe_line)
    assert line["service"] == service
    assert line["probe"] == service
    assert {"timestamp", "level", "version"} <= set(line)
