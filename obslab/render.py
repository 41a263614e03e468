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
from app.settings import SERVICE_DEFAULTS
from obslab.layout import StateLayout
from obslab.stackconfig import Profile, StackConfig
from obslab.topology import Instance, Topology

LOAD_BALANCED = ("scoring", "features")

#: The labels that say what a two-level alert is about (TargetDown's and ErrorBudgetBurn's job,
#: LatencyBudgetBurn's job and route, FeatureDrift's feature and model_version,
#: DeployPredictionShift's release): a page inhibits a ticket only when all of them match, and a
#: label both lack matches. ErrorBudgetBurn's ``window`` is left out: it is the alert's level
#: (fast pages, chronic tickets), not its subject.
SAME_SUBJECT = (
    "alertname",
    "job",
    "route",
    "feature",
    "model_version",
    "version",
    "previous_version",
)

#: Causes: while one of these pages, the symptoms it explains are held back.
CAUSES = ("TargetDown", "TargetAbsent", "DependencyFailing")
#: Symptoms: what a job's users see whatever the cause.
SYMPTOMS = ("HighErrorRate", "ErrorBudgetBurn", "HighLatency", "LatencyBudgetBurn")
#: Which jobs call which: a dead job in a key fails the jobs that depend on it, which then
#: report failing calls to it (DependencyFailing) among their symptoms.
DEPENDENTS = {"features": ("scoring",)}
#: Every alert a cause may hold back. Each waits the profile's ``symptom_group_wait`` before
#: its first notification, so that a cause seen a little later still arrives in time: a
#: stopping instance answers scrapes while it drains, as its callers' requests already fail.
WAITS_FOR_CAUSE = (*SYMPTOMS, "DependencyFailing")
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


def alertmanager_route(profile: Profile) -> dict[str, object]:
    """The routing tree, in alertmanager.yml's terms (obslab.k8s renders it for the operator).

    Children inherit what they leave out: the symptoms' route under each severity changes only
    how long a new group waits, for Alertmanager's group_wait "allows to wait for an inhibiting
    alert to arrive".
    """
    timing = profile.alertmanager

    def wait_for_cause() -> dict[str, object]:
        # A new dict for each parent: YAML would show a shared one as an anchor and alias.
        return {
            "matchers": [f'alertname=~"{"|".join(WAITS_FOR_CAUSE)}"'],
            "group_wait": timing.symptom_group_wait,
        }

    return {
        # An alert without a severity still reaches someone, as a ticket.
        "receiver": "oncall-ticket",
        "group_by": ["alertname", "job", "severity"],
        "group_wait": timing.group_wait,
        "group_interval": timing.group_interval,
        "repeat_interval": timing.repeat_interval,
        "routes": [
            # The always-firing Watchdog proves the path from rules to oncall works; it goes to
            # the dead-man's switch, never to the pages.
            {
                "receiver": "oncall-watchdog",
                "matchers": [f'alertname="{WATCHDOG}"'],
                "group_wait": "0s",
                "group_interval": timing.watchdog_group_interval,
                "repeat_interval": timing.watchdog_repeat_interval,
            },
            {
                "receiver": "oncall-page",
                "matchers": ['severity="page"'],
                "routes": [wait_for_cause()],
            },
            {
                "receiver": "oncall-ticket",
                "matchers": ['severity="ticket"'],
                "repeat_interval": timing.ticket_repeat_interval,
                "routes": [wait_for_cause()],
            },
        ],
    }


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
        "route": alertmanager_route(profile),
        # Pages and tickets reach the same webhook: oncall tells them apart by `severity`.
        "receivers": [
            receiver("oncall-page", "/webhook"),
            receiver("oncall-ticket", "/webhook"),
            receiver("oncall-watchdog", "/watchdog"),
        ],
        "inhibit_rules": inhibit_rules(),
    }
    return _header(profile.name) + yaml.safe_dump(document, sort_keys=False)


#: The largest request body nginx passes on: the services' own limit (``MAX_CONTENT_LENGTH``),
#: so nginx answers every oversized body itself, with a 413 that names the limit, and the
#: services' check stays behind it for a caller that reaches an instance directly.
BODY_LIMIT_BYTES = int(SERVICE_DEFAULTS["MAX_CONTENT_LENGTH"])  # type: ignore[call-overload]

