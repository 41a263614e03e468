"""A native stack of the benchmarks' own: fresh state, shifted ports, optional traffic."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from loadgen.profile import Profile
from obslab import stack as native
from obslab.errors import ObslabError
from obslab.stackconfig import ConfigError, load_stack, port_offset_from_env

#: The benchmark's stacks run this far above the user's port offset: beside a user's stack,
#: the live suite's (28000-29093) and the benchmark pairs (``bench.pair``), and below the
#: kernel's ephemeral ports (32768-60999 on Linux), which any outgoing connection may hold.
PORT_SHIFT = 22000
#: Where Linux keeps its ephemeral port range.
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Requests a second of background traffic, as the live suite sends.
LOAD_RATE = 20.0


@dataclass(frozen=True)
class Lab:
    """A running native stack: its state directory and front doors."""

    home: Path
    urls: Mapping[str, str]

    @property
    def profile_file(self) -> Path:
        return self.home / "load" / "profile.json"

    def query(self, expr: str) -> float:
        """The value of the instant query ``expr``, which must give one sample."""
        response = requests.get(
            f"{self.urls['prometheus']}/api/v1/query", params={"query": expr}, timeout=5
        )
        response.raise_for_status()
        result = response.json()["data"]["result"]
        if len(result) != 1:
            raise ObslabError(f"{expr} gave {len(result)} samples, not one")
        return float(result[0]["value"][1])

    def firing(self) -> list[dict]:
        """Alerts firing in Prometheus now."""
        response = requests.get(f"{self.urls['prometheus']}/api/v1/alerts", timeout=5)
        response.raise_for_status()
        return [a for a in response.json()["data"]["alerts"] if a["state"] == "firing"]


def shifted_port_offset(ephemeral: range | None = None) -> int:
    """The port offset of the benchmark's stacks: the user's plus :data:`PORT_SHIFT`, checked
    against stack.yaml and against the kernel's ephemeral ports (``ephemeral``, read from
    :data:`EPHEMERAL_RANGE_FILE` when None) before anything starts."""
    user = port_offset_from_env()
    try:
        stack = load_stack(port_offset=user + PORT_SHIFT)
    except ConfigError as error:
        raise ConfigError(
            f"benchmark stacks run {PORT_SHIFT} above OBSLAB_PORT_OFFSET ({user}), "
            f"so lower it: {error}"
        ) from None
    ephemeral = ephemeral_ports() if ephemeral is None else ephemeral
    taken = [(key, port) for key, port in stack.ports() if port in ephemeral]
    if taken:
        key, port = taken[0]
        raise ConfigError(
            f"benchmark stacks run {PORT_SHIFT} above OBSLAB_PORT_OFFSET ({user}), which puts "
            f"{key} on port {port}, among the kernel's ephemeral ports "
            f"{ephemeral.start}-{ephemeral.stop - 1} ({EPHEMERAL_RANGE_FILE}) that any outgoing "
            f"connection may hold; lower OBSLAB_PORT_OFFSET"
        )
    return user + PORT_SHIFT


def ephemeral_ports() -> range:
    """The ports the kernel hands to outgoing connections (none where it does not say)."""
    try:
        low, high = map(int, EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return range(0)
    return range(low, high + 1)


@contextlib.contextmanager
def native_lab(profile: str, *, load_rate: float | None = LOAD_RATE) -> Iterator[Lab]:
    """A fresh native stack in a temporary state directory on shifted ports, with Locust at
    ``load_rate`` (none when None); everything stopped and removed on the way out.

    ``OBSLAB_HOME`` and ``OBSLAB_PORT_OFFSET`` point at it inside, as the CLI reads them.
    """
    offset = shifted_port_offset()
    home = Path(tempfile.mkdtemp(prefix=f"obslab-bench-{profile}-"))
    env = {"OBSLAB_HOME": str(home), "OBSLAB_PORT_OFFSET": str(offset)}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        if load_rate is not None:
            Profile(rate=load_rate).save(home / "load" / "profile.json")
        # The stack narrates on stdout, which carries the benchmark's table.
        with contextlib.redirect_stdout(sys.stderr):
            try:
                urls = native.up(profile, load=load_rate is not None)
                yield Lab(home, urls)
            finally:
                native.down()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(home, ignore_errors=True)
