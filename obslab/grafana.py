"""``obslab grafana sync``: push the lab's folder, datasources, dashboards and deploy marks.

Works against any Grafana reachable with a service-account token. Each object is read first
and written only when it differs from what the lab generates, so a second run makes no write
at all; deploy annotations are posted only for deploys Grafana does not have yet.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException

from dashboards.build import FOLDER_TITLE, FOLDER_UID, dashboard_models
from dashboards.datasources import NATIVE_URLS, BackendUrls, datasources
from dashboards.templating import DEPLOY_TAG
from obslab.commands import Commands
from obslab.errors import ObslabError

#: How long Grafana may take to answer one call, in seconds.
TIMEOUT = 10.0


class GrafanaSyncError(ObslabError):
    """Grafana refused a call or could not be reached; the message names which."""


@dataclass(frozen=True)
class Deploy:
    """One entry of the deploy history."""

    version: str
    previous_version: str
    commit: str
    model_version: str
    time: float
    who: str

    @classmethod
    def from_dict(cls, entry: Mapping[str, object]) -> Deploy:
        """Checks every field, naming the first one missing or mistyped."""

        def text(name: str) -> str:
            value = entry.get(name)
            if not isinstance(value, str):
                raise ValueError(f"deploy history entry {dict(entry)!r}: {name}: expected a string")
            return value

        time = entry.get("time")
        if isinstance(time, bool) or not isinstance(time, int | float) or time <= 0:
            raise ValueError(f"deploy history entry {dict(entry)!r}: time: expected unix seconds")
        return cls(
            version=text("version"),
            previous_version=text("previous_version"),
            commit=text("commit"),
            model_version=text("model_version"),
            time=float(time),
            who=text("who"),
        )

    @property
    def time_ms(self) -> int:
        return round(self.time * 1000)

    @property
    def tags(self) -> list[str]:
        return [DEPLOY_TAG, f"version:{self.version}"]

    @property
    def text(self) -> str:
        replaced = f" replacing {self.previous_version}" if self.previous_version else ""
        return (
            f"Deploy {self.version}{replaced} (commit {self.commit}, "
            f"model {self.model_version}) by {self.who}"
        )


@dataclass
class SyncReport:
    """What a sync created, updated and left alone, by ``kind uid``."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    annotations_posted: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.annotations_posted)

    def lines(self) -> list[str]:
        return [
            *(f"created {name}" for name in self.created),
            *(f"updated {name}" for name in self.updated),
            f"{len(self.unchanged)} unchanged; {self.annotations_posted} deploy annotations posted",
        ]


def connect(url: str, token: str, *, timeout: float = TIMEOUT) -> GrafanaApi:
    """A client for the Grafana at ``url`` (``http://host:3000``) with a bearer token."""
    return GrafanaApi.from_url(url.rstrip("/"), credential=token, timeout=timeout)


def sync(
    url: str,
    token: str,
    *,
    backends: BackendUrls = NATIVE_URLS,
    deploys: Iterable[Mapping[str, object]] = (),
    scrape_interval: str = "5s",
) -> SyncReport:
    """Make Grafana hold the lab's folder, datasources, dashboards and deploy annotations.

    A dashboard is pushed only when every datasource it reads is among ``backends`` (the
    logs-and-traces dashboard needs Tempo and Loki, which the native stack lacks).
    """
    history = [Deploy.from_dict(entry) for entry in deploys]
    api = connect(url, token)
    report = SyncReport()
    with _explained(url):
        _sync_folder(api, report)
        wanted = datasources(backends, scrape_interval=scrape_interval)
        for definition in wanted:
            _sync_datasource(api, definition, report)
        present = {definition["uid"] for definition in wanted}
        for uid, document in dashboard_models().items():
            if _datasource_uids(document) <= present:
                _sync_dashboard(api, uid, document, report)
        report.annotations_posted = _post_missing(api, history)
    return report


def post_deploy_annotation(url: str, token: str, deploy: Mapping[str, object]) -> bool:
    """Mark one deploy in Grafana unless it is already there; True when it was posted."""
    with _explained(url):
        return _post_missing(connect(url, token), [Deploy.from_dict(deploy)]) == 1


