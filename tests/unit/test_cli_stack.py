"""The stack runner's state: the topology file, tokens and published instances."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from app import telemetry
from app.settings import load_config
from obslab import stack
from obslab.errors import ObslabError
from obslab.layout import StateLayout
from obslab.stackconfig import load_stack
from obslab.topology import Instance, Release, Topology, read_topology, write_topology

RELEASE = Release("1.1.0", "c0ffee1", "m2", deployed_at=1_700_000_000.5, previous_version="1.0.0")


def _topology() -> Topology:
    canary = Release(
        "1.2.0",
        "badc0de",
        "m3",
        deployed_at=1_700_000_100.0,
        previous_version="1.1.0",
        expected_score_shift=True,
    )
    return Topology(
        profile="test",
        port_offset=20000,
        load=True,
        releases={"scoring": RELEASE},
        instances=(
            Instance("scoring", 0, 28100, RELEASE, weight=3),
            Instance("scoring", 2, 28102, canary),
            Instance("features", 0, 28200, RELEASE),
        ),
    )


def test_topology_survives_a_round_trip_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    write_topology(path, _topology())

    assert read_topology(path) == _topology()
    assert json.loads(path.read_text())["releases"]["scoring"]["previous_version"] == "1.0.0"
    assert [i.release.expected_score_shift for i in read_topology(path).instances] == [
        False,
        True,
        False,
    ]


def test_a_topology_file_from_before_declared_shifts_reads_as_none_declared(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stack.json"
    write_topology(path, _topology())
    written = json.loads(path.read_text())
    for release in [*written["releases"].values(), *(i["release"] for i in written["instances"])]:
        del release["expected_score_shift"]
    path.write_text(json.dumps(written))

    topology = read_topology(path)

    assert topology is not None
    assert not any(i.release.expected_score_shift for i in topology.instances)
    assert topology.instances[1].release == replace(
        _topology().instances[1].release, expected_score_shift=False
    )


@pytest.mark.parametrize(("declared", "exported"), [(True, 1), (False, 0)])
def test_an_instance_exports_its_release_s_declared_shift(
    monkeypatch: pytest.MonkeyPatch, declared: bool, exported: int
) -> None:
    release = replace(RELEASE, expected_score_shift=declared)
    for name, value in stack._release_env(Instance("scoring", 0, 28100, release)).items():
        monkeypatch.setenv(name, value)
    app = Flask("scoring")
    load_config(app, "scoring", {}, {"LOG_FILE": ""})
    registry = CollectorRegistry()

    telemetry.init_app(app, "scoring", registry=registry, tracer_provider=TracerProvider())

    labels = {"version": "1.1.0", "model_version": "m2"}
    assert registry.get_sample_value("app_expected_score_shift", labels) == exported


def test_no_topology_file_means_no_topology(tmp_path: Path) -> None:
    assert read_topology(tmp_path / "stack.json") is None


def test_a_corrupt_topology_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text('{"profile": "test"}')

    with pytest.raises(ObslabError, match=f"^{path}: unreadable"):
        read_topology(path)


def test_next_index_never_reuses_an_instance_name() -> None:
    topology = _topology()

    assert topology.next_index("scoring") == 3
    assert topology.next_index("features") == 1
    assert topology.next_index("nothing") == 0
    assert [i.name for i in topology.instances_of("scoring")] == ["scoring-0", "scoring-2"]


def test_publish_points_nginx_and_prometheus_at_the_instances(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    layout.create()
    config = load_stack(port_offset=20000)
    topology = _topology()

    stack.publish_instances(config, topology, layout)
    shrunk = replace(topology, instances=topology.instances[1:])
    stack.publish_instances(config, shrunk, layout)

    targets = json.loads(layout.targets_file("scoring").read_text())
    assert [group["targets"] for group in targets] == [["127.0.0.1:28102"]]
    nginx = layout.nginx_config.read_text()
    assert "server 127.0.0.1:28102 weight=1;" in nginx
    assert "28100" not in nginx
    assert not list(layout.prometheus.glob("targets/*.partial"))


def test_token_is_generated_private_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OBSLAB_ONCALL_TOKEN", raising=False)
    path = tmp_path / "oncall.token"

    first = stack._token(path, "OBSLAB_ONCALL_TOKEN")

    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stack._token(path, "OBSLAB_ONCALL_TOKEN") == first


def test_token_from_the_environment_wins_and_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "oncall.token"
    path.write_text("old")
    monkeypatch.setenv("OBSLAB_ONCALL_TOKEN", "from-env")

    assert stack._token(path, "OBSLAB_ONCALL_TOKEN") == "from-env"
    assert path.read_text() == "from-env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_start_service_needs_a_running_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))

    with pytest.raises(ObslabError, match="the stack is not running"):
        stack.start_service("features")


def test_services_are_checked_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))

    with pytest.raises(ObslabError, match="unknown service 'feature'; known: features, scoring"):
        stack.stop_service("feature")
