"""Time to detect: from a fault's injection to the first page of each of its alerts, beside
the physical bound on that time.

For each fault of the catalogue (``OBSLAB_BENCH_FAULTS``, comma-separated, picks a few), on a
native stack of the ``test`` profile (and of ``demo`` when ``OBSLAB_BENCH_DEMO=1``; a demo
fault takes minutes): wait until the fault's alerts are quiet, inject it, wait for a firing
page of each of its alerts at the oncall receiver, clear it, wait for its alerts to resolve.
The fault is in effect once ``faults.inject`` returns (for a deploy, once the rollout is done);
the time to detect ends when the receiver stored the page (its ``received_at``).

The physical bound of an alert is the least time any Prometheus + Alertmanager could take:

    bound = scrape interval          the first scrape that can see the fault
          + evaluation interval      the first rule evaluation after that scrape
          + for:                     the alert holds its condition this long
          + group_wait               Alertmanager holds a new group this long
          + (samples - 1) x scrape   a range function (rate, increase, deriv, ...) draws a slope
                                     from two samples, so the fault must be in two of them;
                                     an instant condition (``up == 0``) needs one

``samples`` comes from the alert's expression and the recording rules it reads, transitively,
in ``alerts.rules.build_rules``; intervals from ``config/stack.yaml``. An alert with several
rules (one per severity or SLO window) takes its lowest bound: the first of them to fire.
The goal is a measured/bound ratio of at most 1.25.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from alerts.rules import build_rules
from alerts.thresholds import duration_seconds, load_profile
from bench.lab import Lab, native_lab
from bench.report import Row
from obslab import faults
from obslab.oncall.client import fetch_pages
from obslab.stackconfig import load_stack

TITLE = "time to detect"
GOAL_RATIO = 1.25
#: Parameters that make a fault show within the test profile's windows (as the live matrix).
PARAMS: dict[str, dict[str, str]] = {"memory-leak": {"mb_per_second": "4"}}
#: Beyond this many bounds without a page, an alert counts as missed.
PATIENCE = 4.0
MIN_TIMEOUT = 60.0
POLL_SECONDS = 0.5
#: The general alerts any fault can leave behind; a fault starts only once they are quiet.
SETTLE_ALERTS = frozenset({"HighErrorRate", "HighLatency"})

_RANGE_FUNCTION = re.compile(
    r"\b(rate|irate|increase|deriv|predict_linear|delta|idelta|changes|resets)\s*\("
)
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True)
class Timing:
    """A profile's plumbing delays, in seconds."""

    profile: str
    scrape: float
    evaluation: float
    group_wait: float

    @classmethod
    def of_profile(cls, profile: str) -> Timing:
        config = load_stack().profile(profile)
        return cls(
            profile,
            duration_seconds(config.scrape_interval),
            duration_seconds(config.evaluation_interval),
            duration_seconds(config.alertmanager.group_wait),
        )


@dataclass(frozen=True)
class Bound:
    """One alert's physical bound and its terms."""

    alert: str
    for_seconds: float
    samples: int
    seconds: float


def samples_needed(expr: str, records: Mapping[str, str]) -> int:
    """2 when ``expr``, or a recording rule it reads (transitively), applies a range function
    to a series; else 1."""
    seen: set[str] = set()
    todo = [expr]
    while todo:
        text = todo.pop()
        if _RANGE_FUNCTION.search(text):
            return 2
        for name in _NAME.findall(text):
            if name in records and name not in seen:
                seen.add(name)
                todo.append(records[name])
    return 1


def alert_bounds(rules: Mapping, timing: Timing) -> dict[str, Bound]:
    """Every alert of a ``build_rules`` document, with its lowest bound."""
    rule_list = [rule for group in rules["groups"] for rule in group["rules"]]
    records = {rule["record"]: rule["expr"] for rule in rule_list if "record" in rule}
    bounds: dict[str, Bound] = {}
    for rule in rule_list:
        if "alert" not in rule:
            continue
        for_seconds = duration_seconds(rule.get("for", "0s"))
        samples = samples_needed(rule["expr"], records)
        seconds = (
            timing.scrape
            + timing.evaluation
            + for_seconds
            + timing.group_wait
            + (samples - 1) * timing.scrape
        )
        known = bounds.get(rule["alert"])
        if known is None or seconds < known.seconds:
            bounds[rule["alert"]] = Bound(rule["alert"], for_seconds, samples, seconds)
    return bounds


