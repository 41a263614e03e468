"""Service overview: rate, errors and duration per route and version, the SLO, and saturation."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from dashboards.limits import Limits
from dashboards.panels import (
    CRITICAL,
    WARN,
    prom,
    score_heatmap,
    single_stat,
    time_series,
)
from dashboards.templating import (
    HTTP,
    PROCESS,
    deploys_from_grafana,
    deploys_from_metrics,
    instance,
    job,
    new_dashboard,
    route,
    version,
)

UID = "obslab-service"

REQUESTS = f"http_requests_total{{{HTTP}}}"
ERRORS = f'http_requests_total{{{HTTP}, status=~"5.."}}'
BUCKETS = f"http_request_duration_seconds_bucket{{{HTTP}}}"


def rate(series: str, by: str, window: str = "$__rate_interval") -> str:
    return f"sum by ({by}) (rate({series}[{window}]))"


def error_ratio(by: str, window: str = "$__rate_interval") -> str:
    """The 5xx share; 0, not nothing, where requests flowed without a single 5xx yet."""
    total = f"sum by ({by}) (increase({REQUESTS}[{window}]))"
    errors = f"sum by ({by}) (increase({ERRORS}[{window}]))"
    return f"({errors} or 0 * {total})\n/\n{total}"


def p95(by: str) -> str:
    return f"histogram_quantile(0.95, sum by ({by}, le) (rate({BUCKETS}[$__rate_interval])))"


def build(limits: Limits) -> dashboard.Dashboard:
    budget = 1 - limits.availability
    return (
        new_dashboard(
            UID,
            "obslab / Service overview",
            "Requests, errors and latency of scoring and features per route and version, "
            "the availability SLO and its error budget, and what the processes use.",
        )
        .with_variable(job())
        .with_variable(instance())
        .with_variable(route())
        .with_variable(version())
        .annotation(deploys_from_metrics())
        .annotation(deploys_from_grafana())
        .with_row(dashboard.Row("Now"))
        .with_panel(
            single_stat(
                "Request rate",
                "Requests per second answered by the selected services.",
                "reqps",
                prom(rate(REQUESTS, "job"), "{{job}}"),
            )
        )
        .with_panel(
            single_stat(
                "Error ratio",
                "Share of requests answered 5xx. HighErrorRate fires above the red line.",
                "percentunit",
                prom(error_ratio("job"), "{{job}}"),
                limits=[(limits.error_ratio / 2, WARN), (limits.error_ratio, CRITICAL)],
            )
        )
        .with_panel(
            single_stat(
                "p95 latency",
                "95th percentile of request duration. HighLatency fires above the red line.",
                "s",
                prom(p95("job"), "{{job}}"),
                limits=[(limits.p95_seconds / 2, WARN), (limits.p95_seconds, CRITICAL)],
            )
        )
        .with_panel(
            single_stat(
                "Availability (range)",
                f"Share of requests not answered 5xx over the time range; the SLO is "
                f"{limits.availability:.1%}.",
                "percentunit",
                prom(f"1 - ({error_ratio('job', '$__range')})", "{{job}}"),
                base=CRITICAL,
                limits=[(limits.availability, "green")],
            )
        )
        .with_panel(
            single_stat(
                "Error budget left (range)",
                "Share of the error budget (the 5xx the SLO allows) not spent over the time "
                "range; below zero the SLO is broken.",
                "percentunit",
                prom(f"1 - ({error_ratio('job', '$__range')}) / {budget:g}", "{{job}}"),
                base=CRITICAL,
                limits=[(0, WARN), (0.5, "green")],
            )
        )
        .with_panel(
            single_stat(
                "Instances up",
                "Instances Prometheus scraped successfully at its last scrape. TargetDown "
                "fires for an instance that stays down.",
                "none",
                prom(f"sum by (job) (up{{{PROCESS}}})", "{{job}}"),
                base=CRITICAL,
                limits=[(1, "green")],
            )
        )
        .with_row(dashboard.Row("Traffic and errors"))
        .with_panel(
            time_series(
                "Requests by route and status",
                "Requests per second by route template and HTTP status.",
                "reqps",
                prom(rate(REQUESTS, "job, route, status"), "{{job}} {{route}} {{status}}"),
                stacked=True,
            )
        )
        .with_panel(
            time_series(
                "Error ratio by route",
                "Share of each route's requests answered 5xx; the dashed line is the "
                "HighErrorRate threshold.",
                "percentunit",
                prom(error_ratio("job, route"), "{{job}} {{route}}"),
                limits=[(limits.error_ratio, CRITICAL)],
                minimum=0,
            )
        )
        .with_row(dashboard.Row("Latency"))
        .with_panel(
            time_series(
                "p95 latency by route",
                "95th percentile of request duration by route. The dots are exemplars: "
                "click one to open its trace in Tempo.",
                "s",
                prom(p95("job, route"), "{{job}} {{route}}", exemplar=True),
                limits=[(limits.p95_seconds, CRITICAL)],
                minimum=0,
            )
        )
        .with_panel(
            score_heatmap(
                "Request duration distribution",
                "Requests per duration bucket over time; exemplars link to traces.",
                "s",
                prom(
                    f"sum by (le) (increase({BUCKETS}[$__rate_interval]))",
                    "{{le}}",
                    heatmap_format=True,
                    exemplar=True,
                ),
            )
        )
        .with_row(dashboard.Row("Versions"))
        .with_panel(
            time_series(
                "Requests by version",
                "Requests per second by deployed version: a rollout moves traffic from one "
                "line to the next.",
                "reqps",
                prom(rate(REQUESTS, "job, version"), "{{job}} {{version}}"),
                width=8,
            )
        )
        .with_panel(
            time_series(
                "Error ratio by version",
                "5xx share of each version's requests; a bad deploy stands out against the "
                "version it replaced.",
                "percentunit",
                prom(error_ratio("job, version"), "{{job}} {{version}}"),
                limits=[(limits.error_ratio, CRITICAL)],
                width=8,
                minimum=0,
            )
        )
        .with_panel(
            time_series(
                "p95 latency by version",
                "95th percentile of request duration of each version; exemplars link to traces.",
                "s",
                prom(p95("job, version"), "{{job}} {{version}}", exemplar=True),
                limits=[(limits.p95_seconds, CRITICAL)],
                width=8,
                minimum=0,
            )
        )
        .with_row(dashboard.Row("SLO"))
        .with_panel(
            time_series(
                "Error budget burn rate",
                "How fast each window spends the error budget (1 = exactly the budget over "
                "the SLO period). ErrorBudgetBurn pages when both fast windows exceed "
                f"{limits.fast_burn_rate:g} and files a ticket when both slow ones exceed "
                f"{limits.slow_burn_rate:g}.",
                "none",
                *(
                    prom(f'job:slo_burn_rate:{name}{{job=~"$job"}}', f"{{{{job}}}} {label}")
                    for name, label in (
                        ("fast_short", "fast, short window"),
                        ("fast_long", "fast, long window"),
                        ("slow_short", "slow, short window"),
                        ("slow_long", "slow, long window"),
                    )
                ),
                limits=[(limits.slow_burn_rate, WARN), (limits.fast_burn_rate, CRITICAL)],
                width=24,
                minimum=0,
            )
        )
        .with_row(dashboard.Row("Saturation and dependencies"))
        .with_panel(
            time_series(
                "Resident memory",
                "Resident set size of each process. MemoryGrowth fires when the trend would "
                "cross the dashed limit.",
                "bytes",
                prom(f"process_resident_memory_bytes{{{PROCESS}}}", "{{job}} {{instance}}"),
                limits=[(limits.memory_bytes, CRITICAL)],
                width=6,
                minimum=0,
            )
        )
        .with_panel(
            time_series(
                "CPU",
                "CPU time per second of each process (1 = one core busy).",
                "percentunit",
                prom(
                    f"rate(process_cpu_seconds_total{{{PROCESS}}}[$__rate_interval])",
                    "{{job}} {{instance}}",
                ),
                limits=[(0.9, WARN)],
                width=6,
                minimum=0,
            )
        )
        .with_panel(
            time_series(
                "Dependency calls by outcome",
                "Scoring's calls to the features service per second: ok, error or timeout.",
                "reqps",
                prom(
                    rate("dependency_requests_total", "job, dependency, outcome"),
                    "{{dependency}} {{outcome}}",
                ),
                stacked=True,
                width=6,
            )
        )
        .with_panel(
            time_series(
                "Dependency failure ratio",
                "Share of scoring's calls to a dependency that failed or timed out; "
                "DependencyFailing fires above the dashed line.",
                "percentunit",
                prom("job_dependency:dependency_request_failures:ratio", "{{dependency}}"),
                limits=[(limits.dependency_failure_ratio, CRITICAL)],
                width=6,
                minimum=0,
            )
        )
    )
