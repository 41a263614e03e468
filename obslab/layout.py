"""Where the native stack keeps its files under the state directory (``$OBSLAB_HOME``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StateLayout:
    """Paths of everything ``obslab up`` writes; ``root`` is ``app.settings.state_dir()``."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Pid files, one per process, named after the process."""
        return self.root / "run"

    @property
    def stack_file(self) -> Path:
        """The running stack: profile, port offset, releases and instances (``Topology``)."""
        return self.root / "stack.json"

    @property
    def oncall_token(self) -> Path:
        return self.root / "oncall.token"

    @property
    def admin_token(self) -> Path:
        return self.root / "admin.token"

    @property
    def prometheus(self) -> Path:
        return self.root / "prometheus"

    @property
    def prometheus_config(self) -> Path:
        return self.prometheus / "prometheus.yml"

    @property
    def rules_file(self) -> Path:
        return self.prometheus / "obslab.rules.yml"

    @property
    def prometheus_data(self) -> Path:
        return self.prometheus / "data"

    def targets_file(self, service: str) -> Path:
        """The file_sd target list of one load-balanced service."""
        return self.prometheus / "targets" / f"{service}.json"

    @property
    def alertmanager(self) -> Path:
        return self.root / "alertmanager"

    @property
    def alertmanager_config(self) -> Path:
        return self.alertmanager / "alertmanager.yml"

    @property
    def alertmanager_data(self) -> Path:
        return self.alertmanager / "data"

    @property
    def nginx(self) -> Path:
        """nginx's prefix: its config, pid file and temp directories."""
        return self.root / "nginx"

    @property
    def nginx_config(self) -> Path:
        return self.nginx / "nginx.conf"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def create(self) -> None:
        for directory in (
            self.logs,
            self.run,
            self.prometheus_data,
            self.targets_file("any").parent,
            self.alertmanager_data,
            self.nginx / "temp",
        ):
            directory.mkdir(parents=True, exist_ok=True)
