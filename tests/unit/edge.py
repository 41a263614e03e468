"""A real nginx in front of services a unit test runs, configured as `obslab up` renders it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from obslab import render
from obslab.layout import StateLayout
from obslab.stackconfig import load_stack
from obslab.topology import Instance, Release, Topology
from tests.unit.processes import Process, clean_environ, free_port

NGINX = shutil.which("nginx", path="/usr/sbin:/usr/bin") or "nginx"
RELEASE = Release("1.0.0", "abc1234", "m1", deployed_at=1_700_000_000.0)


@dataclass(frozen=True)
class Edge:
    scoring: str
    features: str
    scoring_port: int


@contextmanager
def nginx_in_front(
    home: Path, *, scoring: Sequence[int], features: Sequence[int]
) -> Iterator[Edge]:
    """nginx on free ports, balancing over instances at the ports given (listening or not)."""
    layout = StateLayout(home / "state")
    layout.create()
    base = load_stack()
    stack = replace(
        base,
        scoring=replace(base.scoring, port=free_port()),
        features=replace(base.features, port=free_port()),
    )
    instances = tuple(
        Instance(service, index, port, RELEASE)
        for service, ports in (("features", features), ("scoring", scoring))
        for index, port in enumerate(ports)
    )
    topology = Topology("test", 0, False, {"scoring": RELEASE, "features": RELEASE}, instances)
    layout.nginx_config.write_text(render.render_nginx(stack, topology, layout))
    scoring_url = f"http://127.0.0.1:{stack.scoring.port}"
    nginx = Process(
        "nginx",
        [NGINX, "-p", f"{layout.nginx}/", "-c", str(layout.nginx_config), "-e", "stderr"],
        clean_environ(),
        home,
        f"{scoring_url}/nginx_status",
    )
    try:
        yield Edge(scoring_url, f"http://127.0.0.1:{stack.features.port}", stack.scoring.port)
    finally:
        nginx.stop()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])
