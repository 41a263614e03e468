"""What a rendering of ``deploy/k8s/`` may vary, and where it goes by default.

Apart from :mod:`obslab.k8s.layout` so that the command line can offer these options without
loading the renderer, which builds the dashboards and so needs the ``grafana`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass

from obslab.k8s import workloads
from obslab.stackconfig import REPO_ROOT

DEPLOY_DIR = REPO_ROOT / "deploy" / "k8s"
#: Rules in the prod profile's thresholds; scrape, evaluation and Alertmanager timing from the
#: prod profile of stack.yaml.
PROFILE = "prod"


@dataclass(frozen=True)
class RenderOptions:
    """What a rendering may vary; the defaults render the committed files."""

    students: int = 3
    deployed_at: float = workloads.INITIAL_DEPLOYED_AT
    remote_write_url: str | None = None
    cluster: str | None = None
    rules_profile: str = PROFILE

    def __post_init__(self) -> None:
        if not 1 <= self.students <= 999:
            raise ValueError(f"students: expected 1 to 999, got {self.students}")
