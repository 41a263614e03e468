"""What the native stack is running: releases and instances, kept in ``stack.json``.

The file is the runner's memory between commands. ``obslab up`` writes it; nginx upstreams and
Prometheus file_sd targets are rendered from its instance list, so replacing an instance is:
add an ``Instance`` at ``next_index``, start it, publish, stop and drop the old one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from obslab.errors import ObslabError


@dataclass(frozen=True)
class Release:
    """One version of a service as it was deployed (the ``OBSLAB_*`` build settings).

    ``expected_score_shift``: the deploy declared that this release means to move its scores
    (``obslab deploy --expect-shift``), so a score shift is a ticket rather than a page.
    """

    version: str
    commit: str
    model_version: str
    deployed_at: float
    previous_version: str = ""
    expected_score_shift: bool = False


@dataclass(frozen=True)
class Instance:
    """One gunicorn process of a load-balanced service; ``weight`` is its nginx share."""

    service: str
    index: int
    port: int
    release: Release
    weight: int = 1

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index}"


@dataclass(frozen=True)
class Topology:
    profile: str
    port_offset: int
    load: bool
    releases: dict[str, Release] = field(default_factory=dict)
    instances: tuple[Instance, ...] = ()

    def instances_of(self, service: str) -> list[Instance]:
        return [instance for instance in self.instances if instance.service == service]

    def next_index(self, service: str) -> int:
        """An index (and so a name and port) no instance of ``service`` has used in this run."""
        return max((i.index for i in self.instances_of(service)), default=-1) + 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Topology:
        data = json.loads(text)
        return cls(
            profile=data["profile"],
            port_offset=data["port_offset"],
            load=data["load"],
            releases={name: Release(**body) for name, body in data["releases"].items()},
            instances=tuple(
                Instance(**{**body, "release": Release(**body["release"])})
                for body in data["instances"]
            ),
        )


def read_topology(path: Path) -> Topology | None:
    """The saved topology, or None when there is none."""
    try:
        return Topology.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise ObslabError(f"{path}: unreadable ({exc!r}); `obslab down` resets it") from None


def write_topology(path: Path, topology: Topology) -> None:
    """Replace the file atomically, so a reader never sees half a topology."""
    partial = path.with_suffix(".json.partial")
    partial.write_text(topology.to_json())
    os.replace(partial, path)
