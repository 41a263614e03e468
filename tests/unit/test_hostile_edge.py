"""Hostile input at the front door: through a real nginx, rendered as `obslab up` renders it,
in front of real scoring and features services. Nothing gets a 5xx, and every error, whether
nginx or a service answers it, is a JSON object saying what is wrong."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.scoring import create_app as create_scoring
from app.scoring.openapi import OPENAPI_PATH, document
from tests.unit.edge import Edge, nginx_in_front, port_of
from tests.unit.services import make_features, scoring_settings, served


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    home = tmp_path_factory.mktemp("hostile-edge")
    with served(make_features(home)) as features_url:
        scoring_app = create_scoring(scoring_settings(home, features_url))
        with (
            served(scoring_app) as scoring_url,
            nginx_in_front(
                home, scoring=[port_of(scoring_url)], features=[port_of(features_url)]
            ) as edge,
        ):
            yield edge


OPERATIONS = [
    (path, method.upper())
    for path, methods in document("any")["paths"].items()
    for method in methods
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_scoring_answers_as_documented_through_nginx(edge: Edge, path: str, method: str) -> None:
    operation = schemathesis.openapi.from_url(f"{edge.scoring}{OPENAPI_PATH}")[path][method]

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def answers_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=edge.scoring, checks=[not_a_server_error, response_schema_conformance]
        )

    answers_as_documented()


# Raw requests no client library would send. Each is complete (it ends its headers and has no
# body), so nginx answers at once rather than waiting for more.
_UNSAFE = "\r\n"
METHODS = st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]) | st.text(
    st.characters(codec="latin-1", exclude_characters=" " + _UNSAFE), min_size=1, max_size=12
)
TARGETS = st.sampled_from(["/predict", "/feedback", "/healthz", "/metrics", "/nginx_status"]) | (
    st.text(st.characters(codec="latin-1", exclude_characters=" " + _UNSAFE), max_size=300)
)
HEADER_NAMES = st.sampled_from(["Host", "X-Request-ID", "Cookie", "Accept", "Content-Type"]) | (
    st.text(st.characters(codec="ascii", categories=["L", "Nd"]), min_size=1, max_size=20)
)
HEADER_VALUES = st.text(st.characters(codec="latin-1", exclude_characters=_UNSAFE), max_size=200)
#: Headers that announce a body (which then never comes) are left out: nginx would wait for it.
BODY_HEADERS = {"content-length", "transfer-encoding", "expect"}


def _answer(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    return int(status_line.split()[1]), headers, body


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=METHODS,
    target=TARGETS,
    headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=5),
)
def test_any_request_line_and_headers_get_a_json_answer_below_500(
    edge: Edge, method: str, target: str, headers: list[tuple[str, str]]
) -> None:
    lines = [f"{method} {target} HTTP/1.1", "Host: lab"]
    lines += [f"{name}: {value}" for name, value in headers if name.lower() not in BODY_HEADERS]
    request = ("\r\n".join([*lines, "Connection: close", "", ""])).encode("latin-1")

    status, answer_headers, body = _answer(edge.scoring_port, request)

    assert status < 500, body
    if status >= 400 and method != "HEAD":
        assert answer_headers.get("content-type") == "application/json", body
        error = json.loads(body)
        assert isinstance(error, dict) and isinstance(error.get("error"), str), body
