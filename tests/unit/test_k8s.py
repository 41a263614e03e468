"""The Kubernetes rendering, validated where no cluster runs.

- Kubernetes objects against the API's OpenAPI schemas (kubernetes-validate, strict: an
  unknown field is an error) for Kubernetes ``K8S_VERSION``.
- Prometheus Operator objects against the operator's CRD schemas, as the pydantic models of
  cloudcoil-models-prometheus-operator (generated from the CRDs of operator v0.80.1): types,
  patterns and enums checked on validation, unknown fields found by a round trip.
- The PrometheusRule's groups with the real promtool: ``check rules`` and the promtool unit
  tests of alerts/tests.
- kustomize (kubectl's built-in) builds every overlay, where kubectl is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.prometheus_operator import v1, v1alpha1

from alerts.rules import RULES_FILE
from alerts.thresholds import duration_seconds, load_profile
from app.settings import SERVICE_DEFAULTS
from obslab import cli, compose, render
from obslab.k8s.layout import LAB_NAMESPACE, render_files, student_namespace
from obslab.k8s.monitoring import (
    ALERTMANAGER_URL,
    PROMETHEUS_URL,
    TOKEN_SECRET,
    rule_groups,
    runbook_base,
    scope_queries,
)
from obslab.k8s.options import DEPLOY_DIR, RenderOptions
from obslab.k8s.workloads import RELEASE_ANNOTATIONS, rollout_patch
from obslab.oncall.deadman import DEFAULT_TIMEOUT_SECONDS
from obslab.stackconfig import load_stack

#: The Kubernetes version the manifests are validated for (kubectl here is 1.32 too).
K8S_VERSION = "1.32.0"
OPERATOR_MODELS = {
    "PrometheusRule": v1.PrometheusRule,
    "ServiceMonitor": v1.ServiceMonitor,
    "Prometheus": v1.Prometheus,
    "Alertmanager": v1.Alertmanager,
    "AlertmanagerConfig": v1alpha1.AlertmanagerConfig,
}
PROMTOOL_TESTS = sorted((RULES_FILE.parent / "tests").glob("*.yml"))
APPS = ("scoring", "features", "oncall")


def documents(files: dict[Path, str]) -> list[tuple[Path, dict]]:
    """Every Kubernetes object in ``files`` (kustomization files are kustomize's, not objects)."""
    found = []
    for path, text in files.items():
        if path.name == "kustomization.yaml":
            continue
        found += [(path, document) for document in yaml.safe_load_all(text) if document]
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[Path, str]:
    return render_files()


@pytest.fixture(scope="module")
def objects(rendered: dict[Path, str]) -> list[tuple[Path, dict]]:
    return documents(rendered)


def of_kind(objects: list[tuple[Path, dict]], kind: str, folder: str = "") -> list[dict]:
    return [doc for path, doc in objects if doc["kind"] == kind and str(path).startswith(folder)]


class _KustomizeOutput(yaml.SafeLoader):
    """kustomize writes ``matchType: =`` unquoted: a string to Go's YAML, where YAML 1.1
    (PyYAML) reads a bare ``=`` as its ``value`` tag."""


_KustomizeOutput.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)


def kustomize(folder: Path) -> list[dict]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.load_all(result.stdout, Loader=_KustomizeOutput) if doc]


needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (for its built-in kustomize) is not installed"
)


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not on PATH: run `make setup` (Debian package prometheus)")
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


# --- generated, committed, current ------------------------------------------------------------


def test_committed_manifests_are_current(rendered: dict[Path, str]) -> None:
    committed = {
        path.relative_to(DEPLOY_DIR): path.read_text(encoding="utf-8")
        for path in DEPLOY_DIR.rglob("*.yaml")
    }
    stale = sorted(
        str(p) for p in rendered.keys() | committed.keys() if rendered.get(p) != committed.get(p)
    )
    assert not stale, f"run `obslab render k8s` to regenerate deploy/k8s: {stale}"


