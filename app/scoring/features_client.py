"""Scoring's client for the features service: a timeout, one retry, and honest errors.

Each lookup is a CLIENT span named ``feature_lookup`` whose trace context travels in the
request's headers (``propagate.inject``), so the features service continues the trace. Its
attributes name the route template, never the URL: the URL carries the customer id, which is
why opentelemetry-instrumentation-requests (it records ``url.full``) is not used here.

A lookup is an idempotent GET, so one retry is safe: on a connection refused, on a pooled
connection the other end closed before answering (as nginx does to idle keep-alive
connections on every reload), and on a 502/503/504. Timeouts are not retried: a slow
dependency would only be asked twice as slowly.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from opentelemetry import propagate, trace
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
)
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.trace import SpanKind, StatusCode
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from app.errors import RequestError
from app.model.data import HISTORY_FEATURES

ROUTE = "/customers/<int:customer_id>/features"

#: The semantic conventions' attribute for a client request's route template.
URL_TEMPLATE = "url.template"

CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 2.0


class DependencyError(Exception):
    """The features service could not answer; ``outcome`` is ``error`` or ``timeout``."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome


class _RetryUnlessTimedOut(Retry):
    """urllib3's ``Retry``, except that a read timeout is final instead of a read error to
    retry. Other read errors (a connection dropped before the response) are retried."""

    def increment(self, *args: Any, **kwargs: Any) -> Retry:
        error = kwargs.get("error")
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(*args, **kwargs)


class FeaturesClient:
    """Looks up history over HTTP inside a ``feature_lookup`` client span."""

    def __init__(
        self,
        base_url: str,
        *,
        tracer: trace.Tracer | None = None,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = (CONNECT_TIMEOUT, read_timeout)
        self._tracer = tracer or trace.get_tracer(__name__)
        server = urlsplit(self._base)
        self._span_attributes = {
            HTTP_REQUEST_METHOD: "GET",
            SERVER_ADDRESS: server.hostname or "",
            SERVER_PORT: server.port or (443 if server.scheme == "https" else 80),
            URL_TEMPLATE: ROUTE,
        }
        self._session = requests.Session()
        # Proxies from the environment would be re-read on every call, and loopback needs none.
        self._session.trust_env = False
        retry = _RetryUnlessTimedOut(
            total=1,
            connect=1,
            read=1,
            status=1,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=(502, 503, 504),
            raise_on_status=False,
            backoff_factor=0,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=32)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def history(self, customer_id: int) -> dict[str, float | None]:
        """The customer's history features; raises ``DependencyError`` or a 422 RequestError."""
        url = f"{self._base}/customers/{customer_id}/features"
        failure: requests.RequestException | None = None
        with self._tracer.start_as_current_span(
            "feature_lookup", kind=SpanKind.CLIENT, attributes=self._span_attributes
        ) as span:
            headers: dict[str, str] = {}
            propagate.inject(headers)
            try:
                response = self._session.get(url, headers=headers, timeout=self._timeout)
            except requests.RequestException as error:
                # Marked here and raised after the span: the error's text holds the URL.
                failure = error
                span.set_attribute(ERROR_TYPE, type(error).__qualname__)
                span.set_status(StatusCode.ERROR, type(error).__name__)
            else:
                span.set_attribute(HTTP_RESPONSE_STATUS_CODE, response.status_code)
                if response.status_code >= 500:
                    span.set_attribute(ERROR_TYPE, str(response.status_code))
                    span.set_status(StatusCode.ERROR)
        if isinstance(failure, requests.Timeout):
            raise DependencyError("timeout", f"features timed out: {failure}")
        if failure is not None:
            raise DependencyError("error", f"features unreachable: {failure}")
        if response.status_code == 404:
            raise RequestError(422, "unknown customer", field="customer_id")
        if response.status_code != 200:
            raise DependencyError("error", f"features answered {response.status_code}")
        try:
            body = response.json()
            return {name: body.get(name) for name in HISTORY_FEATURES}
        except (ValueError, AttributeError):
            raise DependencyError("error", "features answered a body that is not JSON") from None
