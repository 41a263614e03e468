"""``obslab grafana sync`` against a fake Grafana that records every request.

Grafana cannot run on this machine, so the server here is a fake: a threaded ``http.server``
speaking just enough of Grafana's HTTP API (folders, datasources, dashboards, annotations)
for grafana-client, keeping what it is sent and answering like Grafana does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboards.datasources import COMPOSE_URLS
from obslab.grafana import Deploy, GrafanaSyncError, post_deploy_annotation, sync

TOKEN = "glsa_test-token"
WRITES = {"POST", "PUT", "DELETE", "PATCH"}
DEPLOYS = [
    {
        "version": "1.0.0",
        "previous_version": "",
        "commit": "a1b2c3d",
        "model_version": "m1",
        "time": 1_700_000_000,
        "who": "lab",
    },
    {
        "version": "1.1.0",
        "previous_version": "1.0.0",
        "commit": "e4f5a6b",
        "model_version": "m2",
        "time": 1_700_000_600.5,
        "who": "student",
    },
]


@dataclass
class Call:
    method: str
    path: str
    body: object


@dataclass
class FakeGrafana:
    folders: dict[str, dict] = field(default_factory=dict)
    datasources: dict[str, dict] = field(default_factory=dict)
    dashboards: dict[str, dict] = field(default_factory=dict)
    annotations: list[dict] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    url: str = ""

    def writes(self) -> list[Call]:
        return [call for call in self.calls if call.method in WRITES]


def _handler(grafana: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            url = urlsplit(self.path)
            grafana.calls.append(Call(self.command, url.path, body))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._answer(401, {"message": "Unauthorized"})
            status, answer = self._route(self.command, url.path.split("/")[2:], body, url.query)
            self._answer(status, answer)

        do_GET = do_POST = do_PUT = _handle

        def _route(
            self, method: str, parts: list[str], body: Any, query: str
        ) -> tuple[int, object]:
            not_found = (404, {"message": "not found"})
            match method, parts:
                case "GET", ["folders", uid]:
                    return (200, grafana.folders[uid]) if uid in grafana.folders else not_found
                case "POST", ["folders"]:
                    grafana.folders[body["uid"]] = {**body, "id": len(grafana.folders) + 1}
                    return 200, grafana.folders[body["uid"]]
                case "PUT", ["folders", uid]:
                    grafana.folders[uid]["title"] = body["title"]
                    return 200, grafana.folders[uid]
                case "GET", ["datasources", "uid", uid]:
                    if uid not in grafana.datasources:
                        return not_found
                    return 200, {"id": 7, "orgId": 1, "readOnly": False, **grafana.datasources[uid]}
                case "POST", ["datasources"]:
                    grafana.datasources[body["uid"]] = body
                    return 200, {"message": "Datasource added", "datasource": body}
                case "PUT", ["datasources", "uid", uid]:
                    grafana.datasources[uid] = body
                    return 200, {"message": "Datasource updated", "datasource": body}
                case "GET", ["dashboards", "uid", uid]:
                    return (
                        (200, grafana.dashboards[uid]) if uid in grafana.dashboards else not_found
                    )
                case "POST", ["dashboards", "db"]:
                    uid = body["dashboard"]["uid"]
                    version = grafana.dashboards.get(uid, {}).get("dashboard", {}).get("version", 0)
                    grafana.dashboards[uid] = {
                        "dashboard": {**body["dashboard"], "id": 3, "version": version + 1},
                        "meta": {"folderUid": body["folderUid"]},
                    }
                    return 200, {"status": "success", "uid": uid, "version": version + 1}
                case "GET", ["annotations"]:
                    params = parse_qs(query)
                    start, end = int(params["from"][0]), int(params["to"][0])
                    wanted = set(params.get("tags", []))
                    return 200, [
                        a
                        for a in grafana.annotations
                        if start <= a["time"] <= end and wanted <= set(a["tags"])
                    ]
                case "POST", ["annotations"]:
                    grafana.annotations.append({**body, "id": len(grafana.annotations) + 1})
                    return 200, {"message": "Annotation added", "id": len(grafana.annotations)}
            return not_found

    return Handler


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_first_sync_creates_the_folder_datasources_dashboards_and_deploy_marks(
    grafana: FakeGrafana,
) -> None:
    report = sync(grafana.url, TOKEN, deploys=DEPLOYS)

    assert grafana.folders["obslab"]["title"] == "obslab"
    assert {uid: source["url"] for uid, source in grafana.datasources.items()} == {
        "prometheus": "http://127.0.0.1:9090",
        "alertmanager": "http://127.0.0.1:9093",
    }
    # Without Tempo and Loki the logs-and-traces dashboard has nothing to show.
    assert sorted(grafana.dashboards) == [
        "obslab-alerts",
        "obslab-deployments",
        "obslab-model",
        "obslab-service",
    ]
    assert all(d["meta"]["folderUid"] == "obslab" for d in grafana.dashboards.values())
    marks = sorted((a["time"], a["text"]) for a in grafana.annotations)
    assert marks == [
        (1_700_000_000_000, "Deploy 1.0.0 (commit a1b2c3d, model m1) by lab"),
        (1_700_000_600_500, "Deploy 1.1.0 replacing 1.0.0 (commit e4f5a6b, model m2) by student"),
    ]
    assert all("deploy" in a["tags"] for a in grafana.annotations)
    assert report.created == [
        "folder obslab",
        "datasource prometheus",
        "datasource alertmanager",
        "dashboard obslab-service",
        "dashboard obslab-model",
        "dashboard obslab-deployments",
        "dashboard obslab-alerts",
    ]
    assert report.annotations_posted == 2


def test_second_sync_reads_only(grafana: FakeGrafana) -> None:
    sync(grafana.url, TOKEN, deploys=DEPLOYS)
    first_writes = len(grafana.writes())

    report = sync(grafana.url, TOKEN, deploys=DEPLOYS)

    assert len(grafana.writes()) == first_writes, grafana.writes()[first_writes:]
    assert not report.changed
    assert len(report.unchanged) == 7
    assert report.lines()[-1] == "7 unchanged; 0 deploy annotations posted"


def test_sync_repairs_only_what_drifted_and_posts_only_new_deploys(grafana: FakeGrafana) -> None:
    sync(grafana.url, TOKEN, deploys=DEPLOYS[:1])
    grafana.datasources["prometheus"]["url"] = "http://elsewhere:9090"
    grafana.dashboards["obslab-model"]["dashboard"]["title"] = "renamed by hand"
    before = len(grafana.calls)

    report = sync(grafana.url, TOKEN, deploys=DEPLOYS)

    writes = [(c.method, c.path) for c in grafana.calls[before:] if c.method in WRITES]
    assert writes == [
        ("PUT", "/api/datasources/uid/prometheus"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/annotations"),
    ]
    assert grafana.datasources["prometheus"]["url"] == "http://127.0.0.1:9090"
    assert grafana.dashboards["obslab-model"]["dashboard"]["title"] == "obslab / Model monitoring"
    assert report.updated == ["datasource prometheus", "dashboard obslab-model"]
    assert report.annotations_posted == 1


def test_compose_backends_add_tempo_loki_their_links_and_the_logs_dashboard(
    grafana: FakeGrafana,
) -> None:
    sync(grafana.url, TOKEN, backends=COMPOSE_URLS)

    assert set(grafana.datasources) == {"prometheus", "alertmanager", "tempo", "loki"}
    exemplars = grafana.datasources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplars[0]["datasourceUid"] == "tempo"
    assert grafana.datasources["tempo"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert "obslab-logs-traces" in grafana.dashboards


def test_post_deploy_annotation_posts_once(grafana: FakeGrafana) -> None:
    assert post_deploy_annotation(grafana.url, TOKEN, DEPLOYS[1]) is True
    assert post_deploy_annotation(grafana.url, TOKEN, DEPLOYS[1]) is False
    assert len(grafana.annotations) == 1
    (posted,) = [c.body for c in grafana.writes()]
    assert posted["time"] == 1_700_000_600_500
    assert posted["tags"] == ["deploy", "version:1.1.0"]


def test_a_wrong_token_is_one_clear_error(grafana: FakeGrafana) -> None:
    with pytest.raises(GrafanaSyncError, match=r"answered 401"):
        sync(grafana.url, "wrong-token")
    assert not grafana.writes()


def test_an_unreachable_grafana_is_one_clear_error(grafana: FakeGrafana) -> None:
    # Nothing listens on port 1 of the loopback: the connection is refused at once.
    url = grafana.url.rsplit(":", 1)[0] + ":1"
    with pytest.raises(GrafanaSyncError, match=r"cannot reach Grafana at http://127\.0\.0\.1:1"):
        sync(url, TOKEN)


@pytest.mark.parametrize(
    ("entry", "field_name"),
    [
        ({**DEPLOYS[0], "time": "yesterday"}, "time"),
        ({key: value for key, value in DEPLOYS[0].items() if key != "commit"}, "commit"),
        ({**DEPLOYS[0], "version": 2}, "version"),
    ],
)
def test_a_bad_deploy_history_entry_names_its_field(entry: dict, field_name: str) -> None:
    with pytest.raises(ValueError, match=rf": {field_name}: expected"):
        Deploy.from_dict(entry)
