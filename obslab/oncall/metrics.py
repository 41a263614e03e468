"""The receiver's own metrics, in a registry of its own so each app (and test) starts at zero."""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, ProcessCollector, generate_latest

from obslab.oncall.payload import STATUSES

RejectReason = Literal["unauthorized", "unsupported_media_type", "too_large", "malformed"]
REJECT_REASONS: tuple[RejectReason, ...] = (
    "unauthorized",
    "unsupported_media_type",
    "too_large",
    "malformed",
)


class OncallMetrics:
    """``oncall_notifications_total{status}``, ``oncall_webhook_rejected_total{reason}``."""

    def __init__(self) -> None:
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
        # Every series exists from the first scrape, so rate() and absent() behave.
        for status in STATUSES:
            self.notifications.labels(status)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)

    def exposition(self) -> bytes:
        """The classic Prometheus text format."""
        return generate_latest(self.registry)
