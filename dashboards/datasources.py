"""The lab's Grafana datasources: fixed UIDs, cross-linked, the same for provisioning and sync.

Dashboards reference datasources by these UIDs only, so one set of dashboard JSON works in
the compose Grafana (provisioned from files) and in any Grafana ``obslab grafana sync`` fills.
The links follow one investigation: a latency exemplar opens its trace in Tempo, a trace opens
its logs in Loki, and a log line's ``trace_id`` opens the trace again.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.models.dashboard import DataSourceRef

PROMETHEUS_UID = "prometheus"
TEMPO_UID = "tempo"
LOKI_UID = "loki"
ALERTMANAGER_UID = "alertmanager"
#: Grafana's own annotation store; every Grafana has it, nothing provisions it.
GRAFANA_UID = "-- Grafana --"

PROMETHEUS = DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
TEMPO = DataSourceRef(type_val="tempo", uid=TEMPO_UID)
LOKI = DataSourceRef(type_val="loki", uid=LOKI_UID)
GRAFANA = DataSourceRef(type_val="grafana", uid=GRAFANA_UID)

#: The exemplar label carrying the trace id (the services' exemplars, ``{"trace_id": ...}``).
TRACE_ID_LABEL = "trace_id"


@dataclass(frozen=True)
class BackendUrls:
    """Where Grafana reaches each backend; Tempo and Loki are absent from the native stack."""

    prometheus: str
    alertmanager: str
    tempo: str | None = None
    loki: str | None = None


NATIVE_URLS = BackendUrls(prometheus="http://127.0.0.1:9090", alertmanager="http://127.0.0.1:9093")
COMPOSE_URLS = BackendUrls(
    prometheus="http://prometheus:9090",
    alertmanager="http://alertmanager:9093",
    tempo="http://tempo:3200",
    loki="http://loki:3100",
)


def datasources(urls: BackendUrls, *, scrape_interval: str = "5s") -> list[dict[str, object]]:
    """Datasource definitions as Grafana's HTTP API takes them; links only to backends present.

    ``scrape_interval`` becomes Prometheus's ``timeInterval``, so ``$__rate_interval`` always
    spans enough scrapes for ``rate()``.
    """
    prometheus_json: dict[str, object] = {"httpMethod": "POST", "timeInterval": scrape_interval}
    if urls.tempo is not None:
        prometheus_json["exemplarTraceIdDestinations"] = [
            {"name": TRACE_ID_LABEL, "datasourceUid": TEMPO_UID, "urlDisplayLabel": "View trace"}
        ]
    found = [
        _datasource("Prometheus", "prometheus", PROMETHEUS_UID, urls.prometheus, prometheus_json),
        _datasource(
            "Alertmanager",
            "alertmanager",
            ALERTMANAGER_UID,
            urls.alertmanager,
            # Prometheus, not Grafana, evaluates the lab's rules and sends its alerts.
            {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
        ),
    ]
    if urls.tempo is not None:
        tempo_json: dict[str, object] = {"nodeGraph": {"enabled": True}, "search": {"hide": False}}
        if urls.loki is not None:
            tempo_json["lokiSearch"] = {"datasourceUid": LOKI_UID}
            tempo_json["tracesToLogsV2"] = {
                "datasourceUid": LOKI_UID,
                # Log lines are stamped with the request's time; a span's window may miss the
                # line written just after it ends.
                "spanStartTimeShift": "-1m",
                "spanEndTimeShift": "1m",
                "customQuery": True,
                "query": '{${__tags}} | trace_id = "${__trace.traceId}"',
                "tags": [{"key": "service.name", "value": "service_name"}],
            }
        found.append(_datasource("Tempo", "tempo", TEMPO_UID, urls.tempo, tempo_json))
    if urls.loki is not None:
        loki_json: dict[str, object] = {}
        if urls.tempo is not None:
            # The collector turns each line's trace_id into the record's trace context, which
            # Loki keeps as structured metadata: a label to Grafana, not text to match.
            loki_json["derivedFields"] = [
                {
                    "name": TRACE_ID_LABEL,
                    "matcherType": "label",
                    "matcherRegex": TRACE_ID_LABEL,
                    "datasourceUid": TEMPO_UID,
                    "url": "${__value.raw}",
                    "urlDisplayLabel": "View trace",
                }
            ]
        found.append(_datasource("Loki", "loki", LOKI_UID, urls.loki, loki_json))
    return found


def _datasource(
    name: str, type_: str, uid: str, url: str, json_data: dict[str, object]
) -> dict[str, object]:
    return {
        "name": name,
        "type": type_,
        "uid": uid,
        "url": url,
        "access": "proxy",
        "isDefault": uid == PROMETHEUS_UID,
        "jsonData": json_data,
    }
