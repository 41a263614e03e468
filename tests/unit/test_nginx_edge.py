"""nginx's own answers, from the config `obslab up` renders, in a real nginx: every error nginx
produces itself is JSON in the services' error shape, and an instance's answers pass through."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import requests

from obslab import render
from tests.unit.edge import Edge, nginx_in_front, port_of
from tests.unit.processes import free_port
from tests.unit.services import make_features, served


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """No scoring instance listens behind scoring's front door; a real features service
    listens behind features'."""
    home = tmp_path_factory.mktemp("edge")
    with (
        served(make_features(home)) as features_url,
        nginx_in_front(
            home, scoring=[free_port(), free_port()], features=[port_of(features_url)]
        ) as edge,
    ):
        yield edge


def _json_error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_a_body_over_the_limit_is_a_json_413_naming_the_field_and_the_limit(edge: Edge) -> None:
    limit = render.BODY_LIMIT_BYTES

    response = requests.post(
        f"{edge.scoring}/predict",
        data=b"x" * (limit + 1),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    body = _json_error(response, 413)
    assert body["field"] == "body"
    assert body["limit_bytes"] == limit
    assert str(limit) in body["detail"]


def test_a_body_at_the_limit_reaches_the_instance(edge: Edge) -> None:
    response = requests.post(
        f"{edge.features}/customers/1/features",
        data=b"x" * render.BODY_LIMIT_BYTES,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    # The service's own answer (it takes no POST there), not nginx's: no request_id field.
    assert response.status_code == 405
    assert "request_id" not in response.json()


def test_no_instance_to_reach_is_a_json_502_naming_the_service(edge: Edge) -> None:
    response = requests.post(f"{edge.scoring}/predict", json={}, timeout=10)

    body = _json_error(response, 502)
    assert body["error"] == "bad gateway"
    assert "scoring" in body["detail"]


def test_an_instances_own_answers_pass_through_untouched(edge: Edge) -> None:
    unknown_path = requests.get(f"{edge.features}/no/such/path", timeout=10)
    unknown_customer = requests.get(f"{edge.features}/customers/999999/features", timeout=10)

    # The service's own 404s: its shape, without nginx's request_id field.
    assert unknown_path.status_code == 404
    assert unknown_path.json()["error"] == "not found"
    assert "request_id" not in unknown_path.json()
    assert unknown_customer.status_code == 404
    assert "request_id" not in unknown_customer.json()


def test_a_safe_caller_request_id_is_kept_and_reaches_the_instance(edge: Edge) -> None:
    response = requests.get(
        f"{edge.features}/customers/1/features", headers={"X-Request-ID": "lab-42"}, timeout=10
    )
    failed = requests.get(f"{edge.scoring}/healthz", headers={"X-Request-ID": "lab-43"}, timeout=10)

    assert response.headers["X-Request-ID"] == "lab-42"
    assert _json_error(failed, 502)["request_id"] == "lab-43"


def test_a_request_id_unsafe_in_json_is_replaced(edge: Edge) -> None:
    response = requests.get(
        f"{edge.scoring}/healthz", headers={"X-Request-ID": 'a"b\\c'}, timeout=10
    )

    body = _json_error(response, 502)
    assert len(body["request_id"]) == 32
    int(body["request_id"], 16)


def test_nginx_error_locations_are_not_reachable_from_outside(edge: Edge) -> None:
    response = requests.get(f"{edge.scoring}{render.EDGE_ERROR_PREFIX}502", timeout=10)

    assert _json_error(response, 404)["error"] == "not found"


def test_a_method_the_status_page_does_not_take_is_a_json_405(edge: Edge) -> None:
    response = requests.post(f"{edge.scoring}/nginx_status", timeout=10)

    assert _json_error(response, 405)["error"] == "method not allowed"


def _raw(port: int, request: bytes) -> tuple[int, dict]:
    """Send ``request`` as it is (no client would) and read nginx's whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Content-Type"] == "application/json"
    return int(lines[0].split()[1]), json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "status", "error"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad request"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "bad request"),  # no Host
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request-uri too long"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n", 400, "bad request"),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "not implemented",
        ),
        (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505, "http version not supported"),
    ],
    ids=["garbage", "no-host", "long-uri", "large-header", "transfer-encoding", "http-version"],
)
def test_a_request_nginx_cannot_take_is_a_json_error(
    edge: Edge, request_bytes: bytes, status: int, error: str
) -> None:
    answered, body = _raw(edge.scoring_port, request_bytes)

    assert (answered, body["error"]) == (status, error)
    assert set(body) >= {"error", "detail", "request_id"}