def test_obslab_render_k8s_writes_the_rendering(tmp_path: Path) -> None:
    assert cli.main(["render", "k8s", "--out", str(tmp_path), "--students", "2"]) == 0
    written = {p.relative_to(tmp_path): p.read_text() for p in tmp_path.rglob("*.yaml")}
    assert written == render_files(options=RenderOptions(students=2))
    # Rendered smaller, the class loses the namespaces it no longer has.
    assert cli.main(["render", "k8s", "--out", str(tmp_path), "--students", "1"]) == 0
    assert not (tmp_path / "overlays" / "class" / student_namespace(2)).exists()
    assert (tmp_path / "overlays" / "class" / student_namespace(1) / "rules.yaml").is_file()


# --- schemas ----------------------------------------------------------------------------------


def test_kubernetes_objects_validate_against_the_api_schemas(
    objects: list[tuple[Path, dict]],
) -> None:
    checked = 0
    for path, document in objects:
        if document["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        try:
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path}: {document['kind']} {document['metadata']['name']}: {error}")
        checked += 1
    assert checked >= 20


def test_the_api_schemas_reject_an_unknown_field(objects: list[tuple[Path, dict]]) -> None:
    deployment = json.loads(json.dumps(of_kind(objects, "Deployment", "base")[0]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def crd_problems(document: dict) -> list[str]:
    """What the operator's CRD schema rejects in ``document``: invalid values, and any field
    the schema does not know (the model drops it, so the round trip loses it)."""
    model = OPERATOR_MODELS[document["kind"]]
    try:
        parsed = model.model_validate(document)
    except ValueError as error:
        return [str(error)]
    back = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    problems = [f"unknown field {where}" for where in _lost(document, back, document["kind"])]
    if document["kind"] == "AlertmanagerConfig":
        problems += _child_route_problems(document["spec"]["route"], "route")
    return problems


def _child_route_problems(parent: dict, where: str) -> list[str]:
    """The CRD leaves child routes untyped; the operator reads each one, at every depth, as a
    Route."""
    problems = []
    for index, route in enumerate(parent.get("routes", [])):
        at = f"{where} {index}"
        try:
            kept = v1alpha1.Route.model_validate(route).model_dump(
                by_alias=True, exclude_unset=True, mode="json"
            )
        except ValueError as error:
            problems.append(f"{at}: {error}")
            continue
        problems += [f"unknown field {lost}" for lost in _lost(route, kept, at)]
        problems += _child_route_problems(route, at)
    return problems


def _lost(given: object, kept: object, where: str) -> list[str]:
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [where]
        return [
            lost
            for key, value in given.items()
            for lost in (
                [f"{where}.{key}"] if key not in kept else _lost(value, kept[key], f"{where}.{key}")
            )
        ]
    if isinstance(given, list):
        if not isinstance(kept, list) or len(kept) != len(given):
            return [where]
        return [
            lost for i, item in enumerate(given) for lost in _lost(item, kept[i], f"{where}[{i}]")
        ]
    return []


def test_operator_objects_match_their_crds(objects: list[tuple[Path, dict]]) -> None:
    kinds = set()
    for path, document in objects:
        if not document["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        assert not crd_problems(document), f"{path}: {crd_problems(document)}"
        kinds.add(document["kind"])
    assert kinds == set(OPERATOR_MODELS)


def test_the_crd_check_rejects_typos_and_bad_values(objects: list[tuple[Path, dict]]) -> None:
    rule = json.loads(json.dumps(of_kind(objects, "PrometheusRule")[0]))
    rule["spec"]["groups"][0]["rules"][0]["recrod"] = "x"
    assert crd_problems(rule) == ["unknown field PrometheusRule.spec.groups[0].rules[0].recrod"]
    config = json.loads(json.dumps(of_kind(objects, "AlertmanagerConfig")[0]))
    config["spec"]["inhibitRules"][0]["sourceMatch"][0]["matchType"] = "=="
    assert crd_problems(config)
    config = json.loads(json.dumps(of_kind(objects, "AlertmanagerConfig")[0]))
    config["spec"]["route"]["routes"][0]["matchers"][0]["matchType"] = "=="
    assert crd_problems(config)
    config["spec"]["route"]["routes"][0]["matchers"][0] = {"name": "a", "value": "b", "op": "="}
    assert crd_problems(config) == ["unknown field route 0.matchers[0].op"]
    config = json.loads(json.dumps(of_kind(objects, "AlertmanagerConfig")[0]))
    config["spec"]["route"]["routes"][1]["routes"][0]["group_wait"] = "1s"
    assert crd_problems(config) == ["unknown field route 1 0.group_wait"]


@needs_kubectl
@pytest.mark.parametrize("overlay", ["monitoring", "overlays/lab", "overlays/class"])
def test_kustomize_builds_each_overlay_into_valid_objects(overlay: str) -> None:
    built = kustomize(DEPLOY_DIR / overlay)
    for document in built:
        if document["apiVersion"].startswith("monitoring.coreos.com/"):
            assert not crd_problems(document)
        else:
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    namespaced = [
        d for d in built if d["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    ]
    assert all(d["metadata"].get("namespace") for d in namespaced)


# --- rules with the real promtool -------------------------------------------------------------


def test_every_prometheus_rule_passes_promtool_check(
    objects: list[tuple[Path, dict]], tmp_path: Path
) -> None:
    rules = of_kind(objects, "PrometheusRule")
    assert len(rules) == 1 + RenderOptions().students
    for index, rule in enumerate(rules):
        path = tmp_path / f"rules-{index}.yml"
        path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        result = promtool("check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_prometheus_rule_has_the_prod_rules(objects: list[tuple[Path, dict]]) -> None:
    (rule,) = [
        r for r in of_kind(objects, "PrometheusRule") if r["metadata"]["namespace"] == LAB_NAMESPACE
    ]
    interval = load_profile("prod").duration("interval")
    assert {group["interval"] for group in rule["spec"]["groups"]} == {interval}
    native = yaml.safe_load(RULES_FILE.read_text())
    names = [r.get("alert") or r["record"] for g in native["groups"] for r in g["rules"]]
    rendered = [r.get("alert") or r["record"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert rendered == names


def test_promtool_unit_tests_pass_on_the_kubernetes_rules(tmp_path: Path) -> None:
    """alerts/tests run against the Kubernetes rendering of the demo profile, its runbook links
    moved to oncall's page. Test series have no namespace label, and ``namespace=""`` matches a
    series without it, so the scoped description queries must still find the deploy."""
    stack = load_stack()
    runbook = runbook_base(stack, "")
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump({"groups": rule_groups("demo", runbook, "")})
    )
    native_base = load_profile("demo").text("runbook_base_url")
    for path in PROMTOOL_TESTS:
        text = path.read_text(encoding="utf-8").replace(native_base, runbook)
        document = yaml.safe_load(text)
        document["rule_files"] = ["rules.yml"]
        (tmp_path / path.name).write_text(yaml.safe_dump(document, sort_keys=False))
    result = promtool("test", "rules", *(p.name for p in PROMTOOL_TESTS), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_scope_queries_adds_the_namespace_to_every_selector() -> None:
    text = (
        '{{ with query "time() - obslab:app_deploy_timestamp_seconds:latest" }}x{{ end }} '
        "{{ with query (printf `max by (model_version) "
        "(model_baseline_accuracy{model_version=%q})` "
        "$labels.model_version) }}y{{ end }}"
    )
    assert scope_queries(text, "s1") == (
        '{{ with query `time() - obslab:app_deploy_timestamp_seconds:latest{namespace="s1"}` }}'
        "x{{ end }} {{ with query (printf `max by (model_version) "
        '(model_baseline_accuracy{namespace="s1",model_version=%q})` $labels.model_version) }}'
        "y{{ end }}"
    )


# --- the class: namespaces kept apart -------------------------------------------------------------


SELECTOR_IN_QUERY = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}")


def test_class_of_three_keeps_every_rule_and_route_in_its_namespace() -> None:
    files = render_files(options=RenderOptions(students=3))
    students = [student_namespace(i) for i in (1, 2, 3)]
    stack = load_stack()
    monitoring = {d["kind"]: d for _, d in documents(files) if str(_).startswith("monitoring/")}
    # The operator scopes each rule and each AlertmanagerConfig to its own namespace.
    assert monitoring["Prometheus"]["spec"]["enforcedNamespaceLabel"] == "namespace"
    assert monitoring["Alertmanager"]["spec"]["alertmanagerConfigMatcherStrategy"] == {
        "type": "OnNamespace"
    }
    alert_names = None
    for namespace in students:
        folder = Path("overlays/class") / namespace
        overlay = {p: t for p, t in files.items() if p.parent == folder}
        kustomization = yaml.safe_load(overlay[folder / "kustomization.yaml"])
        assert kustomization["namespace"] == namespace
        own = documents(overlay)
        others = [n for n in students if n != namespace]
        text = "".join(overlay.values())
        assert not any(other in text for other in others)

        (rule,) = [d for _, d in own if d["kind"] == "PrometheusRule"]
        assert rule["metadata"]["namespace"] == namespace
        alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
        assert alert_names in (None, [a["alert"] for a in alerts])
        alert_names = [a["alert"] for a in alerts]
        for alert in alerts:
            annotations = alert["annotations"]
            assert annotations["runbook_url"].startswith(f"{runbook_base(stack, namespace)}#")
            for field in annotations.values():
                queries = re.findall(r"query \(?(?:printf )?`([^`]*)`", field)
                # Every query call is one the scoping understood.
                assert len(queries) == len(re.findall(r"\bquery\b", field)), field
                for query in queries:
                    selectors = SELECTOR_IN_QUERY.findall(query)
                    assert selectors, query
                    for _, matchers in selectors:
                        assert matchers.startswith(f'namespace="{namespace}"'), query
                assert 'query "' not in field

        (config,) = [d for _, d in own if d["kind"] == "AlertmanagerConfig"]
        assert config["metadata"]["namespace"] == namespace
        receivers = {r["name"]: r for r in config["spec"]["receivers"]}
        routes = config["spec"]["route"]["routes"]
        assert {config["spec"]["route"]["receiver"], *(r["receiver"] for r in routes)} <= set(
            receivers
        )
        for receiver in receivers.values():
            for hook in receiver["webhookConfigs"]:
                assert hook["url"].startswith(f"http://oncall.{namespace}.svc:")
                assert hook["httpConfig"]["authorization"]["credentials"]["name"] == TOKEN_SECRET
        # Nothing in a lab's routes reaches past its namespace: no matcher on namespace that
        # could widen what the operator's matcher admits.
        for route in routes:
            assert all(m["name"] != "namespace" for m in route.get("matchers", []))
    assert alert_names


def test_watchdog_goes_to_the_dead_mans_switch_and_severities_split(
    objects: list[tuple[Path, dict]],
) -> None:
    (config,) = [
        d
        for d in of_kind(objects, "AlertmanagerConfig")
        if d["metadata"]["namespace"] == LAB_NAMESPACE
    ]
    routes = config["spec"]["route"]["routes"]
    receivers = {r["name"]: r["webhookConfigs"][0]["url"] for r in config["spec"]["receivers"]}
    first = routes[0]
    assert first["matchers"] == [{"name": "alertname", "value": "Watchdog", "matchType": "="}]
    assert receivers[first["receiver"]].endswith("/watchdog")
    by_severity = {r["matchers"][0]["value"]: r["receiver"] for r in routes[1:]}
    assert set(by_severity) == {"page", "ticket"}
    assert all(receivers[name].endswith("/webhook") for name in by_severity.values())
    assert by_severity["page"] != by_severity["ticket"]


def test_the_operator_routes_time_as_the_native_stack_does(
    objects: list[tuple[Path, dict]],
) -> None:
    """The prod profile's timing: oncall's dead-man's switch (its default timeout, three
    Watchdog repeats) hears the Watchdog in time, tickets repeat daily, and symptoms wait for
    their cause."""
    (config,) = [
        d
        for d in of_kind(objects, "AlertmanagerConfig")
        if d["metadata"]["namespace"] == LAB_NAMESPACE
    ]
    timing = load_stack().profile("prod").alertmanager
    watchdog, page, ticket = config["spec"]["route"]["routes"]
    assert 3 * duration_seconds(watchdog["repeatInterval"]) <= DEFAULT_TIMEOUT_SECONDS
    assert watchdog["groupInterval"] == timing.watchdog_group_interval
    assert ticket["repeatInterval"] == "24h"
    assert "repeatInterval" not in page
    for severity in (page, ticket):
        (symptoms,) = severity["routes"]
        assert symptoms["groupWait"] == timing.symptom_group_wait
        assert symptoms["matchers"] == [
            {"name": "alertname", "value": "|".join(render.WAITS_FOR_CAUSE), "matchType": "=~"}
        ]


# --- workloads ------------------------------------------------------------------------------------


def test_apps_have_probes_resources_budgets_and_monitors(objects: list[tuple[Path, dict]]) -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment", "base")}
    budgets = {d["metadata"]["name"]: d for d in of_kind(objects, "PodDisruptionBudget", "base")}
    services = {d["metadata"]["name"]: d for d in of_kind(objects, "Service", "base")}
    monitors = {d["metadata"]["name"]: d for d in of_kind(objects, "ServiceMonitor", "base")}
    limit = int(load_profile("prod").number("memory.limit_bytes"))
    for app in APPS:
        pod = deployments[app]["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"].keys() == {"cpu", "memory"}
        assert container["resources"]["limits"]["memory"] == f"{limit // 2**20}Mi"
        pod_labels = pod["metadata"]["labels"]
        assert budgets[app]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert services[app]["spec"]["selector"].items() <= pod_labels.items()
        monitor = monitors[app]["spec"]
        assert (
            monitor["selector"]["matchLabels"].items()
            <= services[app]["metadata"]["labels"].items()
        )
        assert monitor["endpoints"][0]["port"] == services[app]["spec"]["ports"][0]["name"]
    (hpa,) = of_kind(objects, "HorizontalPodAutoscaler", "base")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "scoring"
    assert hpa["spec"]["minReplicas"] == load_stack().scoring.instances
    # The autoscaler owns scoring's count; features keeps stack.yaml's.
    assert "replicas" not in deployments["scoring"]["spec"]
    assert deployments["features"]["spec"]["replicas"] == load_stack().features.instances


def resolve_env(pod_template: dict) -> dict[str, str]:
    """What the kubelet would set: literal values, and annotations through the downward API."""
    annotations = pod_template["metadata"].get("annotations", {})
    resolved = {}
    for var in pod_template["spec"]["containers"][0]["env"]:
        if "value" in var:
            resolved[var["name"]] = var["value"]
            continue
        path = var["valueFrom"].get("fieldRef", {}).get("fieldPath", "")
        if match := re.fullmatch(r"metadata\.annotations\['(.+)'\]", path):
            resolved[var["name"]] = annotations.get(match.group(1), "")
    return resolved


def merge(patch: object, target: object) -> object:
    """A strategic-merge patch of maps only, as kubectl applies to pod-template annotations."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return patch
    merged = dict(target)
    for key, value in patch.items():
        merged[key] = merge(value, target.get(key))
    return merged


def test_a_rollout_changes_the_release_and_a_restart_does_not(
    objects: list[tuple[Path, dict]],
) -> None:
    # The names the services read (app/settings.py), so a renamed setting fails here.
    assert {name.removeprefix("OBSLAB_") for name in RELEASE_ANNOTATIONS.values()} <= set(
        SERVICE_DEFAULTS
    )
    (scoring,) = [
        d for d in of_kind(objects, "Deployment", "base") if d["metadata"]["name"] == "scoring"
    ]
    template = scoring["spec"]["template"]
    release = load_stack().scoring.release
    env = resolve_env(template)
    assert env["OBSLAB_SERVICE_VERSION"] == release.version
    assert env["OBSLAB_COMMIT"] == release.commit
    assert float(env["OBSLAB_DEPLOYED_AT"]) == RenderOptions().deployed_at > 0

    # `kubectl rollout restart` only stamps restartedAt: new pods, the same release and time.
    restart = {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-07T06:00:00Z"}
                }
            }
        }
    }
    restarted = merge(restart, scoring)["spec"]["template"]
    assert restarted != template
    assert resolve_env(restarted) == env

    # A deploy changes the pod template's release: a new ReplicaSet with the new build info.
    patch = rollout_patch("1.1.0", "4f2a9c1", "m2", release.version, 1_800_000_000)
    deployed = merge(patch, scoring)["spec"]["template"]
    after = resolve_env(deployed)
    assert (after["OBSLAB_SERVICE_VERSION"], after["OBSLAB_PREVIOUS_VERSION"]) == ("1.1.0", "1.0.0")
    assert after["OBSLAB_DEPLOYED_AT"] == "1800000000"
    assert {k: v for k, v in after.items() if k not in RELEASE_ANNOTATIONS.values()} == {
        k: v for k, v in env.items() if k not in RELEASE_ANNOTATIONS.values()
    }


def test_a_declared_shift_belongs_to_its_rollout_alone(objects: list[tuple[Path, dict]]) -> None:
    (scoring,) = [
        d for d in of_kind(objects, "Deployment", "base") if d["metadata"]["name"] == "scoring"
    ]
    assert resolve_env(scoring["spec"]["template"])["OBSLAB_EXPECTED_SCORE_SHIFT"] == "0"

    declared = merge(rollout_patch("1.4.0", "e206000", "m3", "1.0.0", 1_800_000_000, True), scoring)
    assert resolve_env(declared["spec"]["template"])["OBSLAB_EXPECTED_SCORE_SHIFT"] == "1"

    # A strategic merge keeps what a patch leaves out: the next rollout must reset it.
    later = merge(rollout_patch("1.3.0", "1f2d3c4", "m2", "1.4.0", 1_800_000_600), declared)
    assert resolve_env(later["spec"]["template"])["OBSLAB_EXPECTED_SCORE_SHIFT"] == "0"


# --- Grafana --------------------------------------------------------------------------------------


def test_dashboards_and_datasources_are_config_maps_for_the_sidecar(
    objects: list[tuple[Path, dict]],
) -> None:
    maps = of_kind(objects, "ConfigMap", "monitoring")
    dashboards = [m for m in maps if m["metadata"]["labels"].get("grafana_dashboard") == "1"]
    (sources,) = [m for m in maps if m["metadata"]["labels"].get("grafana_datasource") == "1"]
    provisioned = yaml.safe_load(next(iter(sources["data"].values())))
    urls = {s["uid"]: s["url"] for s in provisioned["datasources"]}
    assert urls == {"prometheus": PROMETHEUS_URL, "alertmanager": ALERTMANAGER_URL}
    assert "$" not in json.dumps(provisioned)
    assert len(dashboards) >= 4
    for config_map in dashboards:
        ((key, text),) = config_map["data"].items()
        model = json.loads(text)
        assert key == f"{model['uid']}.json"


# --- remote_write ---------------------------------------------------------------------------------


def test_remote_write_is_opt_in_and_valid(objects: list[tuple[Path, dict]]) -> None:
    (prometheus,) = of_kind(objects, "Prometheus")
    assert "remoteWrite" not in prometheus["spec"]
    files = render_files(
        options=RenderOptions(
            remote_write_url="http://mimir.example:9009/api/v1/push", cluster="c1"
        )
    )
    (written,) = [d for _, d in documents(files) if d["kind"] == "Prometheus"]
    assert written["spec"]["remoteWrite"] == [{"url": "http://mimir.example:9009/api/v1/push"}]
    assert written["spec"]["externalLabels"] == {"cluster": "c1"}
    assert not crd_problems(written)


def test_compose_remote_write_is_opt_in_and_promtool_accepts_it(tmp_path: Path) -> None:
    stack = load_stack()
    assert "remote_write" not in yaml.safe_load(compose.prometheus_config(stack))
    url = "http://mimir.example:9009/api/v1/push"
    config = compose.prometheus_config(stack, url).replace(
        f"{compose.CONTAINER_PROMETHEUS_DIR}/", f"{tmp_path}/"
    )
    assert yaml.safe_load(config)["remote_write"] == [{"url": url}]
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(compose.RULES, tmp_path / compose.RULES.name)
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_lab_holds_back_what_the_native_alertmanager_holds_back(
    objects: list[tuple[Path, dict]],
) -> None:
    """Cause before symptom, acute before budget, page before ticket: the same inhibitions
    as the native and compose Alertmanagers, in the AlertmanagerConfig's own matcher form."""

    def rendered(matcher: dict) -> str:
        return f'{matcher["name"]}{matcher["matchType"]}"{matcher["value"]}"'

    expected = [
        (rule["source_matchers"], rule["target_matchers"], rule.get("equal"))
        for rule in render.inhibit_rules()
    ]
    for config in of_kind(objects, "AlertmanagerConfig"):
        found = [
            (
                [rendered(m) for m in rule["sourceMatch"]],
                [rendered(m) for m in rule["targetMatch"]],
                rule.get("equal"),
            )
            for rule in config["spec"]["inhibitRules"]
        ]
        assert found == expected
