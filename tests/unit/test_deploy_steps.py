"""Deploys, promotes and rollbacks of scoring against stand-in processes: which release each
started instance runs, and what ``stack.json`` and the history keep.

No process starts: the stack's start, stop and publish steps are replaced by ones that only
note what was started. Real deploys run in ``tests/live/test_deploy.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import state_dir
from obslab import stack
from obslab.cli import main
from obslab.history import DeployHistory, history_file
from obslab.layout import StateLayout
from obslab.topology import Instance, Release, Topology, read_topology, write_topology

INITIAL = Release("1.0.0", "unknown", "m1", deployed_at=1_700_000_000.0)


@pytest.fixture
def started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Instance]:
    """A two-instance scoring in ``stack.json``, and the instances deploys start, in order."""
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))
    monkeypatch.delenv("GRAFANA_URL", raising=False)
    instances = (Instance("scoring", 0, 8100, INITIAL), Instance("scoring", 1, 8101, INITIAL))
    write_topology(
        tmp_path / "stack.json", Topology("test", 0, False, {"scoring": INITIAL}, instances)
    )
    noted: list[Instance] = []
    monkeypatch.setattr(stack, "start_instance", lambda *args: noted.append(args[-1]))
    monkeypatch.setattr(stack, "stop_instance", lambda *args: None)
    monkeypatch.setattr(stack, "publish_and_settle", lambda *args: None)
    return noted


def running() -> list[Release]:
    """The release of each scoring instance, as ``stack.json`` has them."""
    topology = read_topology(StateLayout(state_dir()).stack_file)
    assert topology is not None
    return [instance.release for instance in topology.instances_of("scoring")]


def declared() -> list[tuple[str, str, bool]]:
    """Each deploy of the history: kind, version, and whether it declared its shift."""
    records = DeployHistory(history_file()).records()
    return [(r.kind, r.version, r.expected_score_shift) for r in records]


def test_a_rollback_does_not_keep_the_shift_the_rolled_back_release_declared(
    started: list[Instance],
) -> None:
    assert main(["deploy", "1.4.0", "--expect-shift"]) == 0
    assert [i.release.expected_score_shift for i in started] == [True, True]

    assert main(["deploy", "rollback"]) == 0

    assert [(r.version, r.expected_score_shift) for r in running()] == [("1.0.0", False)] * 2
    assert declared() == [("rolling", "1.4.0", True), ("rollback", "1.0.0", False)]


def test_a_later_deploy_declares_its_own_and_a_rollback_restores_the_one_recorded(
    started: list[Instance],
) -> None:
    assert main(["deploy", "1.4.0", "--expect-shift"]) == 0
    assert main(["deploy", "1.3.0"]) == 0
    assert not any(r.expected_score_shift for r in running())

    assert main(["deploy", "rollback"]) == 0

    assert [(r.version, r.expected_score_shift) for r in running()] == [("1.4.0", True)] * 2
    assert declared()[-1] == ("rollback", "1.4.0", True)


def test_a_canary_declares_its_shift_alone_and_a_promote_keeps_it(
    started: list[Instance],
) -> None:
    assert main(["deploy", "1.4.0", "--canary", "10", "--expect-shift"]) == 0
    assert [(r.version, r.expected_score_shift) for r in running()] == [
        ("1.0.0", False),
        ("1.0.0", False),
        ("1.4.0", True),
    ]

    assert main(["deploy", "promote"]) == 0

    # The canary stays; the two old instances are replaced.
    assert [(r.version, r.expected_score_shift) for r in running()] == [("1.4.0", True)] * 3
    assert declared() == [("canary", "1.4.0", True), ("promote", "1.4.0", True)]


def test_a_canary_rollback_leaves_the_old_release_as_it_ran(started: list[Instance]) -> None:
    assert main(["deploy", "1.4.0", "--canary", "10", "--expect-shift"]) == 0

    assert main(["deploy", "rollback"]) == 0

    assert running() == [INITIAL, INITIAL]
    assert declared() == [("canary", "1.4.0", True), ("rollback", "1.0.0", False)]
