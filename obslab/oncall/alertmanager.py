"""What Alertmanager holds right now, from its API v2 (``GET /api/v2/alerts``).

Webhooks tell the receiver what changed; they cannot tell what ended without a word: an alert
held back by an inhibition is never sent, and after a restart a new Alertmanager never
resolves alerts it never knew. Reading its active alerts answers both: which alerts are held
back and by what, and which firing pages no longer have an alert behind them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import requests

from obslab.oncall.payload import format_timestamp


class AlertmanagerUnavailable(Exception):
    """Alertmanager did not answer, or answered something that is not its alert list."""


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """One alert Alertmanager holds: firing, or suppressed by a silence or an inhibition."""

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    inhibited_by: tuple[str, ...]
    silenced_by: tuple[str, ...]

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Alertmanager's alerts at one moment, by fingerprint."""

    alerts: Mapping[str, ActiveAlert]

    def holds(self, fingerprint: str, starts_at: str) -> ActiveAlert | None:
        """The alert of this episode if Alertmanager still holds it; a later episode of the
        same labels (another start) is another alert."""
        alert = self.alerts.get(fingerprint)
        return alert if alert is not None and alert.starts_at == starts_at else None

    def held_back(self) -> list[ActiveAlert]:
        """The alerts an inhibition holds back, oldest first."""
        return sorted(
            (alert for alert in self.alerts.values() if alert.inhibited_by),
            key=lambda alert: (alert.starts_at, alert.alertname),
        )

    def names_of(self, fingerprints: tuple[str, ...]) -> list[str]:
        """The alert names behind fingerprints (an inhibiting alert is active itself); a
        fingerprint Alertmanager no longer knows is shown as it is."""
        return [
            alert.alertname if (alert := self.alerts.get(fingerprint)) else fingerprint
            for fingerprint in fingerprints
        ]


class AlertmanagerReader:
    """Reads ``base_url``'s alerts, with a short timeout: a page list waits on it.

    No shared ``requests.Session``: the receiver's threads read at once, and a session is
    not documented to be safe across threads.
    """

    def __init__(self, base_url: str, *, timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout

    def snapshot(self) -> Snapshot:
        """Every alert Alertmanager holds, silenced and inhibited ones included."""
        url = f"{self.base_url}/api/v2/alerts"
        try:
            response = requests.get(url, timeout=self._timeout)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as error:
            raise AlertmanagerUnavailable(f"{url}: {error}") from error
        try:
            alerts = [_alert(item) for item in document]
        except (TypeError, KeyError, ValueError) as error:
            raise AlertmanagerUnavailable(f"{url} answered no alert list: {error!r}") from error
        return Snapshot({alert.fingerprint: alert for alert in alerts})


def _alert(item: dict) -> ActiveAlert:
    status = item["status"]
    return ActiveAlert(
        fingerprint=str(item["fingerprint"]),
        labels={str(k): str(v) for k, v in item["labels"].items()},
        annotations={str(k): str(v) for k, v in item.get("annotations", {}).items()},
        starts_at=format_timestamp(datetime.fromisoformat(item["startsAt"])),
        inhibited_by=tuple(str(f) for f in status.get("inhibitedBy") or ()),
        silenced_by=tuple(str(f) for f in status.get("silencedBy") or ()),
    )
