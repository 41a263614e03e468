"""The Flask extension wiring metrics, request logs and traces into a service."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder

from app.settings import SERVICE_DEFAULTS
from app.telemetry.build_info import register_build_info
from app.telemetry.http_metrics import HttpMetrics, method_label
from app.telemetry.request_hooks import RequestTelemetry
from app.telemetry.tracing import build_tracer_provider, default_traces_dir

EXTENSION_KEY = "obslab_telemetry"


@dataclass(frozen=True)
class Telemetry:
    """What a service's code needs from its telemetry: the registry and a tracer."""

    service: str
    registry: CollectorRegistry
    tracer: trace.Tracer
    enabled: bool
    http: HttpMetrics

    def start_routes(self, app: Flask) -> None:
        """Export the server errors and latency of each of ``app``'s routes at zero before
        their first request (:meth:`HttpMetrics.start_route`). Call it once every route is
        added."""
        if not self.enabled:
            return
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            for method in sorted(rule.methods or ()):
                if method not in ("HEAD", "OPTIONS"):
                    self.http.start_route(rule.rule, method_label(method))


@dataclass(frozen=True)
class _Settings:
    version: str
    commit: str
    model_version: str
    previous_version: str
    deployed_at: float
    expected_score_shift: bool
    instance: str
    environment: str
    enabled: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> _Settings:
        def get(key: str) -> Any:
            return config.get(key, SERVICE_DEFAULTS[key])

        return cls(
            version=str(get("SERVICE_VERSION")),
            commit=str(get("COMMIT")),
            model_version=str(get("MODEL_VERSION")),
            previous_version=str(get("PREVIOUS_VERSION")),
            deployed_at=_deployed_at(get("DEPLOYED_AT")),
            expected_score_shift=_expected_score_shift(get("EXPECTED_SCORE_SHIFT")),
            instance=str(get("INSTANCE")),
            environment=str(get("ENVIRONMENT")),
            enabled=_enabled(get("TELEMETRY")),
        )


def _deployed_at(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds < 0:
        raise ValueError(
            f"OBSLAB_DEPLOYED_AT (config key DEPLOYED_AT) must be unix seconds, or 0 for now; "
            f"got {value!r}"
        )
    return seconds or time.time()


def _enabled(value: Any) -> bool:
    # from_prefixed_env parses JSON, so "true"/"false" arrive as booleans.
    switch = {"on": True, "off": False, "true": True, "false": False}.get(str(value).lower())
    if switch is None:
        raise ValueError(
            f"OBSLAB_TELEMETRY (config key TELEMETRY) must be on or off; got {value!r}"
        )
    return switch


def _expected_score_shift(value: Any) -> bool:
    # from_prefixed_env parses JSON, so 0/1 arrive as numbers and true/false as booleans; an
    # empty value (a manifest that predates the setting) declares nothing.
    switch = {"1": True, "0": False, "true": True, "false": False, "": False}.get(
        str(value).lower()
    )
    if switch is None:
        raise ValueError(
            "OBSLAB_EXPECTED_SCORE_SHIFT (config key EXPECTED_SCORE_SHIFT) must be 1 or 0; "
            f"got {value!r}"
        )
    return switch


def init_app(
    app: Flask,
    service: str,
    *,
    registry: CollectorRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Telemetry:
    """Instrument ``app`` as ``service`` and serve ``GET /metrics``. Call it before adding
    other app-wide ``before_request`` hooks, so that their work is inside the request's span.

    Metrics go to ``registry`` (a fresh one when None). Spans go to ``tracer_provider``;
    when None, one is built from the ``OTEL_*`` variables (see :func:`build_tracer_provider`)
    and counts its dropped spans in ``registry``. Nothing here sets the global tracer provider:
    the service's code takes its tracer from the returned :class:`Telemetry`.
    With ``TELEMETRY=off`` nothing is recorded per request and no spans are made, but
    ``/metrics`` still answers with the build info and process metrics.
    """
    settings = _Settings.from_config(app.config)
    registry = CollectorRegistry() if registry is None else registry
    metrics = HttpMetrics(registry, settings.version)
    register_build_info(
        registry,
        version=settings.version,
        commit=settings.commit,
        model_version=settings.model_version,
        previous_version=settings.previous_version,
        deployed_at=settings.deployed_at,
        expected_score_shift=settings.expected_score_shift,
    )
    ProcessCollector(registry=registry)
    app.add_url_rule("/metrics", "metrics", _metrics_view(registry))

    tracer: trace.Tracer = trace.NoOpTracer()
    if settings.enabled:
        if tracer_provider is None:
            tracer_provider = build_tracer_provider(
                service,
                settings.version,
                settings.environment,
                traces_dir=default_traces_dir(),
                registry=registry,
            )
        tracer = tracer_provider.get_tracer(f"obslab.{service}", settings.version)
        RequestTelemetry(metrics, tracer, settings.instance).register(app)

    telemetry = Telemetry(
        service=service, registry=registry, tracer=tracer, enabled=settings.enabled, http=metrics
    )
    app.extensions[EXTENSION_KEY] = telemetry
    return telemetry


def _metrics_view(registry: CollectorRegistry) -> Callable[[], Response]:
    def metrics() -> Response:
        # OpenMetrics for Prometheus (it asks for it), so exemplars reach it; text otherwise.
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encode(registry), content_type=content_type)

    return metrics
