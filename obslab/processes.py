"""Start, watch and stop detached processes, remembered by pid files.

Each process runs in its own session with stdout and stderr appended to its log, so the
command that started it can exit. A pid file names the process; it counts as running only
while that pid is alive, not a zombie, and no younger than the pid file (a pid the system
handed to another process after a reboot or crash must never be signalled).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from obslab.errors import ObslabError

# A start time is derived from the boot time, so it moves when the wall clock is stepped;
# a reused pid belongs to a process started long after its pid file was written.
_START_TIME_SLACK = 30.0
_POLL = 0.1


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one process and how to tell that it is healthy."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log: Path
    port: int | None = None
    health_url: str | None = None
    extra_ports: tuple[int, ...] = ()
    cwd: Path | None = None

    @property
    def ports(self) -> tuple[int, ...]:
        return ((self.port,) if self.port is not None else ()) + self.extra_ports

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://127.0.0.1:{self.port}"


def port_in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (a bind with SO_REUSEADDR fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def probe(url: str, timeout: float = 1.0) -> bool:
    """One health check: any 2xx answer within ``timeout``."""
    try:
        return requests.get(url, timeout=timeout).ok
    except requests.RequestException:
        return False


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 16 * 1024))
            text = log.read().decode(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class Supervisor:
    """The processes whose pid files live in ``run_dir``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def names(self) -> list[str]:
        """Every process with a pid file, running or not."""
        return sorted(path.stem for path in self.run_dir.glob("*.pid"))

    def pid(self, name: str) -> int | None:
        """The pid of ``name`` if it is running, else None."""
        path = self.pid_file(name)
        try:
            pid = int(path.read_text())
            written = path.stat().st_mtime
        except (FileNotFoundError, ValueError):
            return None
        _reap(pid)
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            if process.create_time() > written + _START_TIME_SLACK:
                return None
        except psutil.NoSuchProcess:
            return None
        return pid

    def start(self, spec: ProcessSpec) -> int:
        """Start ``spec`` detached and record its pid; return the pid."""
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        with spec.log.open("ab") as log:
            try:
                process = subprocess.Popen(
                    spec.argv,
                    env=dict(spec.env),
                    cwd=spec.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ObslabError(f"cannot start {spec.name} ({spec.argv[0]}): {exc}") from None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        partial = self.pid_file(spec.name).with_suffix(".partial")
        partial.write_text(f"{process.pid}\n")
        os.replace(partial, self.pid_file(spec.name))
        # The process outlives this command on purpose: mark the Popen done so that collecting
        # it neither warns "still running" nor queues a wait; `pid()` reaps an early death.
        process.returncode = 0
        return process.pid

    def wait_healthy(self, specs: Iterable[ProcessSpec], timeout: float) -> None:
        """Return once every spec answers its health check; raise naming the first failure."""
        pending = list(specs)
        deadline = time.monotonic() + timeout
        while pending:
            for spec in list(pending):
                if self.pid(spec.name) is None:
                    raise ObslabError(
                        f"{spec.name} exited while starting; last lines of {spec.log}:\n"
                        f"{log_tail(spec.log)}"
                    )
                if spec.health_url is None or probe(spec.health_url):
                    pending.remove(spec)
            if pending and time.monotonic() > deadline:
                spec = pending[0]
                raise ObslabError(
                    f"{spec.name} not healthy at {spec.health_url} after {timeout:.0f}s; "
                    f"last lines of {spec.log}:\n{log_tail(spec.log)}"
                )
            if pending:
                time.sleep(_POLL)

    def stop(self, names: Iterable[str], grace: float = 10.0) -> list[str]:
        """SIGTERM each running process, SIGKILL its process group after ``grace`` seconds.

        Removes the pid files of all ``names``; returns the names that were running.
        """
        running: dict[str, psutil.Process] = {}
        for name in names:
            pid = self.pid(name)
            if pid is not None:
                try:
                    process = psutil.Process(pid)
                    process.terminate()
                    running[name] = process
                except psutil.NoSuchProcess:
                    pass
            self.pid_file(name).unlink(missing_ok=True)
        # wait_procs also reaps the ones that are children of this process.
        _, stubborn = psutil.wait_procs(list(running.values()), timeout=grace)
        for process in stubborn:
            # Every process leads its own session, so its group holds all it started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        psutil.wait_procs(stubborn, timeout=grace)
        return list(running)


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is a dead child of this process (else no-op)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
