"""Real servers started by unit tests: a free port, a process group, a readiness poll."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TypeVar

import requests

STARTUP_TIMEOUT = 30.0
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = STARTUP_TIMEOUT) -> T:
    """Poll until ``probe`` returns something truthy; the timeout only bounds a broken run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := probe():
            return result
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def succeeds_in_fork(child: Callable[[], bool], timeout: float = STARTUP_TIMEOUT) -> bool:
    """Whether ``child`` returns true when run in a forked copy of this process, as a gunicorn
    worker is forked from its master. A traceback in the child is printed to stderr."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if child() else 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the forked child did not finish in {timeout:.0f} s")
        time.sleep(0.01)


def threads_named(name: str, besides: Collection[threading.Thread] = ()) -> list[threading.Thread]:
    """This process's live threads called ``name``, other than those in ``besides``."""
    return [
        thread for thread in threading.enumerate() if thread.name == name and thread not in besides
    ]


def clean_environ() -> dict[str, str]:
    """The test run's environment without ``OBSLAB_`` and ``OTEL_`` settings: a service a
    test starts takes its settings from the test alone."""
    return {
        key: value for key, value in os.environ.items() if not key.startswith(("OBSLAB_", "OTEL_"))
    }


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


class Process:
    """A server in its own process group, so a signal reaches the gunicorn worker too; its
    output goes to ``<cwd>/<name>.log``."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], cwd: Path, ready_url: str
    ) -> None:
        self.log = cwd / f"{name}.log"
        with self.log.open("wb") as output:
            self.popen = subprocess.Popen(
                command,
                env=env,
                cwd=cwd,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for(f"{name} at {ready_url}", lambda: self._ready(ready_url))
        except BaseException:
            self.kill()
            raise

    def _ready(self, url: str) -> bool:
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.popen.args} exited:\n{self.log.read_text()}")
        return answers(url)

    def kill(self) -> None:
        """SIGKILL: a crash."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: a clean stop, so the process flushes what it holds."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signum)
        self.popen.wait(timeout=30)
