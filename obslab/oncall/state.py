"""What each stored page means now, told from what Alertmanager holds.

A stored notification says what was true when it arrived. Its ``state`` says what is true
now:

- ``resolved``: a resolve of its episode arrived;
- ``firing``: Alertmanager still holds its alert (or cannot be asked: then ``checked`` is
  false, and the page keeps what it last heard);
- ``held_back``: Alertmanager holds it, but an inhibition holds it back (``held_back_by``
  names the alerts that do);
- ``silenced``: Alertmanager holds it under a silence;
- ``expired``: no resolve arrived, yet Alertmanager no longer holds its alert. A restarted
  Alertmanager never resolves the alerts it never knew: such a page ended unseen.

The dead-man's page is the receiver's own; its episodes are opened and closed by the switch,
never by Alertmanager.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from obslab.oncall import deadman
from obslab.oncall.alertmanager import ActiveAlert, Snapshot
from obslab.oncall.store import Page, kind_of

State = Literal["firing", "held_back", "silenced", "resolved", "expired"]
STATES: tuple[State, ...] = ("firing", "held_back", "silenced", "resolved", "expired")


def describe(pages: Iterable[Page], snapshot: Snapshot | None) -> list[dict[str, object]]:
    """Each page as JSON, with its ``state``, ``held_back_by`` and ``checked``; ``snapshot``
    is None when Alertmanager could not be asked."""
    return [_describe(page, snapshot) for page in pages]


def _describe(page: Page, snapshot: Snapshot | None) -> dict[str, object]:
    state: State = "firing"
    held_back_by: list[str] = []
    own = page.fingerprint == deadman.FINGERPRINT
    # A resolve is final, and the dead-man's page is the receiver's own to judge.
    checked = snapshot is not None or page.ended or own
    if page.ended:
        state = "resolved"
    elif snapshot is not None and not own:
        alert = snapshot.holds(page.fingerprint, page.starts_at)
        if alert is None:
            state = "expired"
        elif alert.inhibited_by:
            state, held_back_by = "held_back", snapshot.names_of(alert.inhibited_by)
        elif alert.silenced_by:
            state = "silenced"
    return {**page.as_dict(), "state": state, "held_back_by": held_back_by, "checked": checked}


def held_back(snapshot: Snapshot) -> list[dict[str, object]]:
    """The alerts an inhibition holds back, as JSON, each with the names of its holders.
    Alertmanager sends them to no receiver, so they are shown from its API alone."""
    return [_held_back(alert, snapshot) for alert in snapshot.held_back()]


def _held_back(alert: ActiveAlert, snapshot: Snapshot) -> dict[str, object]:
    return {
        "alertname": alert.alertname,
        "kind": kind_of(alert.labels.get("severity")),
        "labels": alert.labels,
        "annotations": alert.annotations,
        "starts_at": alert.starts_at,
        "fingerprint": alert.fingerprint,
        "held_back_by": snapshot.names_of(alert.inhibited_by),
    }
