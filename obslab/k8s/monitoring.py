"""What the Prometheus Operator and Grafana's sidecar read: monitors, rules, routes, dashboards.

Every lab lives in a namespace of its own, and one shared Prometheus and Alertmanager watch
them all. The operator keeps the labs apart, not code of ours:

- the shared Prometheus sets ``enforcedNamespaceLabel: namespace``, so the operator adds
  ``namespace="<the PrometheusRule's namespace>"`` to every selector of every rule and the
  ``namespace`` label to every alert and recorded series: a lab's rules see only its series;
- an AlertmanagerConfig is namespace-scoped: with the ``OnNamespace`` matcher strategy the
  operator puts ``namespace="<its namespace>"`` on its top route, so a lab's receiver gets only
  that lab's alerts, and its webhook reaches that lab's oncall service.

The one thing the operator leaves alone is the PromQL inside annotation templates (the
``query`` calls that name the last deploy in a description), so :func:`scope_queries` adds the
lab's namespace to each selector there; and each lab's runbook links go to its own oncall.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from alerts.rules import build_rules
from dashboards.build import dashboard_models
from dashboards.datasources import BackendUrls, datasources
from obslab.k8s.workloads import PART_OF, labels
from obslab.render import alertmanager_route, inhibit_rules
from obslab.stackconfig import Profile, StackConfig

OPERATOR_GROUP = "monitoring.coreos.com"
#: The shared monitoring stack's namespace and the names of its Prometheus and Alertmanager.
MONITORING_NAMESPACE = "monitoring"
MONITORING_NAME = "obslab"
#: The Services the operator creates for every Prometheus and Alertmanager it runs.
PROMETHEUS_URL = f"http://prometheus-operated.{MONITORING_NAMESPACE}.svc:9090"
ALERTMANAGER_URL = f"http://alertmanager-operated.{MONITORING_NAMESPACE}.svc:9093"
#: The label that selects obslab's monitors, rules and routes.
SELECTOR = {"matchLabels": {"app.kubernetes.io/part-of": PART_OF}}
#: The Secret (in each lab's namespace) holding the bearer token oncall expects.
TOKEN_SECRET = "oncall-token"
#: Prometheus's own figures under the demo load; see docs/kubernetes.md ("Resources").
PROMETHEUS_REQUESTS = {"cpu": "100m", "memory": "256Mi"}
SCRAPED_JOBS = ("scoring", "features", "oncall")

# A selector inside a query: a metric or recording-rule name opening a ``{...}`` matcher list,
# or a bare recording-rule name (they all hold a colon), not a function call.
_MATCHERS = re.compile(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\{")
_BARE_RECORD = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*:[A-Za-z0-9_:]*)\b(?![{(A-Za-z0-9_:])")
# The argument of a template ``query`` call: a quoted string or a printf with a raw string.
_QUOTED_QUERY = re.compile(r'query "((?:[^"\\]|\\.)*)"')
_PRINTF_QUERY = re.compile(r"query \(printf `([^`]*)`")


def _object(kind: str, name: str, spec: dict, version: str = "v1", **meta: object) -> dict:
    return {
        "apiVersion": f"{OPERATOR_GROUP}/{version}",
        "kind": kind,
        "metadata": {"name": name, "labels": labels(name), **meta},
        "spec": spec,
    }


def _scope_selectors(promql: str, namespace: str) -> str:
    scoped = _MATCHERS.sub(lambda m: f'{m.group(1)}{{namespace="{namespace}",', promql)
    return _BARE_RECORD.sub(lambda m: f'{m.group(1)}{{namespace="{namespace}"}}', scoped)


def scope_queries(template: str, namespace: str) -> str:
    """``template`` with ``namespace="<namespace>"`` on each selector of its ``query`` calls.

    Quoted queries become raw strings, so the matcher's quotes need no escaping. An empty
    namespace matches series without the label, as in promtool tests.
    """
    template = _QUOTED_QUERY.sub(
        lambda m: "query `" + m.group(1).replace('\\"', '"') + "`", template
    )
    template = re.sub(
        r"query `([^`]*)`",
        lambda m: "query `" + _scope_selectors(m.group(1), namespace) + "`",
        template,
    )
    return _PRINTF_QUERY.sub(
        lambda m: "query (printf `" + _scope_selectors(m.group(1), namespace) + "`", template
    )


def runbook_base(stack: StackConfig, namespace: str) -> str:
    """The runbook page of the lab's own oncall service."""
    return f"http://{stack.oncall.name}.{namespace}.svc:{stack.oncall.port}/runbook"


