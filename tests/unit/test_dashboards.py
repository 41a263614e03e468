"""The generated dashboards and provisioning files: up to date, well-formed, cross-linked."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dashboards.build import (
    GRAFANA_DASHBOARDS_PATH,
    JSON_DIR,
    PROVISIONING_DIR,
    generated_files,
    prometheus_queries,
)
from dashboards.datasources import GRAFANA_UID, TRACE_ID_LABEL

# Panels that show text, log lines, spans or alert rules: no numbers, so no unit to give.
NON_NUMERIC_PANELS = {"text", "logs", "traces", "alertlist"}
# Grafana's built-in datasources; every Grafana has them.
BUILT_IN_UIDS = {GRAFANA_UID}

GENERATED = generated_files()
DASHBOARDS = {
    path.stem: json.loads(text) for path, text in GENERATED.items() if path.suffix == ".json"
}


def _provisioned() -> dict[str, dict]:
    text = (PROVISIONING_DIR / "datasources" / "obslab.yaml").read_text()
    # Grafana reads `$$` as a literal `$` in provisioning files.
    document = yaml.safe_load(text.replace("$$", "$"))
    return {source["uid"]: source for source in document["datasources"]}


PROVISIONED = _provisioned()


def _panels(document: dict) -> list[dict]:
    return [
        each
        for panel in document["panels"]
        for each in [panel, *panel.get("panels", [])]
        if each["type"] != "row"
    ]


def _datasource_refs(document: dict) -> list[tuple[str, dict]]:
    refs = []
    for panel in _panels(document):
        if "datasource" in panel:
            refs.append((f"panel {panel['title']!r}", panel["datasource"]))
        refs += [
            (f"panel {panel['title']!r} target", t["datasource"]) for t in panel.get("targets", [])
        ]
    refs += [
        (f"annotation {a['name']!r}", a["datasource"]) for a in document["annotations"]["list"]
    ]
    refs += [
        (f"variable {v['name']!r}", v["datasource"])
        for v in document["templating"].get("list", [])
        if "datasource" in v
    ]
    return refs


def test_committed_files_equal_what_the_code_generates() -> None:
    stale = [
        str(path)
        for path, text in GENERATED.items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"run `python -m dashboards` to regenerate: {stale}"
    committed = {path.name for path in JSON_DIR.glob("*.json")}
    assert committed == {f"{uid}.json" for uid in DASHBOARDS}, "a dashboard JSON has no generator"


def test_the_five_dashboards_exist() -> None:
    titles = {document["title"] for document in DASHBOARDS.values()}
    assert titles == {
        "obslab / Service overview",
        "obslab / Model monitoring",
        "obslab / Deployments",
        "obslab / Alerts",
        "obslab / Logs and traces",
    }


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_dashboard_is_grafana_dashboard_json(uid: str) -> None:
    document = DASHBOARDS[uid]
    assert isinstance(document["schemaVersion"], int) and document["schemaVersion"] >= 36
    assert document["uid"] == uid
    ids = [panel["id"] for panel in document["panels"]] + [
        nested["id"] for panel in document["panels"] for nested in panel.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert all(isinstance(i, int) and i > 0 for i in ids)
    for panel in _panels(document):
        ref_ids = [target["refId"] for target in panel.get("targets", [])]
        assert len(ref_ids) == len(set(ref_ids)) and all(ref_ids), panel["title"]
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_datasource_reference_resolves_to_a_provisioned_uid(uid: str) -> None:
    refs = _datasource_refs(DASHBOARDS[uid])
    assert refs
    for where, ref in refs:
        assert ref["uid"] in PROVISIONED.keys() | BUILT_IN_UIDS, f"{where}: {ref}"
        if ref["uid"] in PROVISIONED:
            assert ref["type"] == PROVISIONED[ref["uid"]]["type"], where


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_panel_has_a_description_unit_and_thresholds(uid: str) -> None:
    for panel in _panels(DASHBOARDS[uid]):
        assert panel.get("description", "").strip(), f"{panel['title']!r} has no description"
        if panel["type"] in NON_NUMERIC_PANELS:
            continue
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"{panel['title']!r} has no unit"
        assert defaults["thresholds"]["steps"], f"{panel['title']!r} has no thresholds"


def test_service_overview_has_the_variables_exemplars_and_deploy_marks() -> None:
    document = DASHBOARDS["obslab-service"]
    variables = [v["name"] for v in document["templating"].get("list", [])]
    assert variables == ["job", "instance", "route", "version"]
    latency = [p for p in _panels(document) if p["fieldConfig"]["defaults"].get("unit") == "s"]
    assert any(t["exemplar"] for p in latency for t in p["targets"])
    annotations = {a["datasource"]["type"]: a for a in document["annotations"]["list"]}
    assert "app_deploy_timestamp_seconds" in annotations["prometheus"]["expr"]
    assert annotations["prometheus"]["useValueForTime"] is True
    assert annotations["grafana"]["target"]["tags"] == ["deploy"]


def test_alerts_dashboard_reads_alert_state_and_the_oncall_pages() -> None:
    exprs = " ".join(expr for _, expr in prometheus_queries(DASHBOARDS["obslab-alerts"]))
    for series in ('ALERTS{alertstate="firing"', "ALERTS_FOR_STATE", "oncall_notifications_total"):
        assert series in exprs


def test_datasources_are_cross_linked() -> None:
    prometheus = PROVISIONED["prometheus"]["jsonData"]
    assert prometheus["exemplarTraceIdDestinations"] == [
        {"name": TRACE_ID_LABEL, "datasourceUid": "tempo", "urlDisplayLabel": "View trace"}
    ]
    traces_to_logs = PROVISIONED["tempo"]["jsonData"]["tracesToLogsV2"]
    assert traces_to_logs["datasourceUid"] == "loki"
    assert "${__trace.traceId}" in traces_to_logs["query"]
    (derived,) = PROVISIONED["loki"]["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == "tempo" and derived["matcherRegex"] == TRACE_ID_LABEL
    assert PROVISIONED["alertmanager"]["type"] == "alertmanager"


def test_dashboard_provider_reads_the_generated_json() -> None:
    document = yaml.safe_load((PROVISIONING_DIR / "dashboards" / "obslab.yaml").read_text())
    (provider,) = document["providers"]
    assert provider["options"]["path"] == GRAFANA_DASHBOARDS_PATH


def _as_static_promql(expr: str) -> str:
    """Grafana's variables replaced by values Prometheus accepts, to check the syntax alone."""
    expr = re.sub(r"\$__(rate_interval|range|interval|auto)\b", "1m", expr)
    return re.sub(r"\$\{?(\w+)(:\w+)?\}?", ".+", expr)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_promql_query_parses(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule; the live suite checks they return data."""
    rules = [
        {"record": f"dashboard:query_{index}:check", "expr": _as_static_promql(expr)}
        for index, (_, expr) in enumerate(
            q for document in DASHBOARDS.values() for q in prometheus_queries(document)
        )
        # label_values() is Grafana's variable syntax, not PromQL.
        if not expr.startswith("label_values(")
    ]
    assert len(rules) > 40
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
