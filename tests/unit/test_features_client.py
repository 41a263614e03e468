"""Scoring's features client retries what is safe to retry, and nothing else.

The server here is a raw socket, not the features service: the failures under test (a
connection closed before any answer, an answer that never comes) are ones a healthy Flask
app cannot be made to produce on cue.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
import pytest

from app.model.data import HISTORY_FEATURES
from app.scoring.features_client import DependencyError, FeaturesClient

HISTORY = {name: 1.0 for name in HISTORY_FEATURES}


def _answer(connection: socket.socket) -> None:
    body = orjson.dumps(HISTORY)
    connection.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )


def _drop(connection: socket.socket) -> None:
    """What nginx does to an idle keep-alive connection on reload: close, answer nothing."""


def _stall(connection: socket.socket) -> None:
    time.sleep(1.0)


@contextmanager
def _server(*behaviours: Callable[[socket.socket], None]) -> Iterator[tuple[str, list[bytes]]]:
    """A server that treats its n-th request with ``behaviours[n]`` (the last one repeats);
    yields its URL and the request lines it read."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                requests.append(head.split(b"\r\n", 1)[0])
                behaviours[min(len(requests), len(behaviours)) - 1](connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", requests
    finally:
        listener.close()


def test_a_connection_closed_before_the_answer_is_retried_once() -> None:
    with _server(_drop, _answer) as (url, requests):
        assert FeaturesClient(url).history(7) == HISTORY
    assert requests == [b"GET /customers/7/features HTTP/1.1"] * 2


def test_two_dropped_connections_are_a_dependency_error() -> None:
    with _server(_drop) as (url, requests), pytest.raises(DependencyError) as raised:
        FeaturesClient(url).history(7)
    assert raised.value.outcome == "error"
    assert len(requests) == 2


def test_a_timeout_is_not_retried() -> None:
    with _server(_stall) as (url, requests), pytest.raises(DependencyError) as raised:
        FeaturesClient(url, read_timeout=0.2).history(7)
    assert raised.value.outcome == "timeout"
    assert len(requests) == 1
