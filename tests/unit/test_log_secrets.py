"""Access: the admin API is off unless enabled, and no token or personal data reaches a log.

The log test runs both services under real gunicorn, each writing its own JSON log file, and
scans those files, and what the processes printed, after traffic that carries tokens in
headers and personal data in bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
import requests
from flask import Flask

from app.features import create_app as create_features
from app.scoring import create_app as create_scoring
from app.telemetry import hash_customer_id
from obslab.stack import gunicorn_argv
from obslab.stackconfig import AppService, load_stack
from tests.unit.processes import Process, clean_environ, free_port

ADMIN_TOKEN = "adm1n-T0ken-never-logged"
GUESSED_TOKEN = "gu3ssed-T0ken-never-logged"
CUSTOMER_ID = 9173
# Distinctive values: none can occur in a log by chance (ids are hex, times have no such digits).
APPLICANT = {
    "customer_id": CUSTOMER_ID,
    "income": 123_456.78,
    "age": 57,
    "debt_ratio": 0.4321,
    "loan_amount": 98_765.43,
    "employment_years": 13.7,
}
PERSONAL_TEXT = ("123456.78", "98765.43", "0.4321", "13.7")


@pytest.fixture(params=["scoring", "features"])
def app_without_admin(request: pytest.FixtureRequest, tmp_path: Path) -> Flask:
    if request.param == "features":
        return create_features({"FEATURES_DB": str(tmp_path / "customers.db"), "LOG_FILE": ""})
    return create_scoring(
        {
            "FEATURES_URL": "http://127.0.0.1:9",
            "PREDICTIONS_DB": str(tmp_path / "predictions.db"),
            "MODELS_DIR": str(tmp_path / "models"),
            "LOG_FILE": "",
        }
    )


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_the_admin_api_is_off_by_default(app_without_admin: Flask, method: str) -> None:
    client = app_without_admin.test_client()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    for path in ("/admin/faults", "/admin/faults/error_burst"):
        response = client.open(path, method=method, headers=auth, json={"name": "error_burst"})
        assert response.status_code == 404
        assert response.get_json()["error"]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[str, Path, Callable[[], None]]]:
    """Scoring and features under gunicorn with the admin API on; the scoring URL, the logs,
    and what stops both."""
    logs = tmp_path / "logs"
    env = clean_environ() | {
        "OBSLAB_HOME": str(tmp_path / "home"),
        "OBSLAB_ADMIN_ENABLED": "true",
        "OBSLAB_ADMIN_TOKEN": ADMIN_TOKEN,
        # 1.2.0 fails on high debt ratios, so an exception with the applicant in scope is logged.
        "OBSLAB_SERVICE_VERSION": "1.2.0",
    }
    started: list[Process] = []

    def stop() -> None:
        # SIGTERM, so each service writes what it holds before the logs are read.
        for process in reversed(started):
            process.stop()

    def start(service: AppService, extra: dict[str, str]) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_file = {"OBSLAB_LOG_FILE": str(logs / f"{service.name}.jsonl")}
        command = gunicorn_argv(service, port)
        process = Process(service.name, command, env | log_file | extra, logs, f"{url}/readyz")
        started.append(process)
        return url

    logs.mkdir()
    try:
        stack = load_stack()
        features = start(stack.features, {})
        scoring = start(stack.scoring, {"OBSLAB_FEATURES_URL": features})
        yield scoring, logs, stop
    finally:
        stop()


def walk(value: object) -> Iterator[object]:
    """Every key and scalar of a parsed log line, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)
    else:
        yield value


def test_tokens_and_personal_data_never_reach_the_logs(
    services: tuple[str, Path, Callable[[], None]],
) -> None:
    scoring_url, logs, stop = services
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    guessed = {"Authorization": f"Bearer {GUESSED_TOKEN}", "Cookie": f"session={GUESSED_TOKEN}"}
    with requests.Session() as http:
        prediction = http.post(f"{scoring_url}/predict", json=APPLICANT, headers=guessed)
        assert prediction.status_code == 200
        outcome = {"prediction_id": prediction.json()["prediction_id"], "defaulted": True}
        assert http.post(f"{scoring_url}/feedback", json=outcome, headers=admin).ok
        failing = APPLICANT | {"debt_ratio": 0.5432}
        assert http.post(f"{scoring_url}/predict", json=failing, headers=admin).status_code == 500
        refused = APPLICANT | {"age": 12}
        assert http.post(f"{scoring_url}/predict", json=refused).status_code == 400
        assert http.get(f"{scoring_url}/admin/faults", headers=guessed).status_code == 401
        assert http.get(f"{scoring_url}/admin/faults", headers=admin).status_code == 200
        bad_fault = {"name": "no_such_fault", "params": {"token": ADMIN_TOKEN}}
        assert (
            http.post(f"{scoring_url}/admin/faults", json=bad_fault, headers=admin).status_code
            < 500
        )
    # Log lines are written in batches; a clean stop writes the last of them.
    stop()
    text = "".join(path.read_text() for path in sorted(logs.glob("*.jsonl")))
    lines = [orjson.loads(line) for line in text.splitlines()]
    # What the processes printed beside their JSON lines (gunicorn, Flask's own traceback).
    output = "".join(path.read_text() for path in sorted(logs.glob("*.log")))

    # The scan is only as good as what it reads: both services' request lines, the
    # exception, and the pseudonym that stands for the customer.
    assert {line["service"] for line in lines} == {"scoring", "features"}
    assert any(line.get("status") == 500 and "exception" in line for line in lines)
    assert hash_customer_id(CUSTOMER_ID) in text
    for secret in (ADMIN_TOKEN, GUESSED_TOKEN, *PERSONAL_TEXT, "0.5432", f"/{CUSTOMER_ID}/"):
        assert secret not in text
        assert secret not in output
    values = {str(value) for line in lines for value in walk(line)}
    assert str(CUSTOMER_ID) not in values