@dataclass(frozen=True)
class Detected:
    """One alert of one fault: seconds from injection to its first page (None: missed)."""

    fault: str
    profile: str
    bound: Bound
    seconds: float | None

    @property
    def ratio(self) -> float | None:
        return None if self.seconds is None else self.seconds / self.bound.seconds


def rows(results: list[Detected]) -> list[Row]:
    table = []
    for result in results:
        bound = f"bound {result.bound.seconds:g} s"
        if result.seconds is None or result.ratio is None:
            value, met = f"no page ({bound})", False
        else:
            value = f"{result.seconds:.1f} s / {bound} = {result.ratio:.2f}"
            met = result.ratio <= GOAL_RATIO
        table.append(
            Row(
                f"{result.fault}, {result.profile}",
                f"page {result.bound.alert}",
                value,
                f"<= {GOAL_RATIO:g} x bound",
                met,
            )
        )
    return table


# --- the measurement -----------------------------------------------------------------------


def first_page(oncall: str, alert: str, since: float, timeout: float) -> float | None:
    """Unix time the receiver stored the first firing page of ``alert`` received at or after
    ``since``; None when none came within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        received = [
            datetime.fromisoformat(page["received_at"]).timestamp()
            for page in fetch_pages(oncall, alertname=alert, status="firing")
        ]
        after = [moment for moment in received if moment >= since]
        if after:
            return min(after)
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_SECONDS)


def wait_quiet(lab: Lab, names: set[str], timeout: float) -> None:
    """Wait until none of ``names`` fires, at most ``timeout``; the slow SLO burn outlives any
    short fault by design, so it is not waited for. An alert still firing when its fault
    starts cannot page again, so it shows in the table as a missed page."""
    deadline = time.monotonic() + timeout
    while True:
        firing = {
            a["labels"]["alertname"] for a in lab.firing() if a["labels"].get("window") != "slow"
        }
        if not firing & names or time.monotonic() > deadline:
            return
        time.sleep(1)


def measure_fault(lab: Lab, name: str, bounds: Mapping[str, Bound], profile: str) -> list[Detected]:
    fault = faults.get(name)
    settle = max(MIN_TIMEOUT, PATIENCE * max(bounds[a].seconds for a in fault.alerts))
    wait_quiet(lab, set(fault.alerts) | set(fault.may_alert) | SETTLE_ALERTS, settle)
    timeout = {alert: max(MIN_TIMEOUT, PATIENCE * bounds[alert].seconds) for alert in fault.alerts}
    faults.inject(name, PARAMS.get(name), duration=max(timeout.values()) + 60)
    injected = time.time()
    results = []
    try:
        for alert in fault.alerts:
            elapsed = time.time() - injected
            paged = first_page(
                lab.urls["oncall"], alert, injected, max(0.0, timeout[alert] - elapsed)
            )
            seconds = None if paged is None else paged - injected
            results.append(Detected(name, profile, bounds[alert], seconds))
    finally:
        faults.clear(name)
    wait_quiet(lab, set(fault.alerts), settle)
    return results


def selected_faults() -> list[str]:
    chosen = os.environ.get("OBSLAB_BENCH_FAULTS", "")
    names = [name.strip() for name in chosen.split(",") if name.strip()] or list(faults.CATALOGUE)
    for name in names:
        faults.get(name)
    return names


def warm_up_seconds(profile: str) -> float:
    """Long enough for every window the alerts judge traffic over to hold traffic: before
    that, a drift or accuracy rule has too few observations to fire at all."""
    config = load_profile(profile)
    return max(config.seconds(key) for key in ("rate_window", "drift.window", "accuracy.window"))


def profiles() -> list[str]:
    return ["test", "demo"] if os.environ.get("OBSLAB_BENCH_DEMO") == "1" else ["test"]


def run() -> list[Row]:
    names = selected_faults()
    results: list[Detected] = []
    for profile in profiles():
        bounds = alert_bounds(build_rules(profile), Timing.of_profile(profile))
        with native_lab(profile) as lab:
            time.sleep(warm_up_seconds(profile))
            for name in names:
                print(f"  {profile}: {name}", file=sys.stderr, flush=True)
                results += measure_fault(lab, name, bounds, profile)
    return rows(results)
