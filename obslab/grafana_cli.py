"""``obslab grafana sync`` on the command line.

The sync itself (:mod:`obslab.grafana`) builds the dashboards as code and talks to Grafana
through the ``grafana`` extra, which the services' image leaves out. So this module loads it
only when the command runs: every other ``obslab`` command works without the extra, and this
one says what to install.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Mapping

from obslab.commands import Commands
from obslab.errors import ObslabError


def register(
    commands: Commands,
    deploy_history: Callable[[], Iterable[Mapping[str, object]]] | None = None,
) -> None:
    """Add ``grafana sync`` to the ``obslab`` command line (``commands`` of ``build_parser``).

    ``deploy_history`` returns the deploy history when the command runs; by default, the
    native stack's (``obslab.history``).
    """
    if deploy_history is None:
        from obslab.history import deploy_entries as deploy_history

    grafana = commands.add_parser("grafana", help="push dashboards and datasources to Grafana")
    actions = grafana.add_subparsers(dest="grafana_command", required=True, metavar="ACTION")
    push = actions.add_parser("sync", help="create or update the folder, datasources, dashboards")
    push.add_argument(
        "--url",
        default=os.environ.get("GRAFANA_URL"),
        required="GRAFANA_URL" not in os.environ,
        help="Grafana's base URL, e.g. http://localhost:3000 (default: $GRAFANA_URL)",
    )
    push.add_argument(
        "--token",
        default=os.environ.get("GRAFANA_TOKEN"),
        required="GRAFANA_TOKEN" not in os.environ,
        help="a service-account token, Editor or Admin (default: $GRAFANA_TOKEN, which "
        "keeps it out of the process list)",
    )
    push.add_argument("--prometheus-url", help="Prometheus as Grafana reaches it (default: native)")
    push.add_argument("--alertmanager-url", help="Alertmanager likewise (default: native)")
    push.add_argument("--tempo-url", help="Tempo's URL as Grafana reaches it; omit without Tempo")
    push.add_argument("--loki-url", help="Loki's URL as Grafana reaches it; omit without Loki")
    push.set_defaults(run=lambda args: _run_sync(args, deploy_history()))


def _run_sync(args: argparse.Namespace, deploys: Iterable[Mapping[str, object]]) -> int:
    try:
        from dashboards.datasources import NATIVE_URLS, BackendUrls
        from obslab.grafana import GrafanaSyncError, sync
    except ModuleNotFoundError as exc:
        raise ObslabError(
            f"it needs the grafana extra ({exc.name} is not installed): "
            "pip install 'obslab[grafana]', or run it from a `make setup` checkout"
        ) from None
    backends = BackendUrls(
        prometheus=args.prometheus_url or NATIVE_URLS.prometheus,
        alertmanager=args.alertmanager_url or NATIVE_URLS.alertmanager,
        tempo=args.tempo_url,
        loki=args.loki_url,
    )
    try:
        report = sync(args.url, args.token, backends=backends, deploys=deploys)
    except ValueError as exc:
        raise GrafanaSyncError(str(exc)) from None
    print("\n".join(report.lines()))
    return 0
