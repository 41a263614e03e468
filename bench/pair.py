"""A scoring and a features instance under gunicorn, run as the native stack runs them.

Benchmarks start one pair per variant, each in its own state directory and on ports beside
the stack's instance ports (shifted by ``OBSLAB_PORT_OFFSET``), so a running lab is untouched.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import psutil

from obslab.errors import ObslabError
from obslab.processes import ProcessSpec, Supervisor, port_in_use
from obslab.stack import gunicorn_argv
from obslab.stackconfig import AppService, load_stack, port_offset_from_env

#: Pair ``slot`` listens on each service's instance port + this + slot.
PORT_SHIFT = 50
HEALTH_TIMEOUT = 60.0

# Only what a process needs to run: a variant's behaviour must come from its own settings,
# never from OTEL_* or OBSLAB_* variables of the shell that started the benchmark.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


class ServicePair:
    """Context manager: both services started and healthy inside, stopped on the way out."""

    def __init__(
        self,
        name: str,
        slot: int,
        home: Path,
        *,
        env: Mapping[str, str] | None = None,
        only: Mapping[str, Mapping[str, str]] | None = None,
        agent: bool = False,
        models_dir: Path | None = None,
    ) -> None:
        """``env`` is added to both services' environment, then ``only[service]`` to that
        service's (``scoring`` or ``features``); ``agent`` runs them under
        ``opentelemetry-instrument``. ``models_dir`` lets pairs share one trained model."""
        stack = load_stack(port_offset=port_offset_from_env())
        self.name = name
        self.home = home
        self._supervisor = Supervisor(home / "run")
        base = {key: os.environ[key] for key in _PASSED_ENV if key in os.environ}
        base |= {"OBSLAB_HOME": str(home), "OBSLAB_ADMIN_ENABLED": "false", **(env or {})}
        if models_dir is not None:
            base["OBSLAB_MODELS_DIR"] = str(models_dir)
        features_port = _port(stack.features, slot)
        scoring_port = _port(stack.scoring, slot)
        self.features_url = f"http://127.0.0.1:{features_port}"
        self.scoring_url = f"http://127.0.0.1:{scoring_port}"
        only = only or {}
        if unknown := sorted(set(only) - {"scoring", "features"}):
            raise ValueError(f"a pair runs scoring and features, not {', '.join(unknown)}")
        self._specs = [
            self._gunicorn(
                stack.features, features_port, {**base, **only.get("features", {})}, agent
            ),
            self._gunicorn(
                stack.scoring,
                scoring_port,
                {**base, "OBSLAB_FEATURES_URL": self.features_url, **only.get("scoring", {})},
                agent,
            ),
        ]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each service has used so far: its gunicorn master and
        workers, read from the kernel. Differences over a load run show where the work went."""
        used = {}
        for spec in self._specs:
            pid = self._supervisor.pid(spec.name)
            if pid is None:
                raise ObslabError(f"{spec.name} is not running; see {spec.log}")
            used[spec.name.removesuffix(f"-{self.name}")] = tree_cpu_seconds(pid)
        return used

    def _gunicorn(
        self, service: AppService, port: int, env: dict[str, str], agent: bool
    ) -> ProcessSpec:
        name = f"{service.name}-{self.name}"
        argv = gunicorn_argv(service, port)
        if agent:
            argv = [_agent_command(), *argv]
        return ProcessSpec(
            name=name,
            argv=argv,
            env={**env, "OBSLAB_INSTANCE": name},
            log=self.home / "logs" / f"{name}.log",
            port=port,
            health_url=f"http://127.0.0.1:{port}{service.health}",
        )

    def __enter__(self) -> ServicePair:
        for spec in self._specs:
            if port_in_use(spec.port):
                raise ObslabError(
                    f"port {spec.port} for {spec.name} is in use; "
                    f"shift the benchmark's ports with OBSLAB_PORT_OFFSET"
                )
        try:
            for spec in self._specs:
                self._supervisor.start(spec)
                self._supervisor.wait_healthy([spec], HEALTH_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._supervisor.stop([spec.name for spec in self._specs])


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and of its descendants still running."""
    root = psutil.Process(pid)
    used = 0.0
    for process in (root, *root.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:  # a worker that exited meanwhile
            continue
        used += times.user + times.system
    return used


def _port(service: AppService, slot: int) -> int:
    # stackconfig gives every load-balanced service (scoring, features) an instance port.
    return (service.instance_port or service.port) + PORT_SHIFT + slot


def _agent_command() -> str:
    command = Path(sys.executable).with_name("opentelemetry-instrument")
    if not command.exists():
        raise ObslabError(
            f"{command} is missing; install the project again (`make setup`), "
            f"it depends on opentelemetry-distro"
        )
    return str(command)
