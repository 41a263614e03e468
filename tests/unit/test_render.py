"""The configs rendered from config/stack.yaml, checked by the real promtool, amtool and nginx."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
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
from tests.unit.processes import ALERTMANAGER, Process, free_port, wait_for

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
    layout.rules_file.write_text(render.render_rules(stack.profile(profile)))
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


def test_alertmanager_routes_pages_and_tickets_to_the_oncall_webhook(
    layout: StateLayout,
) -> None:
    stack = load_stack(port_offset=100)
    document = yaml.safe_load(render.render_alertmanager(stack, stack.profile("test"), layout))

    route = document["route"]
    assert route["group_wait"] == "1s"
    assert route["group_interval"] == "2s"
    assert {child["receiver"]: child["matchers"] for child in route["routes"]} == {
        "oncall-page": ['severity="page"'],
        "oncall-ticket": ['severity="ticket"'],
    }
    for receiver in document["receivers"]:
        (webhook,) = receiver["webhook_configs"]
        assert webhook["url"] == "http://127.0.0.1:8102/webhook"
        assert webhook["send_resolved"] is True
        assert webhook["http_config"]["authorization"] == {
            "type": "Bearer",
            "credentials_file": str(layout.oncall_token),
        }


def test_a_page_inhibits_the_ticket_of_the_same_alert_and_subject(layout: StateLayout) -> None:
    stack = load_stack()
    layout.alertmanager_config.write_text(
        render.render_alertmanager(stack, stack.profile("demo"), layout)
    )
    document = yaml.safe_load(layout.alertmanager_config.read_text())

    assert document["inhibit_rules"] == [
        {
            "source_matchers": ['severity="page"'],
            "target_matchers": ['severity="ticket"'],
            "equal": ["alertname", "job", "feature", "model_version"],
        }
    ]
    assert " - 1 inhibit rules" in _amtool_check(layout.alertmanager_config)


def _amtool_check(config: Path) -> str:
    """amtool's report on ``config``, which it must accept."""
    result = subprocess.run(["amtool", "check-config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _alert(name: str, severity: str, **labels: str) -> dict:
    return {"labels": {"alertname": name, "severity": severity, **labels}}


def _key(alert: dict) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(alert["labels"].items()))


def test_alertmanager_holds_back_only_the_ticket_of_a_firing_page(
    tmp_path: Path, layout: StateLayout
) -> None:
    """The rendered config in a real Alertmanager: each page inhibits its own ticket, and no
    ticket about another feature, model or job."""
    if ALERTMANAGER is None:
        pytest.fail("prometheus-alertmanager is not on PATH: run `make setup`")
    # Notifications go to an oncall port nothing listens on, never to a running lab's.
    stack = load_stack(port_offset=free_port() - load_stack().oncall.port)
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
    m1 = {"model_version": "m1"}
    sent = {
        "income page": _alert("FeatureDrift", "page", feature="income", **m1),
        "income ticket": _alert("FeatureDrift", "ticket", feature="income", **m1),
        "age ticket": _alert("FeatureDrift", "ticket", feature="age", **m1),
        "m2 income ticket": _alert("FeatureDrift", "ticket", feature="income", model_version="m2"),
        "score ticket": _alert("PredictionDrift", "ticket", **m1),
        "scoring fast burn": _alert("ErrorBudgetBurn", "page", job="scoring", window="fast"),
        "scoring slow burn": _alert("ErrorBudgetBurn", "ticket", job="scoring", window="slow"),
        "features slow burn": _alert("ErrorBudgetBurn", "ticket", job="features", window="slow"),
    }

    def alerts(**query: str) -> dict[tuple[tuple[str, str], ...], dict]:
        response = requests.get(f"{url}/api/v2/alerts", params=query, timeout=5)
        response.raise_for_status()
        return {_key(alert): alert for alert in response.json()}

    def once_two_are_inhibited() -> dict[tuple[tuple[str, str], ...], dict] | None:
        current = alerts()
        inhibited = [alert for alert in current.values() if alert["status"]["inhibitedBy"]]
        return current if len(current) == len(sent) and len(inhibited) >= 2 else None

    alertmanager = Process("alertmanager", command, dict(os.environ), tmp_path, f"{url}/-/ready")
    try:
        response = requests.post(f"{url}/api/v2/alerts", json=list(sent.values()), timeout=5)
        response.raise_for_status()
        # The inhibitor learns of a page after the API has accepted it.
        received = wait_for("the tickets under a page to be inhibited", once_two_are_inhibited)
        notified = alerts(inhibited="false")
    finally:
        alertmanager.kill()

    found = {name: received[_key(alert)] for name, alert in sent.items()}
    page = {name: found[name]["fingerprint"] for name in ("income page", "scoring fast burn")}
    assert {name: alert["status"]["inhibitedBy"] for name, alert in found.items()} == {
        "income page": [],
        "income ticket": [page["income page"]],
        "age ticket": [],
        "m2 income ticket": [],
        "score ticket": [],
        "scoring fast burn": [],
        "scoring slow burn": [page["scoring fast burn"]],
        "features slow burn": [],
    }
    assert {name for name, alert in sent.items() if _key(alert) in notified} == set(sent) - {
        "income ticket",
        "scoring slow burn",
    }


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
