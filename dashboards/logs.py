"""Logs and traces (compose stack): Loki's log lines and Tempo's traces, linked by trace id.

A trace id from an exemplar, a log line or ``obslab trace`` goes in the ``trace_id`` box; the
log panel then shows that request's lines in both services and the trace panel its spans.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.dashboard import VariableOption

from dashboards.datasources import LOKI, TEMPO
from dashboards.limits import Limits
from dashboards.panels import (
    CRITICAL,
    data_table,
    log_lines,
    logql,
    note,
    time_series,
    trace_by_id,
    trace_view,
    traceql,
)
from dashboards.templating import deploys_from_grafana, new_dashboard

UID = "obslab-logs-traces"

SERVICES = ("scoring", "features", "oncall")
STREAM = '{service_name=~"$service"}'

HOW_TO = """\
Every request's log lines carry its `trace_id`. Three ways in:

* **From a latency graph:** the dots on *p95 latency* panels are exemplars; click one, then
  *View trace*.
* **From a log line:** open a line below and follow the `trace_id` link to Tempo.
* **From a trace:** in the span view, *Logs for this span* queries Loki for the same trace id.

Paste a trace id in the box above to see that request's logs and spans here.
"""


def _service() -> dashboard.CustomVariable:
    return (
        dashboard.CustomVariable("service")
        .label("Service")
        .description("The service.name of the logs and traces shown.")
        .values(",".join(SERVICES))
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def _text_box(name: str, label: str, description: str) -> dashboard.TextBoxVariable:
    return dashboard.TextBoxVariable(name).label(label).description(description).default_value("")


def build(limits: Limits) -> dashboard.Dashboard:
    slow_ms = round(limits.p95_seconds * 1000)
    return (
        new_dashboard(
            UID,
            "obslab / Logs and traces",
            "Structured logs from Loki and traces from Tempo, by service and trace id "
            "(docker compose stack).",
        )
        .with_variable(_service())
        .with_variable(_text_box("trace_id", "Trace id", "32 hex digits; empty shows every line."))
        .with_variable(_text_box("search", "Search", "Text the log lines must contain."))
        .annotation(deploys_from_grafana())
        .with_panel(
            time_series(
                "Error log lines",
                "Log lines of level error or above per service, per second.",
                "short",
                logql(
                    f'sum by (service_name) (rate({STREAM} | json | level=~"error|critical" '
                    "[$__auto]))"
                ).legend_format("{{service_name}}"),
                limits=[(0.1, CRITICAL)],
                datasource=LOKI,
                width=16,
                height=6,
            )
        )
        .with_panel(
            note("How to follow a request", "Where trace ids come from.", HOW_TO, width=8, height=6)
        )
        .with_panel(
            log_lines(
                "Log lines",
                "Newest first. Each line is the service's JSON log record; its trace_id "
                "links to the trace in Tempo.",
                logql(f'{STREAM} | trace_id=~"${{trace_id}}.*" |= "$search"'),
            )
        )
        .with_panel(
            data_table(
                "Recent traces",
                "The latest traces of the selected services; click a trace id to open it.",
                "ms",
                traceql('{resource.service.name=~"${service:regex}"}'),
                datasource=TEMPO,
                width=12,
            )
        )
        .with_panel(
            data_table(
                "Slow traces",
                f"Traces slower than the latency threshold ({slow_ms} ms, the HighLatency "
                "p95 limit).",
                "ms",
                traceql(
                    f'{{resource.service.name=~"${{service:regex}}" && duration > {slow_ms}ms}}'
                ),
                limits=[(slow_ms, CRITICAL)],
                datasource=TEMPO,
                width=12,
            )
        )
        .with_panel(
            trace_view(
                "Trace $trace_id",
                "The spans of the trace whose id is in the Trace id box.",
                trace_by_id("$trace_id"),
            )
        )
    )