def rule_groups(profile: str, runbook: str, namespace: str) -> list[dict]:
    """The groups of ``alerts.rules`` for ``profile``, with links and queries for one lab.

    The rule generator's runbook base URL is the repository's runbook.md; each alert's anchor is
    kept and the page moves to ``runbook``.
    """
    groups = build_rules(profile)["groups"]
    for group in groups:
        for rule in group["rules"]:
            annotations = rule.get("annotations", {})
            for key, text in annotations.items():
                annotations[key] = scope_queries(text, namespace)
            if "runbook_url" in annotations:
                anchor = annotations["runbook_url"].rpartition("#")[2]
                annotations["runbook_url"] = f"{runbook}#{anchor}"
    return groups


def prometheus_rule(stack: StackConfig, profile: str, namespace: str) -> dict:
    groups = rule_groups(profile, runbook_base(stack, namespace), namespace)
    return _object("PrometheusRule", "obslab", {"groups": groups}, namespace=namespace)


def service_monitors(profile: Profile) -> list[dict]:
    """One ServiceMonitor per job; the operator names the job after the Service."""
    return [
        _object(
            "ServiceMonitor",
            job,
            {
                "selector": {"matchLabels": labels(job)},
                "endpoints": [
                    {"port": "http", "path": "/metrics", "interval": profile.scrape_interval}
                ],
            },
        )
        for job in SCRAPED_JOBS
    ]


def alertmanager_config(stack: StackConfig, profile: Profile, namespace: str) -> dict:
    """Pages and tickets to the lab's oncall webhook, Watchdog to its dead man's switch.

    The operator adds ``namespace="<namespace>"`` to the top route, so nothing but this lab's
    alerts ever reaches these receivers.
    """
    oncall = f"http://{stack.oncall.name}.{namespace}.svc:{stack.oncall.port}"

    def receiver(name: str, path: str) -> dict:
        return {
            "name": name,
            "webhookConfigs": [
                {
                    "url": f"{oncall}{path}",
                    "sendResolved": True,
                    "httpConfig": {
                        "authorization": {
                            "type": "Bearer",
                            "credentials": {"name": TOKEN_SECRET, "key": "token"},
                        }
                    },
                }
            ],
        }

    spec = {
        "route": _operator_route(alertmanager_route(profile)),
        "receivers": [
            receiver("oncall-page", "/webhook"),
            receiver("oncall-ticket", "/webhook"),
            receiver("oncall-watchdog", "/watchdog"),
        ],
        # The native stack's inhibitions: cause before symptom, acute before budget, page
        # before ticket (obslab.render.inhibit_rules).
        "inhibitRules": [
            {
                "sourceMatch": [_matcher(text) for text in rule["source_matchers"]],
                "targetMatch": [_matcher(text) for text in rule["target_matchers"]],
                **({"equal": rule["equal"]} if "equal" in rule else {}),
            }
            for rule in inhibit_rules()
        ],
    }
    return _object("AlertmanagerConfig", "obslab", spec, "v1alpha1", namespace=namespace)


#: alertmanager.yml's route keys, as the operator's Route spells them.
_ROUTE_KEYS = {
    "group_by": "groupBy",
    "group_wait": "groupWait",
    "group_interval": "groupInterval",
    "repeat_interval": "repeatInterval",
}


def _operator_route(route: Mapping[str, Any]) -> dict:
    """The native stack's routing tree (obslab.render.alertmanager_route) as an
    AlertmanagerConfig route: the same receivers, matchers and timing, children included."""
    converted: dict[str, object] = {}
    for key, value in route.items():
        if key == "matchers":
            converted[key] = [_matcher(text) for text in value]
        elif key == "routes":
            converted[key] = [_operator_route(child) for child in value]
        else:
            converted[_ROUTE_KEYS.get(key, key)] = value
    return converted


_MATCHER = re.compile(r'^(?P<name>\w+)(?P<type>=~|!~|!=|=)"(?P<value>.*)"$')


