"""What is running and since when: the series every deploy-aware alert joins on."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge


def register_build_info(
    registry: CollectorRegistry,
    *,
    version: str,
    commit: str,
    model_version: str,
    previous_version: str,
    deployed_at: float,
) -> None:
    """Expose ``app_build_info{...} 1`` and ``app_deploy_timestamp_seconds``."""
    Gauge(
        "app_build_info",
        "The running build; previous_version is the version this deploy replaced.",
        ("version", "commit", "model_version", "previous_version"),
        registry=registry,
    ).labels(version, commit, model_version, previous_version).set(1)
    Gauge(
        "app_deploy_timestamp_seconds",
        "Unix time at which this instance's version was deployed.",
        registry=registry,
    ).set(deployed_at)
