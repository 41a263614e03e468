"""The supervisor behind `obslab up/down`, on real detached processes."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from obslab.errors import ObslabError
from obslab.processes import ProcessSpec, Supervisor, log_tail, port_in_use


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    supervisor = Supervisor(tmp_path / "run")
    yield supervisor
    supervisor.stop(supervisor.names(), grace=1)


def _spec(tmp_path: Path, name: str, code: str) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-c", code],
        env={"PATH": os.environ["PATH"]},
        log=tmp_path / "logs" / f"{name}.log",
    )


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"{pid} still running"
        time.sleep(0.05)


def test_started_process_runs_detached_with_its_output_in_its_log(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    spec = _spec(tmp_path, "sleeper", "import time; print('hello', flush=True); time.sleep(60)")

    pid = supervisor.start(spec)
    supervisor.wait_healthy([spec], timeout=5)

    assert supervisor.pid("sleeper") == pid
    assert os.getsid(pid) == pid, "it leads its own session"
    deadline = time.monotonic() + 5
    while "hello" not in log_tail(spec.log):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_stop_terminates_and_removes_the_pid_file(tmp_path: Path, supervisor: Supervisor) -> None:
    pid = supervisor.start(_spec(tmp_path, "sleeper", "import time; time.sleep(60)"))

    assert supervisor.stop(["sleeper"]) == ["sleeper"]

    assert not psutil.pid_exists(pid)
    assert supervisor.pid("sleeper") is None
    assert supervisor.names() == []


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path, supervisor: Supervisor) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    spec = _spec(tmp_path, "stubborn", code)
    pid = supervisor.start(spec)
    while "ready" not in log_tail(spec.log):
        time.sleep(0.05)

    supervisor.stop(["stubborn"], grace=0.5)

    assert not psutil.pid_exists(pid)


def test_a_dead_process_is_not_running(tmp_path: Path, supervisor: Supervisor) -> None:
    pid = supervisor.start(_spec(tmp_path, "brief", "pass"))
    _wait_gone(pid)

    assert supervisor.pid("brief") is None
    assert supervisor.names() == ["brief"], "the pid file stays until stop() clears it"


def test_a_pid_older_than_its_pid_file_is_a_reused_pid(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    supervisor.run_dir.mkdir(parents=True)
    pid_file = supervisor.pid_file("ghost")
    pid_file.write_text(f"{os.getpid()}\n")
    # Written long before this (live) process started: the pid now belongs to someone else.
    os.utime(pid_file, (0, 0))

    assert supervisor.pid("ghost") is None
    assert supervisor.stop(["ghost"]) == []
    assert psutil.pid_exists(os.getpid())


def test_wait_healthy_reports_an_early_exit_with_the_log_tail(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    spec = replace(
        _spec(tmp_path, "crasher", "import sys; sys.exit('cannot open the database')"),
        health_url="http://127.0.0.1:1/healthz",
    )
    supervisor.start(spec)

    with pytest.raises(ObslabError) as error:
        supervisor.wait_healthy([spec], timeout=10)

    assert str(error.value).startswith(f"crasher exited while starting; last lines of {spec.log}")
    assert "cannot open the database" in str(error.value)


def test_wait_healthy_times_out_naming_the_url(tmp_path: Path, supervisor: Supervisor) -> None:
    spec = ProcessSpec(
        name="deaf",
        argv=[sys.executable, "-c", "import time; time.sleep(60)"],
        env={},
        log=tmp_path / "deaf.log",
        port=1,
        health_url="http://127.0.0.1:1/healthz",
    )
    supervisor.start(spec)

    with pytest.raises(ObslabError, match=r"^deaf not healthy at http://127.0.0.1:1/healthz"):
        supervisor.wait_healthy([spec], timeout=0.3)


def test_port_in_use_sees_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use(port)

    assert not port_in_use(port)
