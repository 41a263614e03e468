"""``obslab releases``, ``obslab deploy`` and ``obslab deployments`` as a user runs them.

Every deploy here is refused or a no-op before any process starts; real deploys run in
``tests/live/test_deploy.py``.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from obslab import deploy
from obslab.cli import main
from obslab.history import DeployHistory, DeployRecord, history_file
from obslab.topology import Instance, Release, Topology, write_topology

INITIAL = Release("1.0.0", "unknown", "m1", deployed_at=1_700_000_000.0)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))
    return tmp_path


def _running(home: Path, *scoring: Instance, release: Release = INITIAL) -> None:
    """A stack.json as `obslab up` writes it (no process runs)."""
    instances = scoring or (
        Instance("scoring", 0, 8100, release),
        Instance("scoring", 1, 8101, release),
    )
    write_topology(
        home / "stack.json",
        Topology("test", 0, False, {"scoring": release}, tuple(instances)),
    )


def test_releases_json_lists_each_release_with_its_behaviour(capsys) -> None:
    assert main(["releases", "--json"]) == 0

    releases = json.loads(capsys.readouterr().out)
    assert all(set(r) == {"version", "model_version", "behaviour", "change"} for r in releases)
    assert {r["behaviour"] for r in releases} == {"good", "errors", "slow", "miscalibrated"}
    assert {"version": "1.4.0", "model_version": "m3"}.items() <= releases[-1].items()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["deploy", "9.9.9"], "unknown release '9.9.9'; known: 1.0.0, 1.1.0"),
        (["deploy", "1.1.0", "--model", "m9"], "unknown model 'm9'; known: m1, m2, m3"),
        (["deploy", "1.1.0", "--canary", "100"], "--canary: expected a percentage from 1 to 99"),
        (["deploy", "1.1.0", "--commit", "HEAD"], "--commit: expected 7 to 40 lowercase hex"),
        (["deploy", "rollback", "--canary", "10"], "--canary: only for a deploy of a VERSION"),
        (["deploy", "promote", "--expect-shift"], "--expect-shift: only for a deploy of a VERSION"),
        (["deploy", "1.1.0"], "no stack runs from"),
    ],
)
def test_a_deploy_that_cannot_happen_says_why(home: Path, capsys, argv, message) -> None:
    assert main(argv) == 1

    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "declared"), [([], False), (["--expect-shift"], True)])
def test_expect_shift_reaches_the_deploy(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], declared: bool
) -> None:
    calls = []
    monkeypatch.setattr(deploy, "deploy", lambda *args, **kwargs: calls.append((args, kwargs)))

    assert main(["deploy", "1.4.0", "--canary", "10", *argv]) == 0

    assert calls == [
        (("1.4.0",), {"model": None, "commit": None, "canary": 10, "expect_shift": declared})
    ]


def test_deploying_the_running_release_is_a_no_op(home: Path, capsys) -> None:
    _running(home)

    assert main(["deploy", "1.0.0"]) == 0

    assert "scoring already runs 1.0.0 (model m1); nothing to deploy" in capsys.readouterr().out
    assert DeployHistory(history_file()).records() == []


def test_a_shift_is_declared_by_a_deploy_that_starts_a_release(home: Path, capsys) -> None:
    _running(home)

    assert main(["deploy", "1.0.0", "--expect-shift"]) == 0

    out = capsys.readouterr().out
    assert "nothing to deploy; --expect-shift declares the shift of a deploy that starts" in out
    assert DeployHistory(history_file()).records() == []


def test_a_deploy_waits_for_no_other(home: Path, capsys) -> None:
    _running(home)
    with (home / "deploy.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("deploy 1.2.0, pid 4242, by ada\n")
        held.flush()

        assert main(["deploy", "1.1.0"]) == 1

    err = capsys.readouterr().err
    assert "another deploy is in progress (deploy 1.2.0, pid 4242, by ada)" in err


def test_promote_needs_a_canary(home: Path, capsys) -> None:
    _running(home)

    assert main(["deploy", "promote"]) == 1

    assert "no canary to promote: every scoring instance runs 1.0.0" in capsys.readouterr().err


def test_the_first_release_has_nothing_to_roll_back_to(home: Path, capsys) -> None:
    _running(home)

    assert main(["deploy", "rollback"]) == 1

    assert "nothing to roll back to: scoring 1.0.0 is the first release" in capsys.readouterr().err


def test_a_new_deploy_waits_for_the_canary_to_be_decided(home: Path, capsys) -> None:
    canary = Release("1.2.0", "4acc7d8", "m2", 1_700_000_100.0, previous_version="1.0.0")
    _running(
        home,
        Instance("scoring", 0, 8100, INITIAL, weight=9),
        Instance("scoring", 1, 8101, INITIAL, weight=9),
        Instance("scoring", 2, 8102, canary, weight=2),
    )

    assert main(["deploy", "1.1.0"]) == 1

    err = capsys.readouterr().err
    assert "scoring runs 1.2.0 beside 1.0.0" in err
    assert "`obslab deploy promote` or `obslab deploy rollback` first" in err


def test_deployments_lists_the_history_newest_first(home: Path, capsys) -> None:
    history = DeployHistory(history_file())
    history.record(
        DeployRecord("1.1.0", "1.0.0", "528cf42", "m2", 1_700_000_000.0, "ada", "rolling")
    )
    history.record(
        DeployRecord("1.2.0", "1.1.0", "4acc7d8", "m2", 1_700_000_060.0, "ada", "canary")
    )

    assert main(["deployments", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [(e["version"], e["kind"]) for e in entries] == [
        ("1.2.0", "canary"),
        ("1.1.0", "rolling"),
    ]

    assert main(["deployments"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "TIME",
        "(UTC)",
        "KIND",
        "VERSION",
        "PREVIOUS",
        "COMMIT",
        "MODEL",
        "WHO",
    ]
    assert lines[1].split()[2:] == ["canary", "1.2.0", "1.1.0", "4acc7d8", "m2", "ada"]
