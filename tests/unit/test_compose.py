"""The docker compose stack, checked by the real tools this machine has.

No Docker engine runs here; Debian's docker-compose validates the file without one, and
promtool and amtool check the Prometheus and Alertmanager configs compose mounts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from obslab.compose import (
    ALERTMANAGER_CONFIG,
    CONTAINER_PROMETHEUS_DIR,
    PROMETHEUS_CONFIG,
    RULES,
    rendered_files,
)
from obslab.stackconfig import REPO_ROOT

SECRETS = {"GRAFANA_ADMIN_PASSWORD": "test-password", "ONCALL_TOKEN": "test-token"}
# Distroless or scratch images: no shell or HTTP client inside to run a probe with.
NO_PROBE = {"loki", "tempo", "otel-collector"}


def _compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if key not in SECRETS}
    return subprocess.run(
        ["docker-compose", "--project-directory", str(REPO_ROOT), *args],
        cwd=REPO_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
    )


needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose is not installed"
)


@pytest.fixture(scope="module")
def compose_config() -> dict:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    result = _compose("config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_committed_compose_configs_are_current() -> None:
    stale = [str(p) for p, text in rendered_files().items() if p.read_text() != text]
    assert not stale, f"run `python -m obslab.compose` to regenerate: {stale}"


@needs_compose
def test_compose_file_is_valid() -> None:
    result = _compose("config", "-q", env=SECRETS)
    assert result.returncode == 0, result.stderr


@needs_compose
@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_a_secret(missing: str) -> None:
    env = {key: value for key, value in SECRETS.items() if key != missing}
    result = _compose("config", "-q", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_every_image_is_pinned_in_env() -> None:
    pins = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    images = {key: value for key, value in pins.items() if key.endswith("_IMAGE")}
    assert len(images) == 7
    for key, image in images.items():
        tag = image.rsplit(":", 1)[-1]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?", tag), f"{key}={image}"


def test_the_stack_has_every_service(compose_config: dict) -> None:
    assert set(compose_config["services"]) == {
        "features",
        "scoring",
        "oncall",
        "locust",
        "prometheus",
        "alertmanager",
        "grafana",
        "loki",
        "tempo",
        "otel-collector",
    }


def test_healthchecks_gate_dependencies(compose_config: dict) -> None:
    services = compose_config["services"]
    for name, service in services.items():
        assert ("healthcheck" in service) == (name not in NO_PROBE), name
        for dependency, rule in service.get("depends_on", {}).items():
            expected = "service_started" if dependency in NO_PROBE else "service_healthy"
            assert rule["condition"] == expected, f"{name} -> {dependency}"


def test_app_services_share_one_image_and_run_one_gunicorn_worker(compose_config: dict) -> None:
    services = compose_config["services"]
    for name in ("features", "scoring", "oncall"):
        command = services[name]["command"]
        command = " ".join(command) if isinstance(command, list) else command
        assert command.startswith("gunicorn ") and "--workers=1" in command, name
        assert "--worker-class=gthread" in command, name
        assert services[name]["image"] == services["locust"]["image"] == "obslab-app:local"
    assert services["scoring"]["deploy"]["replicas"] >= 2


def test_grafana_password_comes_from_the_environment(compose_config: dict) -> None:
    environment = compose_config["services"]["grafana"]["environment"]
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_prometheus_discovers_replicas_by_dns_and_stores_exemplars(compose_config: dict) -> None:
    document = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in document["scrape_configs"]}
    for service in ("scoring", "features"):
        (dns,) = jobs[service]["dns_sd_configs"]
        assert dns["names"] == [service] and dns["type"] == "A"
    assert (
        "--enable-feature=exemplar-storage" in compose_config["services"]["prometheus"]["command"]
    )


def test_compose_and_native_configs_share_rules_and_routes() -> None:
    native_rules = REPO_ROOT / "alerts" / "obslab.rules.yml"
    assert yaml.safe_load(RULES.read_text()) == yaml.safe_load(native_rules.read_text())
    routes = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["route"]
    assert {route["receiver"] for route in routes["routes"]} == {
        "oncall-page",
        "oncall-ticket",
        "oncall-watchdog",
    }


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_compose_prometheus_config(tmp_path: Path) -> None:
    # The config names the rule file where the container mounts it; point it at a copy here.
    config = PROMETHEUS_CONFIG.read_text().replace(f"{CONTAINER_PROMETHEUS_DIR}/", f"{tmp_path}/")
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(RULES, tmp_path / RULES.name)
    result = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool is not installed")
def test_amtool_accepts_the_compose_alertmanager_config() -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(ALERTMANAGER_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
