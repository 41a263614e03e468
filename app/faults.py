"""Faults a service can suffer on request: what each one does, and which are active now.

The state lives in the process only, so a restart (or a deploy) ends every fault, and each
fault may carry an expiry that the service enforces itself. Request-path faults are checked
by the views through ``FaultState.armed`` first, a plain attribute, so a service without a
fault pays one attribute read per request. A background fault (the leak) runs in a daemon
thread that stops as soon as its fault is no longer the active one.

A ``hidden`` fault (a drill) behaves the same but is never logged and never listed.

Faults live in three layers, each in one module: what a running service does under a fault
and which parameters it takes (here), the lab's catalogue of every fault with the alerts it
must raise and how the CLI applies it (``obslab.faults``), and the command line
(``obslab.fault_cli``).
"""

from __future__ import annotations

import random
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog

from app.errors import RequestError


@dataclass(frozen=True)
class Param:
    """One numeric parameter of a fault, with its default and its allowed range."""

    default: float
    minimum: float
    maximum: float
    help: str


@dataclass(frozen=True)
class FaultSpec:
    """A fault the service ``service`` implements, and the parameters it takes."""

    name: str
    service: str
    params: Mapping[str, Param]

    def resolve(self, given: Mapping[str, object]) -> dict[str, float]:
        """The defaults overlaid with ``given``; raises a 400 naming the bad parameter."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise RequestError(
                400,
                f"{self.name} takes {', '.join(self.params) or 'no parameters'}",
                field=f"params.{unknown[0]}",
            )
        resolved = {}
        for key, param in self.params.items():
            value = given.get(key, param.default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RequestError(400, "must be a number", field=f"params.{key}")
            if not param.minimum <= value <= param.maximum:
                raise RequestError(
                    400,
                    f"must be between {param.minimum:g} and {param.maximum:g}",
                    field=f"params.{key}",
                )
            resolved[key] = float(value)
        return resolved


_RATE = Param(1.0, 0.0, 1.0, "share of requests affected")

#: Every fault implemented inside a service. The CLI's catalogue (``obslab.faults``) adds the
#: faults that come from deploys and from the traffic.
SERVICE_FAULTS: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec(
            "slow-dependency",
            "features",
            {
                # Beyond scoring's 2 s read timeout, so its calls time out rather than crawl.
                "delay_ms": Param(2500, 0, 30_000, "how long features waits before answering"),
                "rate": _RATE,
            },
        ),
        FaultSpec("dependency-down", "features", {"rate": _RATE}),
        FaultSpec("error-burst", "scoring", {"rate": Param(0.5, 0.0, 1.0, "share of 500s")}),
        FaultSpec(
            "memory-leak",
            "scoring",
            {
                "mb_per_second": Param(2, 0.1, 64, "how fast the leaking cache grows"),
                # The story is "without bound"; the cap only keeps the lab machine alive.
                "max_mb": Param(1024, 1, 8192, "where the cache stops growing"),
            },
        ),
        FaultSpec(
            "cpu-hog",
            "scoring",
            {"cpu_ms": Param(300, 1, 5000, "CPU time each prediction burns in inference")},
        ),
    )
}


@dataclass(frozen=True)
class ActiveFault:
    name: str
    params: dict[str, float]
    expires_at: float | None  # on the state's monotonic clock
    hidden: bool = False
    injected_at: float = field(default_factory=time.time)

    def remaining(self, now: float) -> float | None:
        return None if self.expires_at is None else max(0.0, self.expires_at - now)


class FaultState:
    """The faults active in one service process; safe to use from any thread."""

    def __init__(
        self,
        service: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self.service = service
        self.specs = {
            name: spec for name, spec in SERVICE_FAULTS.items() if spec.service == service
        }
        #: False while no fault is active: the one check the request path makes.
        self.armed = False
        self._clock, self._chance = clock, chance
        self._faults: dict[str, ActiveFault] = {}
        self._lock = threading.Lock()
        self._log = structlog.get_logger("obslab.faults")

    def inject(
        self,
        name: str,
        params: Mapping[str, object] | None = None,
        *,
        duration: float | None = None,
        hidden: bool = False,
    ) -> ActiveFault:
        """Activate (or replace) fault ``name``; raises a 400 ``RequestError`` on bad input."""
        spec = self.specs.get(name)
        if spec is None:
            raise RequestError(404, f"{self.service} has no fault {name!r}", field="name")
        resolved = spec.resolve(params or {})
        expires_at = None if duration is None else self._clock() + duration
        fault = ActiveFault(name, resolved, expires_at, hidden)
        with self._lock:
            self._faults[name] = fault
            self.armed = True
        worker = _WORKERS.get(name)
        if worker is not None:
            threading.Thread(
                target=worker, args=(self, fault), name=f"fault-{name}", daemon=True
            ).start()
        if not hidden:
            self._log.warning("fault_injected", fault=name, params=resolved, duration_s=duration)
        return fault

    def clear(self, name: str | None = None) -> list[str]:
        """End fault ``name``, or every fault; return the names of the visible ones ended."""
        with self._lock:
            names = [name] if name is not None else list(self._faults)
            ended = [self._faults.pop(n) for n in names if n in self._faults]
            self.armed = bool(self._faults)
        visible = [fault.name for fault in ended if not fault.hidden]
        for fault_name in visible:
            self._log.warning("fault_cleared", fault=fault_name)
        return visible

    def get(self, name: str) -> ActiveFault | None:
        """Fault ``name`` if it is active and has not expired."""
        with self._lock:
            fault = self._faults.get(name)
            if fault is None or fault.expires_at is None or fault.expires_at > self._clock():
                return fault
            del self._faults[name]
            self.armed = bool(self._faults)
        if not fault.hidden:
            self._log.warning("fault_expired", fault=name)
        return None

    def active(self) -> list[ActiveFault]:
        """The visible active faults; hidden ones (drills) are never listed."""
        with self._lock:
            names = list(self._faults)
        return [f for f in map(self.get, names) if f is not None and not f.hidden]

    def remaining(self, fault: ActiveFault) -> float | None:
        return fault.remaining(self._clock())

    def strikes(self, name: str) -> bool:
        """Whether fault ``name`` affects this request (drawn at its ``rate``)."""
        fault = self.get(name)
        return fault is not None and self._chance() < fault.params["rate"]

    def is_current(self, fault: ActiveFault) -> bool:
        """Whether ``fault`` is still the active fault of its name (a worker's loop test)."""
        return self.get(fault.name) is fault


def before_features_lookup(state: FaultState, caller: socket.socket | None = None) -> None:
    """The features service's faults: answer slowly, or not at all.

    ``caller`` is the request's connection, when the server exposes it (gunicorn does, as
    ``gunicorn.socket``): a slow answer stops waiting as soon as the caller hangs up.
    """
    if state.strikes("dependency-down"):
        raise RequestError(503, "service unavailable")
    slow = state.get("slow-dependency")
    if slow is not None and state.strikes("slow-dependency"):
        wait_unless_hung_up(slow.params["delay_ms"] / 1000, caller)


def wait_unless_hung_up(seconds: float, caller: socket.socket | None) -> None:
    """Sleep ``seconds``, or until ``caller`` closes its end of the connection.

    An answer nobody waits for would hold a request thread for nothing. Scoring gives up
    after its read timeout, sooner than the default delay, and the requests still queued
    behind the held threads (the admin API's among them, so the fault could not be cleared)
    then waited for minutes.
    """
    if caller is None:
        time.sleep(seconds)
        return
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([caller], [], [], left)
        if not readable:
            continue
        if _hung_up(caller):
            return
        # The caller sent more (a pipelined request): nothing more to watch for.
        time.sleep(max(0.0, deadline - time.monotonic()))
        return


def _hung_up(connection: socket.socket) -> bool:
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset by the peer
        return True


def before_predict(state: FaultState) -> None:
    """The scoring service's request-path fault: a share of predictions fail."""
    if state.strikes("error-burst"):
        raise RequestError(500, "internal error")


def during_inference(state: FaultState) -> None:
    """The scoring service's inference-step fault: every prediction burns CPU."""
    hog = state.get("cpu-hog")
    if hog is not None:
        burn_cpu(hog.params["cpu_ms"] / 1000)


def burn_cpu(seconds: float) -> None:
    """Spin in pure Python until this thread has used ``seconds`` of CPU.

    Pure Python holds the interpreter between switch intervals, so the other request threads
    of the process queue for it as they would behind real CPU-bound work; and counting the
    thread's own CPU time, not the clock, makes each prediction cost the same however many
    share the process.
    """
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


_TICK = 0.25


def _leak(state: FaultState, fault: ActiveFault) -> None:
    # Filled bytes, not bytearray(n): untouched pages would never become resident.
    cache: list[bytes] = []
    chunk = int(fault.params["mb_per_second"] * _TICK * 2**20)
    cap = int(fault.params["max_mb"] * 2**20)
    while state.is_current(fault):
        if len(cache) * chunk < cap:
            cache.append(b"\x01" * chunk)
        time.sleep(_TICK)


_WORKERS: dict[str, Callable[[FaultState, ActiveFault], None]] = {
    "memory-leak": _leak,
}
