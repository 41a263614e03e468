"""Render the native stack's Prometheus, Alertmanager and nginx configs from stack.yaml.

Pure functions: they return file contents and touch nothing. Every path in the output is
absolute and under the state directory, so the processes run unprivileged from any directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import yaml

from alerts.rules import build_rules
from alerts.thresholds import duration_seconds
from obslab.layout import StateLayout
from obslab.stackconfig import Profile, StackConfig
from obslab.topology import Instance, Topology

LOAD_BALANCED = ("scoring", "features")

#: The labels that say what a two-level alert is about (TargetDown's and ErrorBudgetBurn's job,
#: LatencyBudgetBurn's job and route, FeatureDrift's feature and model_version): a page inhibits
#: a ticket only when all of them match, and a label both lack matches. ErrorBudgetBurn's
#: ``window`` is left out: it is the alert's level (fast pages, chronic tickets), not its subject.
SAME_SUBJECT = ("alertname", "job", "route", "feature", "model_version")

#: Causes: while one of these pages, the symptoms it explains are held back.
CAUSES = ("TargetDown", "TargetAbsent", "DependencyFailing")
#: Symptoms: what a job's users see whatever the cause.
SYMPTOMS = ("HighErrorRate", "ErrorBudgetBurn", "HighLatency", "LatencyBudgetBurn")
#: Which jobs call which: a dead job in a key fails the jobs that depend on it, which then
#: report failing calls to it (DependencyFailing) among their symptoms.
DEPENDENTS = {"features": ("scoring",)}
#: The acute alert of an SLO holds back the budget burn it causes (one page for one problem):
#: the burn pages on its own only for what the acute alert cannot see.
ACUTE = (
    ("HighErrorRate", "ErrorBudgetBurn", ("job",)),
    ("HighLatency", "LatencyBudgetBurn", ("job", "route")),
)

#: The always-firing alert Alertmanager forwards to the oncall receiver's dead-man's switch.
WATCHDOG = "Watchdog"


def _header(profile: str) -> str:
    return f"# Rendered by obslab from config/stack.yaml (profile {profile}); do not edit.\n"


def _local(port: int) -> str:
    return f"127.0.0.1:{port}"


def render_rules(profile: Profile, runbook_base_url: str) -> str:
    """The Prometheus rule file of ``profile``, built by ``alerts.rules``, its runbook links
    pointing at ``runbook_base_url``."""
    rules = build_rules(profile.name, runbook_base_url=runbook_base_url)
    return _header(profile.name) + yaml.safe_dump(rules, sort_keys=False)


def render_prometheus(stack: StackConfig, profile: Profile, layout: StateLayout) -> str:
    """prometheus.yml: the services come from file_sd files, so instances change without reload."""
    services = [
        {
            "job_name": service,
            "file_sd_configs": [{"files": [str(layout.targets_file(service))]}],
        }
        for service in LOAD_BALANCED
    ]
    singles = [
        {"job_name": job, "static_configs": [{"targets": [_local(port)]}]}
        for job, port in (
            ("oncall", stack.oncall.port),
            ("prometheus", stack.prometheus_port),
            ("alertmanager", stack.alertmanager_port),
        )
    ]
    document = {
        "global": {
            "scrape_interval": profile.scrape_interval,
            "evaluation_interval": profile.evaluation_interval,
        },
        "rule_files": [str(layout.rules_file)],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [_local(stack.alertmanager_port)]}]}]
        },
        "scrape_configs": services + singles,
    }
    return _header(profile.name) + yaml.safe_dump(document, sort_keys=False)


def render_targets(instances: Sequence[Instance]) -> str:
    """A file_sd target list: one group per instance."""
    groups = [{"targets": [_local(instance.port)], "labels": {}} for instance in instances]
    return json.dumps(groups, indent=2) + "\n"


def runbook_base_url(stack: StackConfig) -> str:
    """Where the native stack's oncall service serves alerts/runbook.md."""
    return f"http://{_local(stack.oncall.port)}/runbook"


def watchdog_timeout_seconds(profile: Profile) -> int:
    """How long oncall waits for the Watchdog before it pages: three of its repeat intervals,
    so that one late or lost notification never pages."""
    return round(3 * duration_seconds(profile.alertmanager.watchdog_repeat_interval))


