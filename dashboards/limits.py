"""The alert thresholds the panels draw, read from the same file the alert rules are built from.

Thresholds are the same in every profile (only windows and ``for:`` differ), so the ``demo``
profile stands for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alerts.thresholds import THRESHOLDS_FILE, load_profile


@dataclass(frozen=True)
class Limits:
    error_ratio: float
    availability: float
    fast_burn_rate: float
    slow_burn_rate: float
    p95_seconds: float
    dependency_failure_ratio: float
    memory_bytes: float
    ticket_psi: float
    page_psi: float
    missing_ratio: float
    accuracy_drop: float


def load_limits(path: Path = THRESHOLDS_FILE) -> Limits:
    profile = load_profile("demo", path)
    return Limits(
        error_ratio=profile.fraction("error_rate.max_ratio"),
        availability=profile.fraction("slo.availability"),
        fast_burn_rate=profile.number("slo.fast.burn_rate"),
        slow_burn_rate=profile.number("slo.slow.burn_rate"),
        p95_seconds=profile.number("latency.max_p95_seconds"),
        dependency_failure_ratio=profile.fraction("dependency.max_failure_ratio"),
        memory_bytes=profile.number("memory.limit_bytes"),
        ticket_psi=profile.number("drift.ticket_psi"),
        page_psi=profile.number("drift.page_psi"),
        missing_ratio=profile.fraction("missing.max_ratio"),
        accuracy_drop=profile.fraction("accuracy.max_drop"),
    )
