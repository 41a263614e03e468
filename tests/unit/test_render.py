"""The configs rendered from config/stack.yaml, checked by the real promtool, amtool and nginx."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from obslab import render
from obslab.layout import StateLayout
from obslab.stackconfig import (
    STACK_FILE,
    ConfigError,
    StackConfig,
    load_stack,
    port_offset_from_env,
)
from obslab.topology import Instance, Release, Topology

NGINX = shutil.which("nginx", path="/usr/sbin:/usr/bin") or "nginx"


def _topology(stack: StackConfig, profile: str, *, weights: tuple[int, ...] = (1, 1)) -> Topology:
    release = Release("1.0.0", "abc1234", "m1", deployed_at=1_700_000_000.0)
    instances = tuple(
        Instance(service.name, index, service.instance_port + index, release, weight)
        for service in (stack.features, stack.scoring)
        for index, weight in enumerate(weights)
    )
    return Topology(profile, 0, False, {"scoring": release, "features": release}, instances)


@pytest.fixture
def layout(tmp_path: Path) -> StateLayout:
    layout = StateLayout(tmp_path / "state")
    layout.create()
    return layout


def _write_prometheus_files(stack: StackConfig, profile: str, layout: StateLayout) -> None:
    """Everything prometheus.yml points at, as `obslab up` writes it."""
    topology = _topology(stack, profile)
    layout.rules_file.write_text(
        render.render_rules(stack.profile(profile), render.runbook_base_url(stack))
    )
    for service in render.LOAD_BALANCED:
        layout.targets_file(service).write_text(
            render.render_targets(topology.instances_of(service))
        )
    layout.prometheus_config.write_text(
        render.render_prometheus(stack, stack.profile(profile), layout)
    )


@pytest.mark.parametrize("profile", ["demo", "test"])
def test_prometheus_config_passes_promtool(layout: StateLayout, profile: str) -> None:
    stack = load_stack()
    _write_prometheus_files(stack, profile, layout)

    result = subprocess.run(
        ["promtool", "check", "config", str(layout.prometheus_config)],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_prometheus_config_scrapes_every_job_and_alerts_locally(layout: StateLayout) -> None:
    stack = load_stack()
    document = yaml.safe_load(render.render_prometheus(stack, stack.profile("test"), layout))

    jobs = {job["job_name"]: job for job in document["scrape_configs"]}
    assert set(jobs) == {"scoring", "features", "oncall", "prometheus", "alertmanager"}
    assert jobs["scoring"]["file_sd_configs"] == [{"files": [str(layout.targets_file("scoring"))]}]
    assert jobs["oncall"]["static_configs"] == [{"targets": ["127.0.0.1:8002"]}]
    assert document["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s"}
    assert document["rule_files"] == [str(layout.rules_file)]
    alertmanagers = document["alerting"]["alertmanagers"]
    assert alertmanagers == [{"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]


def test_targets_list_each_instance_of_the_service() -> None:
    stack = load_stack()
    topology = _topology(stack, "demo")

    groups = json.loads(render.render_targets(topology.instances_of("scoring")))

    assert groups == [
        {"targets": ["127.0.0.1:8100"], "labels": {}},
        {"targets": ["127.0.0.1:8101"], "labels": {}},
    ]


@pytest.mark.parametrize("profile", ["demo", "test"])
def test_alertmanager_config_passes_amtool(layout: StateLayout, profile: str) -> None:
    stack = load_stack()
    layout.alertmanager_config.write_text(
        render.render_alertmanager(stack, stack.profile(profile), layout)
    )

    assert "SUCCESS" in _amtool_check(layout.alertmanager_config)


def _amtool_check(config: Path) -> str:
    """amtool's report on ``config``, which it must accept."""
    result = subprocess.run(["amtool", "check-config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_nginx_config_passes_nginx_test(layout: StateLayout) -> None:
    stack = load_stack()
    layout.nginx_config.write_text(render.render_nginx(stack, _topology(stack, "demo"), layout))

    result = subprocess.run(
        [NGINX, "-t", "-p", f"{layout.nginx}/", "-c", str(layout.nginx_config), "-e", "stderr"],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_balances_each_service_over_its_instances_with_their_weights(
    layout: StateLayout,
) -> None:
    stack = load_stack(port_offset=20000)
    conf = render.render_nginx(stack, _topology(stack, "test", weights=(9, 1)), layout)

    assert "listen 127.0.0.1:28000;" in conf
    assert "listen 127.0.0.1:28001;" in conf
    scoring = conf[conf.index("upstream scoring") : conf.index("}", conf.index("upstream scoring"))]
    assert "server 127.0.0.1:28100 weight=9;" in scoring
    assert "server 127.0.0.1:28101 weight=1;" in scoring
    assert "28200" not in scoring
    assert str(layout.root) in conf
    assert "/var/" not in conf


def test_port_offset_moves_every_port() -> None:
    base, shifted = load_stack(), load_stack(port_offset=20000)

    assert shifted.scoring.port == base.scoring.port + 20000
    assert shifted.features.instance_port == base.features.instance_port + 20000
    assert shifted.oncall.port == base.oncall.port + 20000
    assert shifted.prometheus_port == base.prometheus_port + 20000
    assert shifted.alertmanager_port == base.alertmanager_port + 20000
    assert shifted.locust.port == base.locust.port + 20000


def test_port_offset_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSLAB_PORT_OFFSET", "20000")
    assert port_offset_from_env() == 20000
    monkeypatch.setenv("OBSLAB_PORT_OFFSET", "lots")
    with pytest.raises(ConfigError, match="OBSLAB_PORT_OFFSET: expected an integer, got 'lots'"):
        port_offset_from_env()


_DELETE = object()


def _edit(document: dict, dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        document = document[key]
    if value is _DELETE:
        del document[last]
    else:
        document[last] = value


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("services.scoring.instances", "two", "expected an integer >= 1, got 'two'"),
        ("services.scoring.instances", True, "expected an integer >= 1, got True"),
        ("services.features.instaces", 2, "unknown key"),
        ("services.oncall.port", 70000, "outside 1-65535"),
        ("services.oncall.port", 8000, "port 8000 is also used by services.scoring.port"),
        ("services.scoring.health", "healthz", "expected a path starting with /"),
        ("services.scoring.release.model_version", _DELETE, "missing"),
        ("profiles.test.scrape_interval", "fast", "expected a duration such as 5s or 1h"),
        ("profiles.demo.admin", "yes", "expected true or false"),
        ("profiles.demo.alertmanager.group_wait", 10, "expected a duration"),
        (
            "profiles.demo.alertmanager.symptom_group_wait",
            "10s",
            "10s is shorter than a cause may arrive after its symptom: gunicorn's "
            "graceful_timeout (5s, app/gunicorn_conf.py), a scrape and an evaluation (15s in all)",
        ),
        ("services.locust.spawn_rate", 0, "expected a positive number"),
    ],
)
def test_bad_stack_file_names_the_file_and_the_key(
    tmp_path: Path, key: str, value: object, problem: str
) -> None:
    document = yaml.safe_load(STACK_FILE.read_text())
    _edit(document, key, value)
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(document))

    with pytest.raises(ConfigError) as error:
        load_stack(path)

    assert str(error.value).startswith(f"{path}: {key}: ")
    assert problem in str(error.value)


def test_unparsable_stack_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("services: [unclosed\n")

    with pytest.raises(ConfigError, match=f"^{path}: not valid YAML"):
        load_stack(path)


def test_unknown_profile_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"stack\.yaml: profiles\.staging: no such profile"):
        load_stack().profile("staging")


def test_prod_profile_is_reserved_with_admin_off() -> None:
    stack = load_stack()
    assert stack.profile("prod").admin is False
    assert stack.profile("demo").admin is True
