"""Deploy helpers: stand-in commits, canary weights and the Grafana deploy annotation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obslab.deploy import annotate, canary_weights, default_commit
from obslab.history import DeployRecord


def test_a_default_commit_is_stable_and_differs_per_version() -> None:
    assert default_commit("1.2.0") == default_commit("1.2.0")
    assert default_commit("1.2.0") != default_commit("1.2.1")
    assert len(default_commit("1.2.0")) == 7
    int(default_commit("1.2.0"), 16)


@given(percent=st.integers(1, 99), old_instances=st.integers(1, 8))
def test_canary_weights_give_the_canary_its_share(percent: int, old_instances: int) -> None:
    canary, old = canary_weights(percent, old_instances)

    assert canary >= 1 and old >= 1
    assert canary * 100 == percent * (canary + old * old_instances)


class _Recorder(BaseHTTPRequestHandler):
    """A stand-in for Grafana's annotation API: Grafana cannot run on this machine, so this
    server records what the client sends and answers as Grafana does."""

    requests: ClassVar[list[tuple[str, str, dict | None]]]

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, None))
        self._answer([])

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(("POST", self.path, body | {"auth": self.headers["Authorization"]}))
        self._answer({"id": 1, "message": "Annotation added"})

    def _answer(self, document: object) -> None:
        payload = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def grafana() -> Iterator[tuple[str, list]]:
    recorded: list = []
    handler = type("Recorder", (_Recorder,), {"requests": recorded})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", recorded
    finally:
        server.shutdown()
        server.server_close()


RECORD = DeployRecord("1.2.0", "1.1.0", "4acc7d8", "m2", 1_700_000_000.25, "ada", "rolling")


def test_a_deploy_is_annotated_in_grafana_when_configured(
    grafana, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    url, recorded = grafana
    monkeypatch.setenv("GRAFANA_URL", url)
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_test")

    annotate(RECORD)

    posts = [body for method, path, body in recorded if method == "POST"]
    assert [path for method, path, _ in recorded if method == "POST"] == ["/api/annotations"]
    assert posts[0]["time"] == 1_700_000_000_250
    assert "deploy" in posts[0]["tags"]
    assert "1.2.0" in posts[0]["text"] and "1.1.0" in posts[0]["text"]
    assert posts[0]["auth"] == "Bearer glsa_test"
    assert f"annotated the deploy in Grafana at {url}" in capsys.readouterr().out


def test_without_grafana_nothing_is_posted(grafana, monkeypatch: pytest.MonkeyPatch) -> None:
    url, recorded = grafana
    monkeypatch.setenv("GRAFANA_URL", url)
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)

    annotate(RECORD)

    assert recorded == []


def test_an_unreachable_grafana_is_a_warning(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("GRAFANA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_test")

    annotate(RECORD)

    assert "warning: deploy not annotated in Grafana" in capsys.readouterr().err
