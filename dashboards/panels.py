"""Panel and query factories: every panel gets a description, a unit and thresholds by signature.

A panel is built in one call with what a reader needs (title, description, unit, limits) and
its queries; layout (width, height) is the only optional part. Limits are ``(value, color)``
steps above a base color (green unless a low value is the bad one), drawn as dashed lines on
time series, so an alert's threshold sits on the graph that the alert watches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from string import ascii_uppercase
from typing import TypeVar

from grafana_foundation_sdk.builders import (
    common,
    dashboard,
    heatmap,
    logs,
    loki,
    prometheus,
    stat,
    table,
    tempo,
    text,
    timeseries,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
)
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from grafana_foundation_sdk.models.tempo import SearchTableType, TempoQueryType

from dashboards.datasources import GRAFANA, LOKI, PROMETHEUS, TEMPO

Limits = Sequence[tuple[float, str]]
Query = cogbuilder.Builder[cogvariants.Dataquery]
PanelT = TypeVar("PanelT", bound=cogbuilder.Builder[dashboard_model.Panel])

#: The warning and critical colors of every limit, in Grafana's palette.
WARN, CRITICAL = "orange", "red"


def prom(
    expr: str,
    legend: str = "",
    *,
    instant: bool = False,
    table_format: bool = False,
    heatmap_format: bool = False,
    exemplar: bool = False,
) -> prometheus.Dataquery:
    """A Prometheus query; ``exemplar`` fetches the trace-id exemplars of the series it reads."""
    query = prometheus.Dataquery().datasource(PROMETHEUS).expr(expr).exemplar(exemplar)
    if legend:
        query = query.legend_format(legend)
    if instant:
        query = query.instant()
    if table_format:
        query = query.format(PromQueryFormat.TABLE)
    if heatmap_format:
        query = query.format(PromQueryFormat.HEATMAP)
    return query


def logql(expr: str) -> loki.Dataquery:
    return loki.Dataquery().datasource(LOKI).expr(expr)


def traceql(query: str, *, limit: int = 20) -> tempo.TempoQuery:
    """A TraceQL search listing matching traces."""
    return (
        tempo.TempoQuery()
        .datasource(TEMPO)
        .query_type(TempoQueryType.TRACEQL)
        .query(query)
        .limit(limit)
        .table_type(SearchTableType.TRACES)
    )


def trace_by_id(trace_id: str) -> tempo.TempoQuery:
    return tempo.TempoQuery().datasource(TEMPO).query_type(TempoQueryType.TRACEQL).query(trace_id)


def thresholds(limits: Limits, *, base: str = "green") -> dashboard.ThresholdsConfig:
    """``base`` below the first limit; pass ``base=CRITICAL`` for values bad when low."""
    steps = [Threshold(value=None, color=base)]
    steps += [Threshold(value=value, color=color) for value, color in limits]
    return dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def _with_targets(panel: PanelT, queries: Sequence[Query]) -> PanelT:
    """Add ``queries`` with ref ids A, B, C... in order."""
    for ref_id, query in zip(ascii_uppercase, queries, strict=False):
        panel = panel.with_target(query.ref_id(ref_id))
    return panel


def time_series(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    limits: Limits = (),
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
    bars: bool = False,
    minimum: float | None = None,
    datasource: DataSourceRef = PROMETHEUS,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource)
        .unit(unit)
        .thresholds(thresholds(limits))
        .span(width)
        .height(height)
        .fill_opacity(10)
        .legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(common_model.LegendDisplayMode.TABLE)
            .placement(common_model.LegendPlacement.BOTTOM)
            .calcs(["mean", "max", "lastNotNull"])
        )
        .tooltip(common.VizTooltipOptions().mode(common_model.TooltipDisplayMode.MULTI))
    )
    if limits:
        panel = panel.thresholds_style(
            common.GraphThresholdsStyleConfig().mode(common_model.GraphThresholdsStyleMode.DASHED)
        )
    if stacked:
        panel = panel.stacking(common.StackingConfig().mode(common_model.StackingMode.NORMAL))
    if bars:
        panel = panel.draw_style(common_model.GraphDrawStyle.BARS).fill_opacity(80)
    if minimum is not None:
        panel = panel.min(minimum)
    return _with_targets(panel, queries)


def single_stat(
    title: str,
    description: str,
    unit: str,
    query: Query,
    *,
    limits: Limits = (),
    base: str = "green",
    width: int = 4,
    height: int = 4,
) -> stat.Panel:
    """One number, colored by its limits."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .thresholds(thresholds(limits, base=base))
        .color_mode(common_model.BigValueColorMode.BACKGROUND)
        .graph_mode(common_model.BigValueGraphMode.AREA)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
        .span(width)
        .height(height)
    )
    return _with_targets(panel, [query])


