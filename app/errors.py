"""JSON errors for both services: every 4xx names what is wrong, nothing answers HTML."""

from __future__ import annotations

from types import TracebackType

import structlog
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from app.routes import route_of

#: Set in a request's WSGI environ by whatever logs the request's own line, which then carries
#: the exception that ended it (the request telemetry, when on).
EXCEPTION_LOGGED_BY_REQUEST_LINE = "obslab.exception_logged_by_request_line"


class RequestError(Exception):
    """A client error to answer with ``status`` and a JSON body naming the ``field``."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def body(self) -> dict[str, str]:
        return {"error": self.message} | ({"field": self.field} if self.field else {})


class Service(Flask):
    """Flask as obslab's services run it: an unhandled exception is logged once, as JSON.

    Flask's own log of it is a plain-text traceback under the raw path, and paths carry
    customer ids. The request log line already carries the exception when telemetry is on;
    otherwise it is logged here, under the route template.
    """

    def log_exception(
        self,
        exc_info: tuple[type, BaseException, TracebackType] | tuple[None, None, None],
    ) -> None:
        if request.environ.get(EXCEPTION_LOGGED_BY_REQUEST_LINE):
            return
        structlog.get_logger("obslab.errors").error(
            "unhandled_exception",
            route=route_of(request),
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
