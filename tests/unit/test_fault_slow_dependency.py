"""slow-dependency holds an answer back only while someone waits for it.

Under gunicorn with a single request thread: if the fault kept sleeping after its caller gave
up, every request behind it (health checks, scrapes, the admin call that clears the fault)
would queue for the whole delay.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.faults import wait_unless_hung_up
from obslab.stack import gunicorn_argv
from obslab.stackconfig import load_stack
from tests.unit.processes import Process, clean_environ, free_port

TOKEN = "slow-dependency-test-token"
#: The longest delay the fault takes, twice every timeout below: a request that waits for
#: it fails the test.
DELAY_MS = 30_000
#: Generous: an answer that comes at all comes within it.
ANSWER_TIMEOUT = 15.0
#: A wait that only the caller's hanging up can end.
FOREVER = 3600.0


@pytest.fixture
def features(tmp_path: Path) -> Iterator[str]:
    """features under gunicorn with one request thread and the admin API on; its URL."""
    env = clean_environ() | {
        "OBSLAB_HOME": str(tmp_path / "home"),
        "OBSLAB_ADMIN_ENABLED": "true",
        "OBSLAB_ADMIN_TOKEN": TOKEN,
        "OBSLAB_TELEMETRY": "off",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = dataclasses.replace(load_stack().features, threads=1)
    process = Process("features", gunicorn_argv(service, port), env, tmp_path, f"{url}/readyz")
    try:
        yield url
    finally:
        process.stop()


def test_a_caller_that_gives_up_frees_the_thread_for_the_next_request(features: str) -> None:
    admin = {"Authorization": f"Bearer {TOKEN}"}
    injected = requests.post(
        f"{features}/admin/faults",
        json={"name": "slow-dependency", "params": {"delay_ms": DELAY_MS, "rate": 1.0}},
        headers=admin,
        timeout=ANSWER_TIMEOUT,
    )
    assert injected.status_code == 201, injected.text

    # A caller with a short read timeout, as scoring's: it gives up and closes.
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{features}/customers/17/features", timeout=(ANSWER_TIMEOUT, 0.5))

    # The only request thread must be free again, for the health check and the clearing.
    assert requests.get(f"{features}/healthz", timeout=ANSWER_TIMEOUT).status_code == 200
    cleared = requests.delete(
        f"{features}/admin/faults/slow-dependency", headers=admin, timeout=ANSWER_TIMEOUT
    )
    assert cleared.status_code == 200, cleared.text
    lookup = requests.get(f"{features}/customers/17/features", timeout=ANSWER_TIMEOUT)
    assert lookup.status_code == 200


def _waiting(caller: socket.socket, seconds: float) -> threading.Thread:
    waiter = threading.Thread(target=wait_unless_hung_up, args=(seconds, caller), daemon=True)
    waiter.start()
    return waiter


def test_the_wait_ends_when_the_caller_hangs_up() -> None:
    ours, theirs = socket.socketpair()
    with ours:
        waiter = _waiting(ours, FOREVER)
        theirs.close()
        waiter.join(ANSWER_TIMEOUT)
        assert not waiter.is_alive()


def test_the_wait_goes_on_while_the_caller_waits() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        waiter = _waiting(ours, FOREVER)
        waiter.join(0.5)
        assert waiter.is_alive()


def test_more_bytes_from_the_caller_do_not_end_the_wait() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        waiter = _waiting(ours, FOREVER)
        theirs.sendall(b"GET /next HTTP/1.1\r\n")
        waiter.join(0.5)
        assert waiter.is_alive()
        # and the pipelined bytes are still there for the server to read
        assert ours.recv(64, socket.MSG_PEEK) == b"GET /next HTTP/1.1\r\n"
