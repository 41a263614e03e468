"""Render the docker compose stack's Prometheus and Alertmanager configs from stack.yaml.

The native stack's renderers (``obslab.render``) produce the documents: jobs, intervals, rule
groups, routes and receivers. Only the addresses change under compose, so this module moves
each one into the compose network: scoring and features replicas are found by DNS (so
``docker compose up --scale scoring=3`` needs no config change), every other target by its
service name. ``python -m obslab.compose`` writes the files; a unit test checks they are current.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from obslab.layout import StateLayout
from obslab.render import LOAD_BALANCED, render_alertmanager, render_prometheus, render_rules
from obslab.stackconfig import REPO_ROOT, StackConfig, load_stack

PROFILE = "demo"
PROMETHEUS_DIR = REPO_ROOT / "config" / "prometheus"
ALERTMANAGER_DIR = REPO_ROOT / "config" / "alertmanager"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.compose.yml"
RULES = PROMETHEUS_DIR / "obslab.rules.yml"
ALERTMANAGER_CONFIG = ALERTMANAGER_DIR / "alertmanager.compose.yml"

#: Where docker-compose.yml mounts config/prometheus in the Prometheus container.
CONTAINER_PROMETHEUS_DIR = "/etc/prometheus/obslab"
#: Where the Alertmanager container's entrypoint writes $ONCALL_TOKEN (its writable data dir).
CONTAINER_ONCALL_TOKEN = "/alertmanager/oncall.token"

_HEADER = (
    "# Rendered by `python -m obslab.compose` from config/stack.yaml (profile {profile}) for\n"
    "# docker-compose.yml; do not edit. The native stack renders the same documents with local\n"
    "# addresses.\n"
)


def _dump(document: dict) -> str:
    return _HEADER.format(profile=PROFILE) + yaml.safe_dump(document, sort_keys=False)


def _service_address(address: str, stack: StackConfig) -> str:
    """``127.0.0.1:<port>`` of a native service -> ``<service>:<port>`` on the compose network."""
    owners = {
        stack.oncall.port: "oncall",
        stack.prometheus_port: "prometheus",
        stack.alertmanager_port: "alertmanager",
        stack.scoring.port: "scoring",
        stack.features.port: "features",
    }
    host, port = address.rsplit(":", 1)
    if host != "127.0.0.1" or int(port) not in owners:
        raise ValueError(f"no compose service listens on {address}")
    return f"{owners[int(port)]}:{port}"


def prometheus_config(stack: StackConfig, remote_write_url: str | None = None) -> str:
    """prometheus.compose.yml; with ``remote_write_url``, every sample also goes to that
    Mimir- or Thanos-compatible push endpoint (docs/kubernetes.md says which rules follow)."""
    profile = stack.profile(PROFILE)
    layout = StateLayout(Path("/unused"))
    document = yaml.safe_load(render_prometheus(stack, profile, layout))
    document["rule_files"] = [f"{CONTAINER_PROMETHEUS_DIR}/{RULES.name}"]
    for alertmanagers in document["alerting"]["alertmanagers"]:
        for group in alertmanagers["static_configs"]:
            group["targets"] = [_service_address(t, stack) for t in group["targets"]]
    ports = {"scoring": stack.scoring.port, "features": stack.features.port}
    for job in document["scrape_configs"]:
        name = job["job_name"]
        if name in LOAD_BALANCED:
            # Each replica listens on the service's port; Docker's DNS answers one A record
            # per replica, so Prometheus scrapes them all, whatever --scale says.
            del job["file_sd_configs"]
            job["dns_sd_configs"] = [
                {"names": [name], "type": "A", "port": ports[name], "refresh_interval": "5s"}
            ]
        else:
            for group in job["static_configs"]:
                group["targets"] = [_service_address(t, stack) for t in group["targets"]]
    if remote_write_url:
        document["remote_write"] = [{"url": remote_write_url}]
    return _dump(document)


def runbook_base_url(stack: StackConfig) -> str:
    """The runbook as a browser on the Docker host reaches it (Grafana and Alertmanager's UI
    open runbook links there): oncall's published port on localhost."""
    return f"http://localhost:{stack.oncall.port}/runbook"


def alertmanager_config(stack: StackConfig) -> str:
    profile = stack.profile(PROFILE)
    document = yaml.safe_load(render_alertmanager(stack, profile, StateLayout(Path("/unused"))))
    for receiver in document["receivers"]:
        for webhook in receiver["webhook_configs"]:
            scheme, rest = webhook["url"].split("://", 1)
            address, path = rest.split("/", 1)
            webhook["url"] = f"{scheme}://{_service_address(address, stack)}/{path}"
            webhook["http_config"]["authorization"]["credentials_file"] = CONTAINER_ONCALL_TOKEN
    return _dump(document)


def rendered_files(
    stack: StackConfig | None = None, remote_write_url: str | None = None
) -> dict[Path, str]:
    """Every compose config file and its content (ports without $OBSLAB_PORT_OFFSET)."""
    stack = stack or load_stack()
    return {
        PROMETHEUS_CONFIG: prometheus_config(stack, remote_write_url),
        RULES: render_rules(stack.profile(PROFILE), runbook_base_url(stack)),
        ALERTMANAGER_CONFIG: alertmanager_config(stack),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m obslab.compose", description=__doc__)
    parser.add_argument(
        "--remote-write-url",
        help="also send every sample to this Mimir- or Thanos-compatible push URL "
        "(the committed file has none)",
    )
    args = parser.parse_args(argv)
    for path, content in rendered_files(remote_write_url=args.remote_write_url).items():
        if not path.exists() or path.read_text() != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
