"""The receiver's own metrics, in a registry of its own so each app (and test) starts at zero."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    generate_latest,
)

from obslab.oncall.payload import STATUSES

RejectReason = Literal["unauthorized", "unsupported_media_type", "too_large", "malformed"]
REJECT_REASONS: tuple[RejectReason, ...] = (
    "unauthorized",
    "unsupported_media_type",
    "too_large",
    "malformed",
)


class OncallMetrics:
    """``oncall_notifications_total{status}``, ``oncall_webhook_rejected_total{reason}``,
    and the dead-man's switch: ``oncall_watchdog_last_seen_timestamp_seconds`` (0 before the
    first Watchdog) and ``oncall_dead_mans_switch_firing``, both read when scraped, and
    ``oncall_watchdog_timeout_seconds``."""

    def __init__(
        self,
        *,
        watchdog_last_seen: Callable[[], float],
        dead_mans_switch: Callable[[], bool],
        watchdog_timeout: float,
    ) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.notifications = Counter(
            "oncall_notifications",
            "Alert notifications stored as new pages (redeliveries not counted), by alert status.",
            ["status"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "oncall_webhook_rejected",
            "Webhook requests refused, by reason; nothing of them is stored.",
            ["reason"],
            registry=self.registry,
        )
        self.watchdogs = Counter(
            "oncall_watchdog_notifications",
            "Firing Watchdog alerts received at /watchdog: the dead-man's switch's heartbeats.",
            registry=self.registry,
        )
        Gauge(
            "oncall_watchdog_last_seen_timestamp_seconds",
            "When the last firing Watchdog arrived, in unix seconds; 0 if none has.",
            registry=self.registry,
        ).set_function(watchdog_last_seen)
        Gauge(
            "oncall_dead_mans_switch_firing",
            "1 while the receiver's own DeadMansSwitch page fires: no Watchdog for too long.",
            registry=self.registry,
        ).set_function(lambda: float(dead_mans_switch()))
        Gauge(
            "oncall_watchdog_timeout_seconds",
            "How long the receiver waits for a Watchdog before it pages DeadMansSwitch.",
            registry=self.registry,
        ).set(watchdog_timeout)
        # Every series exists from the first scrape, so rate() and absent() behave.
        for status in STATUSES:
            self.notifications.labels(status)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)

    def exposition(self) -> bytes:
        """The classic Prometheus text format."""
        return generate_latest(self.registry)