def _sync_folder(api: GrafanaApi, report: SyncReport) -> None:
    name = f"folder {FOLDER_UID}"
    existing = _get(lambda: api.folder.get_folder(FOLDER_UID))
    if existing is None:
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        report.created.append(name)
    elif existing.get("title") != FOLDER_TITLE:
        api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        report.updated.append(name)
    else:
        report.unchanged.append(name)


def _sync_datasource(api: GrafanaApi, definition: dict, report: SyncReport) -> None:
    uid = definition["uid"]
    name = f"datasource {uid}"
    existing = _get(lambda: api.datasource.get_datasource_by_uid(uid))
    if existing is None:
        api.datasource.create_datasource(definition)
        report.created.append(name)
    elif any(existing.get(key) != value for key, value in definition.items()):
        api.datasource.update_datasource_by_uid(uid, definition)
        report.updated.append(name)
    else:
        report.unchanged.append(name)


def _sync_dashboard(api: GrafanaApi, uid: str, document: dict, report: SyncReport) -> None:
    name = f"dashboard {uid}"
    existing = _get(lambda: api.dashboard.get_dashboard(uid))
    if existing is not None:
        # Grafana adds its own id and version to what it stores.
        stored = {k: v for k, v in existing["dashboard"].items() if k not in ("id", "version")}
        if stored == document and existing.get("meta", {}).get("folderUid") == FOLDER_UID:
            report.unchanged.append(name)
            return
    api.dashboard.update_dashboard(
        {
            "dashboard": document,
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "obslab grafana sync",
        }
    )
    (report.created if existing is None else report.updated).append(name)


def _post_missing(api: GrafanaApi, history: Sequence[Deploy]) -> int:
    if not history:
        return 0
    times = [deploy.time_ms for deploy in history]
    found = api.annotations.get_annotation(
        time_from=min(times),
        time_to=max(times),
        tags=[DEPLOY_TAG],
        ann_type="annotation",
        limit=10000,
    )
    known = {(item["time"], tuple(sorted(item.get("tags", [])))) for item in found}
    posted = 0
    for deploy in history:
        if (deploy.time_ms, tuple(sorted(deploy.tags))) in known:
            continue
        api.annotations.add_annotation(time_from=deploy.time_ms, tags=deploy.tags, text=deploy.text)
        known.add((deploy.time_ms, tuple(sorted(deploy.tags))))
        posted += 1
    return posted


def _datasource_uids(document: dict) -> set[str]:
    """The provisionable datasources a dashboard reads (Grafana's built-in one excluded)."""
    refs = [panel.get("datasource") for panel in document["panels"]]
    refs += [t.get("datasource") for panel in document["panels"] for t in panel.get("targets", [])]
    return {ref["uid"] for ref in refs if ref and ref.get("type") != "grafana"}


def _get(call: Callable[[], Any]) -> Any:
    """The object ``call`` reads, or None when Grafana answers 404."""
    try:
        return call()
    except GrafanaException as exc:
        if exc.status_code == 404:
            return None
        raise


@contextmanager
def _explained(url: str) -> Iterator[None]:
    """Turn client and transport errors into one-line GrafanaSyncErrors naming Grafana's URL."""
    try:
        yield
    except GrafanaException as exc:
        raise GrafanaSyncError(
            f"Grafana at {url} answered {exc.status_code}: {exc.message}"
        ) from None
    except requests.RequestException as exc:
        raise GrafanaSyncError(f"cannot reach Grafana at {url}: {exc}") from None


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
    push.add_argument("--prometheus-url", default=NATIVE_URLS.prometheus)
    push.add_argument("--alertmanager-url", default=NATIVE_URLS.alertmanager)
    push.add_argument("--tempo-url", help="Tempo's URL as Grafana reaches it; omit without Tempo")
    push.add_argument("--loki-url", help="Loki's URL as Grafana reaches it; omit without Loki")
    push.set_defaults(run=lambda args: _run_sync(args, deploy_history()))


def _run_sync(args: argparse.Namespace, deploys: Iterable[Mapping[str, object]]) -> int:
    backends = BackendUrls(
        prometheus=args.prometheus_url,
        alertmanager=args.alertmanager_url,
        tempo=args.tempo_url,
        loki=args.loki_url,
    )
    try:
        report = sync(args.url, args.token, backends=backends, deploys=deploys)
    except ValueError as exc:
        raise GrafanaSyncError(str(exc)) from None
    print("\n".join(report.lines()))
    return 0
