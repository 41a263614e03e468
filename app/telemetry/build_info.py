"""What is running, since when and whether it means to move its scores: the series every
deploy-aware alert joins on."""

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
    expected_score_shift: bool = False,
) -> None:
    """Expose ``app_build_info{...} 1``, ``app_deploy_timestamp_seconds`` and
    ``app_expected_score_shift``."""
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
    # Labelled by release, not by the build's other labels: the alert rules join it to a
    # release's scores on (job, version, model_version).
    Gauge(
        "app_expected_score_shift",
        "1 when this release declares a shift of its prediction scores intended "
        "(obslab deploy --expect-shift), else 0.",
        ("version", "model_version"),
        registry=registry,
    ).labels(version, model_version).set(1 if expected_score_shift else 0)
