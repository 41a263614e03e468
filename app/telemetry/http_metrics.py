"""The RED metrics every service exposes: requests by route, method, status and version."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from app.routes import UNMATCHED

__all__ = ["LATENCY_BUCKETS", "STANDARD_METHODS", "UNMATCHED", "HttpMetrics", "method_label"]

#: Latency buckets shared by server and dependency histograms, in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: The status of a request whose handler raised: every route can answer it.
SERVER_ERROR = 500

#: The methods that are their own ``method`` label.
STANDARD_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})


def method_label(method: str) -> str:
    """The ``method`` label: a standard HTTP method, or ``OTHER`` so clients cannot add series."""
    return method if method in STANDARD_METHODS else "OTHER"


class HttpMetrics:
    """``http_requests_total`` and ``http_request_duration_seconds`` for one service version."""

    def __init__(self, registry: CollectorRegistry, version: str) -> None:
        self._version = version
        self._requests = Counter(
            "http_requests",
            "HTTP requests served, by URL rule template, method and status code.",
            ("route", "method", "status", "version"),
            registry=registry,
        )
        self._duration = Histogram(
            "http_request_duration_seconds",
            "Time to serve an HTTP request, by URL rule template and method.",
            ("route", "method", "version"),
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )

    def start_route(self, route: str, method: str) -> None:
        """Export ``route``'s server errors and its latency histogram at zero, before its first
        request.

        ``rate()`` and ``increase()`` read a counter's change between samples, so a series
        whose first sample is already 1 hides that first request: at a canary's handful of
        requests a second, its first failure. Label values known in advance are initialised,
        as client_python's documentation recommends.
        """
        self._requests.labels(route, method, str(SERVER_ERROR), self._version)
        self._duration.labels(route, method, self._version)

    def observe(
        self, route: str, method: str, status: int, seconds: float, trace_id: str | None
    ) -> None:
        """Count one request and time it; ``trace_id`` becomes the bucket's exemplar.

        ``route`` and ``method`` must come from closed sets (:func:`method_label`), so that
        no request can add a series.
        """
        self._requests.labels(route, method, str(status), self._version).inc()
        exemplar = {"trace_id": trace_id} if trace_id else None
        self._duration.labels(route, method, self._version).observe(seconds, exemplar)
