"""The obslab command line: argument parsing, output shapes and one-line errors."""

from __future__ import annotations

import json
import shlex
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from obslab.cli import TUTORIAL, build_parser, main, next_steps
from obslab.stackconfig import REPO_ROOT, load_stack

# Far from the default ports and from the live suite's offset, so a running stack never answers.
OFFSET = 31000


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("OBSLAB_HOME", str(home))
    monkeypatch.setenv("OBSLAB_PORT_OFFSET", str(OFFSET))
    return home


@pytest.fixture
def busy_port(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A listener on features-0's port, as another program would hold it.

    The kernel picks the port, and the offset follows it: a fixed one can fall on a port
    an earlier test's connection still holds in TIME_WAIT."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        monkeypatch.setenv("OBSLAB_PORT_OFFSET", str(port - load_stack().features.instance_port))
        yield port


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bogus"]) == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_up_accepts_only_the_demo_and_test_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--profile", "prod"]) == 2
    assert "argument --profile: invalid choice: 'prod'" in capsys.readouterr().err


def test_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "status" in capsys.readouterr().out


def test_status_json_lists_every_process_stopped_when_nothing_runs(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--json"]) == 0

    entries = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in entries] == [
        "features-0",
        "features-1",
        "scoring-0",
        "scoring-1",
        "nginx",
        "oncall",
        "alertmanager",
        "prometheus",
    ]
    for entry in entries:
        assert set(entry) == {"name", "pid", "port", "url", "healthy"}
        assert entry["pid"] is None
        assert entry["healthy"] is False
        assert entry["url"] == f"http://127.0.0.1:{entry['port']}"
    assert entries[0]["port"] == 8200 + OFFSET
    assert not home.exists(), "status must not create state"


def test_status_table_marks_stopped_processes(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0

    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "PID", "PORT", "HEALTHY", "URL"]
    assert rows[0].split() == [
        "features-0",
        "-",
        str(8200 + OFFSET),
        "no",
        f"http://127.0.0.1:{8200 + OFFSET}",
    ]


def test_down_with_nothing_running_says_so(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["down"]) == 0
    assert capsys.readouterr().out == "nothing was running\n"


def test_bad_port_offset_is_one_line_naming_the_variable(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OBSLAB_PORT_OFFSET", "ten")

    assert main(["up", "--profile", "test"]) == 1

    err = capsys.readouterr().err
    assert err == "obslab up: OBSLAB_PORT_OFFSET: expected an integer, got 'ten'\n"


def test_busy_port_names_the_port_and_the_process(
    home: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "--profile", "test"]) == 1

    err = capsys.readouterr().err
    assert err.startswith(f"obslab up: port {busy_port} (for features-0) is already in use")
    assert err.count("\n") == 1
    assert not list((home / "run").glob("*.pid")), "nothing may start"


def test_missing_binary_names_it_and_its_debian_package(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    assert main(["up", "--profile", "test"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("obslab up: prometheus-alertmanager not found on PATH")
    assert "install the Debian package prometheus-alertmanager" in err
    assert not list((home / "run").glob("*.pid")), "nothing may start"


def test_pages_without_a_receiver_is_one_line_naming_the_url(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pages"]) == 1

    err = capsys.readouterr().err
    assert err == (
        f"obslab pages: nothing answers at http://127.0.0.1:{8002 + OFFSET}; "
        "is the stack up (`obslab up`)?\n"
    )


def test_up_ends_with_three_next_steps_that_are_real_commands() -> None:
    text = next_steps("obslab")

    lines = text.splitlines()
    assert lines[0] == "Try next:"
    commands = [line.split(". ", 1)[1] for line in lines if line.startswith("  ") and ". " in line]
    assert len(commands) == 3
    for command in commands:
        # Each parses as the CLI would take it, so a renamed command or flag fails here.
        argv = shlex.split(command)
        assert argv[0] == "obslab"
        build_parser().parse_args(argv[1:])
    assert lines[-1].endswith(TUTORIAL)
    assert (REPO_ROOT / TUTORIAL).is_file()


def test_next_steps_call_obslab_the_way_the_user_can() -> None:
    text = next_steps(".venv/bin/obslab")

    assert "  1. .venv/bin/obslab fault inject" in text
    assert "`.venv/bin/obslab pages`" in text
    assert "`obslab" not in text