def render_alertmanager(stack: StackConfig, profile: Profile, layout: StateLayout) -> str:
    """alertmanager.yml: pages interrupt, tickets wait a day between repeats, the Watchdog
    feeds oncall's dead-man's switch, and a cause holds back the symptoms it explains."""
    timing = profile.alertmanager
    oncall = f"http://{_local(stack.oncall.port)}"

    def receiver(name: str, path: str) -> dict[str, object]:
        return {
            "name": name,
            "webhook_configs": [
                {
                    "url": f"{oncall}{path}",
                    "send_resolved": True,
                    "http_config": {
                        "authorization": {
                            "type": "Bearer",
                            "credentials_file": str(layout.oncall_token),
                        }
                    },
                }
            ],
        }

    document = {
        "global": {"resolve_timeout": timing.resolve_timeout},
        "route": {
            # An alert without a severity still reaches someone, as a ticket.
            "receiver": "oncall-ticket",
            "group_by": ["alertname", "job", "severity"],
            "group_wait": timing.group_wait,
            "group_interval": timing.group_interval,
            "repeat_interval": timing.repeat_interval,
            "routes": [
                {
                    "receiver": "oncall-watchdog",
                    "matchers": [f'alertname="{WATCHDOG}"'],
                    "group_wait": "0s",
                    "group_interval": timing.watchdog_group_interval,
                    "repeat_interval": timing.watchdog_repeat_interval,
                },
                {"receiver": "oncall-page", "matchers": ['severity="page"']},
                {
                    "receiver": "oncall-ticket",
                    "matchers": ['severity="ticket"'],
                    "repeat_interval": timing.ticket_repeat_interval,
                },
            ],
        },
        # Pages and tickets reach the same webhook: oncall tells them apart by `severity`.
        "receivers": [
            receiver("oncall-page", "/webhook"),
            receiver("oncall-ticket", "/webhook"),
            receiver("oncall-watchdog", "/watchdog"),
        ],
        "inhibit_rules": inhibit_rules(),
    }
    return _header(profile.name) + yaml.safe_dump(document, sort_keys=False)


def inhibit_rules() -> list[dict[str, object]]:
    """Cause before symptom, acute before budget, page before ticket.

    Inhibition happens in Alertmanager, not in the rules: the symptoms still fire, and
    Alertmanager's API shows each held back by its cause (``status.inhibitedBy``).
    """
    causes = "|".join(CAUSES)
    symptoms = "|".join(SYMPTOMS)
    rules: list[dict[str, object]] = [
        # A two-level alert tickets first and pages when it worsens: once it pages, its
        # ticket is noise.
        {
            "source_matchers": ['severity="page"'],
            "target_matchers": ['severity="ticket"'],
            "equal": list(SAME_SUBJECT),
        },
        # A dead target or a failing dependency explains its own job's errors and latency.
        {
            "source_matchers": [f'alertname=~"{causes}"', 'severity="page"'],
            "target_matchers": [f'alertname=~"{symptoms}"'],
            "equal": ["job"],
        },
    ]
    # A dead job explains its dependents' symptoms, and their failing calls to it.
    for job, dependents in DEPENDENTS.items():
        rules.append(
            {
                "source_matchers": [
                    f'alertname=~"{"|".join(("TargetDown", "TargetAbsent"))}"',
                    'severity="page"',
                    f'job="{job}"',
                ],
                "target_matchers": [
                    f'alertname=~"{symptoms}|DependencyFailing"',
                    f'job=~"{"|".join(dependents)}"',
                ],
            }
        )
    for acute, burn, subject in ACUTE:
        rules.append(
            {
                "source_matchers": [f'alertname="{acute}"'],
                "target_matchers": [f'alertname="{burn}"'],
                "equal": list(subject),
            }
        )
    return rules


def render_nginx(stack: StackConfig, topology: Topology, layout: StateLayout) -> str:
    """nginx.conf: one load balancer per service, upstreams from the topology's instances."""
    temp = layout.nginx / "temp"
    balancers = "".join(
        _balancer(service, port, topology.instances_of(service))
        for service, port in (("scoring", stack.scoring.port), ("features", stack.features.port))
    )
    return f"""{_header(topology.profile)}
# Runs in the foreground under obslab's supervision; every path lives in the state directory.
daemon off;
worker_processes 1;
pid {layout.nginx / "nginx.pid"};
error_log stderr warn;

events {{
    worker_connections 1024;
}}

http {{
    log_format obslab escape=json '{{"time":"$time_iso8601","listen":"$server_port",'
        '"method":"$request_method","uri":"$uri","status":$status,'
        '"request_time":$request_time,"upstream":"$upstream_addr",'
        '"upstream_status":"$upstream_status","request_id":"$http_x_request_id"}}';
    access_log {layout.log("nginx-access")} obslab;

    client_body_temp_path {temp / "client_body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};

    # Bodies stay in memory and pass through, so the apps answer oversize requests
    # themselves (413 with a JSON body) and nginx never needs its temp files.
    client_max_body_size 1m;
    client_body_buffer_size 1m;
    proxy_max_temp_file_size 0;

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_connect_timeout 1s;
    # A dead instance refuses the connection before the request is sent, so even a POST is
    # safely retried on the next instance; a request an instance has received is never
    # repeated (no non_idempotent).
    proxy_next_upstream error timeout;
{balancers}}}
"""


def _balancer(service: str, port: int, instances: Sequence[Instance]) -> str:
    servers = "".join(
        f"        server {_local(instance.port)} weight={instance.weight};\n"
        for instance in instances
    )
    return f"""
    upstream {service} {{
{servers}        keepalive 16;
    }}

    server {{
        listen {_local(port)};

        location / {{
            proxy_pass http://{service};
        }}

        location = /nginx_status {{
            stub_status;
            access_log off;
        }}
    }}
"""