#: Every error nginx can answer itself on these servers, with the services' error shape: the
#: ``error`` (the status's name, as the services give it) and a ``detail``. An instance's own
#: error answer passes through untouched (nginx does not intercept upstream errors).
#: 494 is nginx's code for a header too large: the client sees a 400.
EDGE_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad request", "the request could not be parsed"),
    404: ("not found", "the requested URL was not found on the server"),
    405: ("method not allowed", "this path does not take that method"),
    408: ("request timeout", "the request did not arrive in time"),
    411: ("length required", "a body needs a Content-Length"),
    413: (
        "request entity too large",
        f"the body is larger than the limit of {BODY_LIMIT_BYTES} bytes",
    ),
    414: ("request-uri too long", "the request line is longer than the limit"),
    494: ("bad request", "a request header, or all of them together, is larger than the limit"),
    500: ("internal server error", "the load balancer failed"),
    501: ("not implemented", "the transfer encoding is not supported"),
    502: ("bad gateway", "no {service} instance could be reached"),
    503: ("service unavailable", "no {service} instance is available"),
    504: ("gateway timeout", "no {service} instance answered in time"),
    505: ("http version not supported", "the HTTP version is not supported"),
}

#: Where nginx's error answers live: internal locations, so a request from outside for one
#: of them is a 404 (answered as JSON too).
EDGE_ERROR_PREFIX = "/_nginx/error/"

#: The statuses whose answer is about the request's body, so it names the field and the limit.
_BODY_ERRORS = {413: {"field": "body", "limit_bytes": BODY_LIMIT_BYTES}}


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
                    f'alertname=~"{"|".join(WAITS_FOR_CAUSE)}"',
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
    """nginx.conf: one load balancer per service, upstreams from the topology's instances;
    nginx's own errors answer JSON, as the services' do."""
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
    # The caller's request id when it is safe to write into a JSON string (printable ASCII
    # without quotes or backslashes, at most 128 characters, as the services accept), else
    # nginx's own. The instance gets the same id, so nginx's access log, its error answers and
    # the service's log lines agree.
    map $http_x_request_id $obslab_request_id {{
        "~^[ !#-\\[\\]-~]{{1,128}}$" $http_x_request_id;
        default $request_id;
    }}

    log_format obslab escape=json '{{"time":"$time_iso8601","listen":"$server_port",'
        '"method":"$request_method","uri":"$uri","status":$status,'
        '"request_time":$request_time,"upstream":"$upstream_addr",'
        '"upstream_status":"$upstream_status","request_id":"$obslab_request_id"}}';
    access_log {layout.log("nginx-access")} obslab;

    client_body_temp_path {temp / "client_body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};

    # A body within the limit stays in memory and passes through, so nginx never needs its
    # temp files; above the limit nginx answers the 413 itself (as JSON, below).
    client_max_body_size {BODY_LIMIT_BYTES};
    client_body_buffer_size {BODY_LIMIT_BYTES};
    proxy_max_temp_file_size 0;

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Request-ID $obslab_request_id;
    proxy_connect_timeout 1s;
    # A dead instance refuses the connection before the request is sent, so even a POST is
    # safely retried on the next instance; a request an instance has received is never
    # repeated (no non_idempotent).
    proxy_next_upstream error timeout;
{balancers}}}
"""


def edge_error_body(status: int, service: str, request_id: str) -> dict[str, object]:
    """The JSON body nginx answers ``status`` with in front of ``service``."""
    error, detail = EDGE_ERRORS[status]
    return {
        "error": error,
        "detail": detail.format(service=service),
        **_BODY_ERRORS.get(status, {}),
        "request_id": request_id,
    }


def _error_pages(service: str) -> str:
    """An ``error_page`` and an internal location per status in ``EDGE_ERRORS``."""
    pages = []
    for status in EDGE_ERRORS:
        # The id is nginx's variable, spliced in by nginx; json.dumps escapes everything else.
        body = json.dumps(edge_error_body(status, service, "$obslab_request_id"))
        body = body.replace("'", "\\'")  # inside nginx's single quotes
        # A location by URI, not a named one: nginx cannot redirect a request whose request
        # line it could not read (400, 414) to a named location.
        pages.append(f"""
        error_page {status} {EDGE_ERROR_PREFIX}{status};
        location = {EDGE_ERROR_PREFIX}{status} {{
            internal;
            default_type application/json;
            add_header X-Request-ID $obslab_request_id always;
            return {400 if status == 494 else status} '{body}\\n';
        }}
""")
    return "".join(pages)


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
{_error_pages(service)}    }}
"""
