"""The dead-man's switch: Alertmanager's always-firing ``Watchdog`` must keep arriving.

When Prometheus stops evaluating, or Alertmanager stops delivering, on-call hears silence,
which looks like health. Alertmanager sends the Watchdog to ``POST /watchdog`` every few
seconds; when none has arrived for longer than the timeout, the receiver raises its own page,
``DeadMansSwitch``, and resolves it when the Watchdog comes back.

The switch is judged whenever the receiver is asked anything, not by a timer: the page list,
its JSON, ``/metrics`` (which Prometheus scrapes every few seconds while it lives) and every
arrival. A thread in each worker would need starting and stopping around gunicorn's fork and
every test; judging on read needs neither, and the page it raises carries the moment the
deadline passed, not the moment someone looked.

The switch is armed by the first Watchdog ever to arrive (remembered in the store), so a lab
whose Alertmanager has no Watchdog route yet, or a receiver just created, never pages for a
silence that was never a heartbeat stopping; the page list says it is not armed. Once armed,
the clock runs from the later of the last Watchdog and the receiver's own start: a restarted
receiver grants Alertmanager one timeout to reach it again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from obslab.oncall.payload import Alert, format_timestamp
from obslab.oncall.store import PageStore

ALERTNAME = "DeadMansSwitch"
WATCHDOG = "Watchdog"
#: Not one of Alertmanager's fingerprints (16 hex digits), so never mistaken for its alerts.
FINGERPRINT = "oncall-deadmansswitch"
RUNBOOK_URL = "/runbook#deadmansswitch"
DEFAULT_TIMEOUT_SECONDS = 180.0


def _now() -> datetime:
    return datetime.now(UTC)


class DeadMansSwitch:
    """Judges the Watchdog's arrivals in ``store``; ``clock`` is for tests."""

    def __init__(
        self,
        store: PageStore,
        timeout: timedelta,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self.timeout = timeout
        self._clock = clock
        self.started_at = clock()

    def arrived(self) -> None:
        """A firing Watchdog arrived: close any dead-man's page, then restart the clock.

        A silence nobody looked at during is still recorded, as a page raised and resolved.
        """
        now = self._clock()
        self.check(now)
        if open_pages := self._store.open_episodes(ALERTNAME, FINGERPRINT):
            ended = format_timestamp(now)
            self._store.add([_page(page.starts_at, ended) for page in open_pages], now=now)
        self._store.watchdog_seen(now)

    def check(self, now: datetime | None = None) -> bool:
        """Raise the dead-man's page if the deadline has passed; whether it is firing."""
        deadline = self.deadline()
        now = now or self._clock()
        if deadline is None or now <= deadline:
            return False
        if not self._store.open_episodes(ALERTNAME, FINGERPRINT):
            self._store.add([_page(format_timestamp(deadline), None)], now=now)
        return True

    def deadline(self) -> datetime | None:
        """When the dead-man's page fires unless a Watchdog arrives first; None until the
        first Watchdog arms the switch."""
        last_seen = self._store.watchdog_last_seen()
        if last_seen is None:
            return None
        return max(last_seen, self.started_at) + self.timeout

    def last_seen(self) -> datetime | None:
        return self._store.watchdog_last_seen()


def _page(starts_at: str, ends_at: str | None) -> Alert:
    return Alert(
        status="firing" if ends_at is None else "resolved",
        labels={"alertname": ALERTNAME, "severity": "page", "receiver": "oncall"},
        annotations={
            "summary": "No Watchdog from Alertmanager: alerts may not be reaching on-call",
            "description": (
                "The always-firing Watchdog alert stopped arriving at the oncall receiver. "
                "Prometheus, its rule evaluation or Alertmanager's delivery is broken, so "
                "silence does not mean health until it is back."
            ),
            "runbook_url": RUNBOOK_URL,
        },
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url="",
        fingerprint=FINGERPRINT,
    )