def _matcher(text: str) -> dict:
    """An Alertmanager matcher (``name=~"value"``) as an AlertmanagerConfig one."""
    match = _MATCHER.match(text)
    if match is None:
        raise ValueError(f"not a matcher: {text!r}")
    return {"name": match["name"], "value": match["value"], "matchType": match["type"]}


def grafana_config_maps() -> list[dict]:
    """Dashboards and datasources as ConfigMaps the kube-prometheus-stack sidecars load.

    Only dashboards whose datasources exist here: Loki and Tempo are not part of this
    rendering, so the logs-and-traces dashboard stays out.
    """
    sources = datasources(
        BackendUrls(prometheus=PROMETHEUS_URL, alertmanager=ALERTMANAGER_URL),
        scrape_interval="15s",
    )
    provided = {source["uid"] for source in sources} | {"-- Grafana --", "grafana"}
    maps = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "obslab-datasources",
                "labels": {**labels("obslab-datasources"), "grafana_datasource": "1"},
            },
            "data": {"obslab.yaml": json.dumps({"apiVersion": 1, "datasources": sources})},
        }
    ]
    for uid, model in sorted(dashboard_models().items()):
        if not _datasource_uids(model) <= provided:
            continue
        maps.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"{uid}-dashboard",
                    "labels": {**labels(f"{uid}-dashboard"), "grafana_dashboard": "1"},
                    # The chart's sidecar files it in this folder when folderAnnotation is set.
                    "annotations": {"grafana_folder": "obslab"},
                },
                "data": {f"{uid}.json": json.dumps(model, indent=1, sort_keys=True)},
            }
        )
    return maps


def _datasource_uids(node: object) -> set[str]:
    """Every datasource UID a dashboard model refers to; variables (``${...}``) excepted."""
    found: set[str] = set()
    if isinstance(node, dict):
        source = node.get("datasource")
        uid = source.get("uid") if isinstance(source, dict) else None
        if isinstance(uid, str) and not uid.startswith("$"):
            found.add(uid)
        for value in node.values():
            found |= _datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            found |= _datasource_uids(value)
    return found


def monitoring_stack(
    profile: Profile, remote_write_url: str | None, cluster: str | None
) -> list[dict]:
    """The shared Prometheus and Alertmanager, run by the operator, watching every lab."""
    name = f"{MONITORING_NAME}-prometheus"
    meta = {"namespace": MONITORING_NAMESPACE}
    prometheus_spec: dict[str, object] = {
        "replicas": 1,
        "serviceAccountName": name,
        "scrapeInterval": profile.scrape_interval,
        "evaluationInterval": profile.evaluation_interval,
        "serviceMonitorSelector": SELECTOR,
        "serviceMonitorNamespaceSelector": {},
        "podMonitorSelector": SELECTOR,
        "podMonitorNamespaceSelector": {},
        "ruleSelector": SELECTOR,
        "ruleNamespaceSelector": {},
        # What keeps the labs apart: every rule sees only its own namespace's series, and
        # every alert and recorded series carries the namespace.
        "enforcedNamespaceLabel": "namespace",
        "alerting": {
            "alertmanagers": [
                {
                    "namespace": MONITORING_NAMESPACE,
                    "name": "alertmanager-operated",
                    "port": "web",
                }
            ]
        },
        "retention": "15d",
        "resources": {"requests": PROMETHEUS_REQUESTS},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 2000},
    }
    if cluster:
        prometheus_spec["externalLabels"] = {"cluster": cluster}
    if remote_write_url:
        prometheus_spec["remoteWrite"] = [remote_write_spec(remote_write_url)]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MONITORING_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "labels": labels(name), **meta},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels(name)},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["services", "endpoints", "pods"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels(name)},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": name, "namespace": MONITORING_NAMESPACE}
            ],
        },
        _object("Prometheus", MONITORING_NAME, prometheus_spec, **meta),
        _object(
            "Alertmanager",
            MONITORING_NAME,
            {
                "replicas": 1,
                "alertmanagerConfigSelector": SELECTOR,
                "alertmanagerConfigNamespaceSelector": {},
                # The default, stated: each AlertmanagerConfig sees its own namespace's alerts.
                "alertmanagerConfigMatcherStrategy": {"type": "OnNamespace"},
            },
            **meta,
        ),
    ]


def remote_write_spec(url: str) -> dict[str, object]:
    """A ``remoteWrite`` entry for a Mimir- or Thanos-compatible receiver (its push URL)."""
    return {"url": url}
