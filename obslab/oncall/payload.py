"""The Alertmanager webhook payload (version 4), validated strictly.

A notification is accepted whole or not at all: the first problem raises ``PayloadError``
naming the field as the sender spelled it (``alerts[2].labels.alertname``), so an operator
can find it in the Alertmanager template or the hand-written request that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

STATUSES = ("firing", "resolved")
PAYLOAD_VERSION = "4"

# Go's zero time: Alertmanager sends it as the end of an alert that is still firing.
_GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


class PayloadError(ValueError):
    """A webhook payload that does not follow the format, and the field at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert of a notification; timestamps are ISO 8601 UTC, ``ends_at`` None while firing."""

    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str | None
    generator_url: str
    fingerprint: str

    @property
    def alertname(self) -> str:
        return self.labels["alertname"]


def format_timestamp(moment: datetime) -> str:
    """``2024-05-01T12:00:00.000Z``: one fixed width, so equal instants compare equal as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_notification(document: object) -> list[Alert]:
    """The alerts of a decoded webhook body; raises ``PayloadError`` on the first problem."""
    if not isinstance(document, dict):
        raise PayloadError("body", "must be a JSON object")
    if _string(document, "version", "version") != PAYLOAD_VERSION:
        raise PayloadError("version", f'must be "{PAYLOAD_VERSION}"')
    _string(document, "groupKey", "groupKey")
    _string(document, "receiver", "receiver")
    _status(document, "status", "status")
    alerts = _required(document, "alerts", "alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts", "must be a list")
    if not alerts:
        raise PayloadError("alerts", "must not be empty")
    return [_alert(item, f"alerts[{index}]") for index, item in enumerate(alerts)]


def _alert(item: object, where: str) -> Alert:
    if not isinstance(item, dict):
        raise PayloadError(where, "must be an object")
    status = _status(item, "status", f"{where}.status")
    labels = _string_map(item, "labels", f"{where}.labels")
    if not labels.get("alertname"):
        raise PayloadError(f"{where}.labels.alertname", "is required and must not be empty")
    annotations = _string_map(item, "annotations", f"{where}.annotations")
    starts_at = _timestamp(item, "startsAt", f"{where}.startsAt")
    if starts_at is None:
        raise PayloadError(f"{where}.startsAt", "must not be the zero time")
    ends_at = _timestamp(item, "endsAt", f"{where}.endsAt")
    if status == "resolved" and ends_at is None:
        raise PayloadError(f"{where}.endsAt", "must be set on a resolved alert")
    generator_url = _string(item, "generatorURL", f"{where}.generatorURL")
    fingerprint = _string(item, "fingerprint", f"{where}.fingerprint")
    if not fingerprint:
        raise PayloadError(f"{where}.fingerprint", "must not be empty")
    return Alert(
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url,
        fingerprint=fingerprint,
    )


def _required(parent: dict, key: str, where: str) -> object:
    if key not in parent:
        raise PayloadError(where, "is required")
    return parent[key]


def _string(parent: dict, key: str, where: str) -> str:
    value = _required(parent, key, where)
    if not isinstance(value, str):
        raise PayloadError(where, "must be a string")
    return value


def _status(parent: dict, key: str, where: str) -> str:
    value = _string(parent, key, where)
    if value not in STATUSES:
        raise PayloadError(where, f"must be one of {', '.join(STATUSES)}")
    return value


def _string_map(parent: dict, key: str, where: str) -> dict[str, str]:
    value = _required(parent, key, where)
    if not isinstance(value, dict):
        raise PayloadError(where, "must be an object")
    for name, text in value.items():
        if not isinstance(text, str):
            raise PayloadError(f"{where}.{name}", "must be a string")
    return value


def _timestamp(parent: dict, key: str, where: str) -> str | None:
    text = _string(parent, key, where)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PayloadError(where, "must be an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise PayloadError(where, "must carry a UTC offset")
    if moment == _GO_ZERO_TIME:
        return None
    try:
        return format_timestamp(moment)
    except OverflowError:
        raise PayloadError(where, "is out of range") from None
