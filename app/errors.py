"""JSON errors for both services: every 4xx names what is wrong, nothing answers HTML."""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any

import structlog
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from app.telemetry.http_metrics import UNMATCHED
from app.telemetry.request_hooks import logs_failure


class RequestError(Exception):
    """A client error to answer with ``status`` and a JSON body naming the ``field``."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def body(self) -> dict[str, str]:
        return {"error": self.message} | ({"field": self.field} if self.field else {})


#: Hooks, views and error handlers whose Flask wrapping a service keeps.
_SYNCED_FUNCTIONS = 256


class Service(Flask):
    """Flask as obslab's services run it: an unhandled exception is logged once, as JSON.

    Flask's own log of it is a plain-text traceback under the raw path, and paths carry
    customer ids. The request log line already carries the exception when telemetry is on;
    otherwise it is logged here, under the route template.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced = functools.lru_cache(maxsize=_SYNCED_FUNCTIONS)(super().ensure_sync)

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's answer, kept: Flask asks for every hook and view on every request, and
        inspects the function anew each time (about a microsecond)."""
        try:
            return self._synced(func)
        except TypeError:  # a callable that cannot be a key
            return super().ensure_sync(func)

    def log_exception(
        self,
        exc_info: tuple[type, BaseException, TracebackType] | tuple[None, None, None],
    ) -> None:
        if logs_failure(request.environ):
            return
        rule = request.url_rule
        structlog.get_logger("obslab.errors").error(
            "unhandled_exception",
            route=rule.rule if rule is not None else UNMATCHED,
            method=request.method,
            exc_info=exc_info,
        )


def init_app(app: Flask) -> None:
    @app.errorhandler(RequestError)
    def _request_error(error: RequestError):
        return jsonify(error.body()), error.status

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        body = {"error": (error.name or "error").lower(), "detail": error.description}
        response = jsonify(body)
        response.status_code = error.code or 500
        if error.code == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response
