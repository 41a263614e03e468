"""Deployments: the deploy history, and each version's errors, latency and scores side by side.

Every time series is split by version, so the deploy marks show a version's line start where
the previous one ends: before and after on one graph.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.dashboard import DataTransformerConfig

from dashboards.limits import Limits
from dashboards.panels import (
    CRITICAL,
    column_limits,
    data_table,
    named_columns,
    prom,
    single_stat,
    time_series,
)
from dashboards.templating import deploys_from_grafana, deploys_from_metrics, job, new_dashboard

UID = "obslab-deployments"

JOB = 'job=~"$job"'


def _over_range_by_version(limits: Limits) -> dashboard.Panel:
    requests = f"http_requests_total{{{JOB}}}"
    total = f"sum by (job, version) (increase({requests}[$__range]))"
    errors = (
        f'sum by (job, version) (increase(http_requests_total{{{JOB}, status=~"5.."}}[$__range]))'
    )
    return (
        data_table(
            "Versions over the time range",
            "Each version that served in the time range: requests, 5xx share and p95 "
            "latency. A regression shows as one version's row against its predecessor's.",
            "short",
            prom(total, instant=True, table_format=True),
            prom(f"({errors} or 0 * {total})\n/\n{total}", instant=True, table_format=True),
            prom(
                "histogram_quantile(0.95, sum by (job, version, le) "
                f"(increase(http_request_duration_seconds_bucket{{{JOB}}}[$__range])))",
                instant=True,
                table_format=True,
            ),
            limits=[],
            transformations=named_columns(
                {"Value #A": "requests", "Value #B": "error ratio", "Value #C": "p95 latency"},
                merge=True,
            ),
            width=12,
        )
        .override_by_name(
            "error ratio", column_limits("percentunit", [(limits.error_ratio, CRITICAL)])
        )
        .override_by_name("p95 latency", column_limits("s", [(limits.p95_seconds, CRITICAL)]))
    )


def build(limits: Limits) -> dashboard.Dashboard:
    return (
        new_dashboard(
            UID,
            "obslab / Deployments",
            "Which version runs where, when each was deployed and what it replaced, and how "
            "each version's errors, latency and scores compare with the one before.",
        )
        .with_variable(job())
        .annotation(deploys_from_metrics())
        .annotation(deploys_from_grafana())
        .with_row(dashboard.Row("History"))
        .with_panel(
            data_table(
                "Deploy history",
                "Every deploy Prometheus saw in the time range: the version, the version it "
                "replaced, its commit and model, and when its first instance started.",
                "dateTimeAsIso",
                prom(
                    f"max_over_time(deploy:app_deploy_timestamp_seconds:min{{{JOB}}}[$__range])"
                    " * 1000",
                    instant=True,
                    table_format=True,
                ),
                transformations=[
                    *named_columns({"Value": "deployed at"}),
                    DataTransformerConfig(
                        id_val="sortBy",
                        options={"sort": [{"field": "deployed at", "desc": True}]},
                    ),
                ],
                width=12,
            )
        )
        .with_panel(_over_range_by_version(limits))
        .with_panel(
            single_stat(
                "Instances per version",
                "Instances now running each version: during a rollout two versions serve.",
                "none",
                prom(f"count by (job, version) (app_build_info{{{JOB}}})", "{{job}} {{version}}"),
                width=24,
            )
        )
        .with_row(dashboard.Row("Before and after"))
        .with_panel(
            time_series(
                "Requests by version",
                "Requests per second each version served.",
                "reqps",
                prom(f"job_version:http_requests:rate{{{JOB}}}", "{{job}} {{version}}"),
            )
        )
        .with_panel(
            time_series(
                "Error ratio by version",
                "5xx share of each version's requests. DeployErrorRegression fires when a "
                "new version's ratio clearly exceeds its predecessor's.",
                "percentunit",
                prom(f"job_version:http_request_errors:ratio{{{JOB}}}", "{{job}} {{version}}"),
                limits=[(limits.error_ratio, CRITICAL)],
                minimum=0,
            )
        )
        .with_panel(
            time_series(
                "p95 latency by version",
                "95th percentile of request duration per version. DeployLatencyRegression "
                "fires when a new version is clearly slower than its predecessor.",
                "s",
                prom(
                    f"job_version:http_request_duration_seconds:p95{{{JOB}}}",
                    "{{job}} {{version}}",
                ),
                limits=[(limits.p95_seconds, CRITICAL)],
                minimum=0,
            )
        )
        .with_panel(
            time_series(
                "Score quantiles by version",
                "Median and 90th percentile of the predicted default probability per "
                "scoring version. DeployPredictionShift fires when a new version's "
                "distribution departs from its predecessor's.",
                "percentunit",
                *(
                    prom(
                        f"histogram_quantile({q}, sum by (job, version, le) "
                        f"(job_version:model_prediction_score_bucket:rate{{{JOB}}}))",
                        f"{{{{version}}}} {label}",
                    )
                    for q, label in ((0.5, "median"), (0.9, "p90"))
                ),
                minimum=0,
            )
        )
    )
