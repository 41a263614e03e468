"""The RED metrics every service exposes: requests by route, method, status and version."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from app.telemetry import batch

#: Latency buckets shared by server and dependency histograms, in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: The ``route`` of a request that matched no URL rule; raw paths would explode cardinality.
UNMATCHED = "unmatched"

_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})


def method_label(method: str) -> str:
    """The ``method`` label: a standard HTTP method, or ``OTHER`` so clients cannot add series."""
    return method if method in _METHODS else "OTHER"


class HttpMetrics:
    """``http_requests_total`` and ``http_request_duration_seconds`` for one service version,
    updated in batches (:mod:`app.telemetry.batch`)."""

    def __init__(self, registry: CollectorRegistry, version: str) -> None:
        batch.attach(registry)
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
        # labels() takes a lock and builds a tuple key on every call; a request only needs a
        # dict lookup. Routes, methods and statuses are bounded, so this cache is too.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(
        self, route: str, method: str, status: int, seconds: float, trace_id: str | None
    ) -> None:
        """Count one request and time it; ``trace_id`` becomes the bucket's exemplar."""
        batch.later(self._record, route, method, status, seconds, trace_id)

    def _record(
        self, route: str, method: str, status: int, seconds: float, trace_id: str | None
    ) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self._requests.labels(route, method, str(status), self._version),
                self._duration.labels(route, method, self._version),
            )
            self._children[key] = children
        requests, duration = children
        batch.count((requests,))
        duration.observe(seconds, {"trace_id": trace_id} if trace_id else None)
