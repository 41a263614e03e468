"""JSON errors for both services: every 4xx names what is wrong, nothing answers HTML."""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException


class RequestError(Exception):
    """A client error to answer with ``status`` and a JSON body naming the ``field``."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def body(self) -> dict[str, str]:
        return {"error": self.message} | ({"field": self.field} if self.field else {})


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
