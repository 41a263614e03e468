"""The front door of the live stack: nginx answers its own errors as JSON, with the right
status, as the services answer theirs."""

from __future__ import annotations

import time

import pytest
import requests

from obslab.render import BODY_LIMIT_BYTES
from tests.live.conftest import APPLICANT, LiveStack

pytestmark = pytest.mark.live


def _json(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    return body


def test_an_oversized_body_is_a_json_413_naming_the_limit(stack: LiveStack) -> None:
    response = requests.post(
        f"{stack.scoring}/predict",
        data=b"x" * (BODY_LIMIT_BYTES + 1),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )

    body = _json(response, 413)
    assert body["field"] == "body"
    assert body["limit_bytes"] == BODY_LIMIT_BYTES
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_an_unknown_path_is_a_json_404(stack: LiveStack) -> None:
    for url in (stack.scoring, stack.features):
        assert _json(requests.get(f"{url}/no/such/path", timeout=10), 404)


def test_with_every_scoring_instance_stopped_nginx_answers_a_json_502(stack: LiveStack) -> None:
    stack.stop("scoring")
    try:
        response = requests.post(f"{stack.scoring}/predict", json=APPLICANT, timeout=30)
    finally:
        stack.start("scoring")
        _wait_until_scored(stack)

    body = _json(response, 502)
    assert "scoring" in body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]


def _wait_until_scored(stack: LiveStack, timeout: float = 60) -> None:
    """nginx keeps an instance that failed out of its rotation for a while (its
    ``fail_timeout``), so the restarted instances take a few seconds to get requests again."""
    deadline = time.monotonic() + timeout
    while stack.predict().status_code != 200:
        if time.monotonic() > deadline:
            pytest.fail(f"scoring did not answer through nginx within {timeout:.0f}s of its start")
        time.sleep(0.5)
