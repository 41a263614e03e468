"""The Flask app class every service runs (``app.errors.Service``): Flask's behaviour, for less.

Flask asks ``ensure_sync`` about every hook and view on every request; a service keeps the
answers.
"""

from __future__ import annotations

import flask.app
import pytest
from flask import Flask

from app.errors import Service


def test_each_hook_and_view_is_inspected_once_and_runs_on_every_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inspected = []
    inspect = flask.app.iscoroutinefunction
    monkeypatch.setattr(
        flask.app, "iscoroutinefunction", lambda func: inspected.append(func) or inspect(func)
    )
    app = Service(__name__)
    ran = []

    @app.before_request
    def before() -> None:
        ran.append("before")

    @app.get("/")
    def index() -> str:
        ran.append("view")
        return "ok"

    client = app.test_client()
    for _ in range(3):
        assert client.get("/").data == b"ok"

    assert ran == ["before", "view"] * 3
    assert inspected.count(before) == 1
    assert inspected.count(index) == 1


def test_a_coroutine_function_gets_flask_s_own_answer() -> None:
    async def view() -> str:
        return "ok"

    def answer(app: Flask) -> object:
        try:
            wrapped = app.ensure_sync(view)
        except RuntimeError as refused:  # without asgiref, Flask refuses async views
            return ("refused", str(refused))
        return ("wrapped", wrapped is not view, wrapped())

    assert answer(Service(__name__)) == answer(Flask(__name__))


def test_a_callable_that_cannot_be_a_key_is_answered_too() -> None:
    class Handler:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> str:
            return "ok"

    handler = Handler()
    assert Service(__name__).ensure_sync(handler) is handler
