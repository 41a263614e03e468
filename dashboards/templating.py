"""Template variables, label selectors and the deploy annotations the dashboards share.

Every variable is multi-valued with "All" selected by default, so the selectors below always
match with ``=~``; Grafana expands a selection to a regex such as ``(scoring|features)``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.dashboard import VariableOption, VariableRefresh, VariableSort

from dashboards.datasources import GRAFANA, PROMETHEUS

#: The HTTP series of the selected jobs, instances, routes and versions.
HTTP = 'job=~"$job", instance=~"$instance", route=~"$route", version=~"$version"'
#: The process of the selected jobs and instances.
PROCESS = 'job=~"$job", instance=~"$instance"'
MODEL = 'model_version=~"$model_version"'

DEPLOY_TAG = "deploy"


def _label_variable(name: str, label: str, query: str, description: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(PROMETHEUS)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.NATURAL_ASC)
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def job() -> dashboard.QueryVariable:
    return _label_variable(
        "job",
        "Service",
        "label_values(http_requests_total, job)",
        "The Prometheus job: scoring or features.",
    )


def instance() -> dashboard.QueryVariable:
    return _label_variable(
        "instance",
        "Instance",
        'label_values(http_requests_total{job=~"$job"}, instance)',
        "One gunicorn process of the selected services.",
    )


def route() -> dashboard.QueryVariable:
    return _label_variable(
        "route",
        "Route",
        'label_values(http_requests_total{job=~"$job"}, route)',
        "The Flask URL rule template; 'unmatched' collects paths no rule matched.",
    )


def version() -> dashboard.QueryVariable:
    return _label_variable(
        "version",
        "Version",
        'label_values(http_requests_total{job=~"$job"}, version)',
        "The deployed release of the service.",
    )


def model_version() -> dashboard.QueryVariable:
    return _label_variable(
        "model_version",
        "Model version",
        "label_values(model_predictions_total, model_version)",
        "The model the scoring service runs.",
    )


def feature() -> dashboard.QueryVariable:
    return _label_variable(
        "feature",
        "Feature",
        "label_values(model_feature_bin_total, feature)",
        "An input feature of the model.",
    )


class _PrometheusAnnotation(model.AnnotationQuery):
    """A Prometheus annotation query with the options the typed model does not carry."""

    def __init__(self, extra: dict[str, object], **fields: object) -> None:
        super().__init__(**fields)
        self.extra = extra

    def to_json(self) -> dict[str, object]:
        return super().to_json() | self.extra


class _Built(cogbuilder.Builder[model.AnnotationQuery]):
    def __init__(self, annotation: model.AnnotationQuery) -> None:
        self.annotation = annotation

    def build(self) -> model.AnnotationQuery:
        return self.annotation


def deploys_from_metrics(selector: str = 'job=~"$job"') -> _Built:
    """A mark at each deploy, read from the instances themselves.

    ``changes(app_build_info[...])`` stays 0 across a deploy (a new version is a new series),
    so the mark is placed at the value of the recorded deploy time ("series value as
    timestamp"), labelled with the build it started.
    """
    return _Built(
        _PrometheusAnnotation(
            {
                "useValueForTime": True,
                "step": "1m",
                "titleFormat": "Deploy {{job}} {{version}}",
                "textFormat": (
                    "replaced {{previous_version}}; commit {{commit}}; model {{model_version}}"
                ),
                "tagKeys": "job,version",
            },
            name="Deploys (metrics)",
            datasource=PROMETHEUS,
            enable=True,
            icon_color="blue",
            expr=f"deploy:app_deploy_timestamp_seconds:min{{{selector}}} * 1000",
        )
    )


def deploys_from_grafana() -> dashboard.AnnotationQuery:
    """The deploy annotations ``obslab grafana sync`` posts from the deploy history."""
    return (
        dashboard.AnnotationQuery()
        .name("Deploys (history)")
        .datasource(GRAFANA)
        .enable(True)
        .icon_color("purple")
        .type("tags")
        .target(
            dashboard.AnnotationTarget().type("tags").tags([DEPLOY_TAG]).match_any(True).limit(100)
        )
    )


def new_dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    """A lab dashboard: tagged, refreshing, last 30 minutes, crosshair shared across panels."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["obslab"])
        .refresh("10s")
        .time("now-30m", "now")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .link(
            dashboard.DashboardLink("obslab dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["obslab"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