def score_heatmap(
    title: str, description: str, unit: str, query: Query, *, width: int = 12, height: int = 8
) -> heatmap.Panel:
    """A heatmap of pre-bucketed Prometheus histogram counts (``le`` buckets as rows)."""
    panel = (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .thresholds(thresholds(()))
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit(unit))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .exponent(0.5)
            .steps(64)
        )
        .cell_values(heatmap.CellValues().unit("short"))
        .exemplars_color("rgba(255,0,255,0.7)")
        .span(width)
        .height(height)
    )
    return _with_targets(panel, [query])


def data_table(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    limits: Limits = (),
    transformations: Sequence[DataTransformerConfig] = (),
    width: int = 24,
    height: int = 8,
    datasource: DataSourceRef = PROMETHEUS,
) -> table.Panel:
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(datasource)
        .unit(unit)
        .thresholds(thresholds(limits))
        .transformations(list(transformations))
        .span(width)
        .height(height)
    )
    return _with_targets(panel, queries)


def named_columns(names: Mapping[str, str], *, merge: bool = False) -> list[DataTransformerConfig]:
    """A table's transformations: drop the time column, rename the value columns by ``names``.

    ``merge`` first joins the results of several queries into one row per series, their values
    in columns ``Value #A``, ``Value #B``... in query order.
    """
    organize = DataTransformerConfig(
        id_val="organize", options={"excludeByName": {"Time": True}, "renameByName": dict(names)}
    )
    if merge:
        return [DataTransformerConfig(id_val="merge", options={}), organize]
    return [organize]


def column_limits(unit: str, limits: Limits) -> list[DynamicConfigValue]:
    """Overrides giving one table column its own unit and coloring its text by its limits."""
    return [
        DynamicConfigValue(id_val="unit", value=unit),
        DynamicConfigValue(id_val="thresholds", value=thresholds(limits).build()),
        DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
    ]


def note(
    title: str, description: str, markdown: str, *, width: int = 24, height: int = 4
) -> text.Panel:
    """A markdown panel: links and how-tos beside the graphs."""
    return (
        text.Panel()
        .title(title)
        .description(description)
        .content(markdown)
        .span(width)
        .height(height)
    )


def log_lines(
    title: str, description: str, query: Query, *, width: int = 24, height: int = 12
) -> logs.Panel:
    panel = (
        logs.Panel()
        .title(title)
        .description(description)
        .datasource(LOKI)
        .show_time(True)
        .wrap_log_message(True)
        .enable_log_details(True)
        .sort_order(common_model.LogsSortOrder.DESCENDING)
        .span(width)
        .height(height)
    )
    return _with_targets(panel, [query])


def trace_view(title: str, description: str, query: Query, *, height: int = 14) -> dashboard.Panel:
    """Grafana's trace view (waterfall) of one trace; the core panel has no typed builder."""
    panel = (
        dashboard.Panel()
        .type("traces")
        .title(title)
        .description(description)
        .datasource(TEMPO)
        .span(24)
        .height(height)
    )
    return _with_targets(panel, [query])


def alert_list(
    title: str, description: str, *, width: int = 12, height: int = 8
) -> dashboard.Panel:
    """Grafana's alert list of the rules Prometheus evaluates, firing and pending first."""
    return (
        dashboard.Panel()
        .type("alertlist")
        .title(title)
        .description(description)
        .datasource(GRAFANA)
        .options(
            {
                "viewMode": "list",
                "groupMode": "default",
                "groupBy": [],
                "maxItems": 50,
                "sortOrder": 3,
                "dashboardAlerts": False,
                "alertName": "",
                "alertInstanceLabelFilter": "",
                "datasource": "Prometheus",
                "stateFilter": {
                    "firing": True,
                    "pending": True,
                    "noData": False,
                    "normal": False,
                    "error": True,
                },
            }
        )
        .span(width)
        .height(height)
    )
