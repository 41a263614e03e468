"""Soak: a bounded run under steady load with faults injected and cleared, which must lose
nothing.

A native stack of the ``test`` profile serves Locust at ``RATE`` requests a second for
``OBSLAB_BENCH_SOAK_SECONDS`` (default 600). The run is cut into one part per fault and a
quiet one; each fault of ``FAULTS`` is on in the middle of its part. Then:

- request errors outside the fault windows, from Locust's per-second history (a second that
  touches a window, or its grace after the clear, belongs to the fault): goal 0;
- the resident memory of every service instance (psutil, once a second): flat, that is its
  slope over the second half of the run stays under ``FLAT_MIB_PER_MINUTE``;
- pages lost: every alert that fired in Prometheus (its ``ALERTS`` history) must have reached
  the oncall receiver as a firing page with the same labels: goal 0.
"""

from __future__ import annotations

import csv
import itertools
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.capacity import LocustStats, MemorySampler, MemoryTrace, run_locust, slope_per_minute
from bench.lab import Lab, native_lab
from bench.report import Row
from obslab import faults
from obslab.oncall.client import fetch_pages
from obslab.render import SAME_SUBJECT

TITLE = "soak"
DEFAULT_SECONDS = 600.0
RATE = 20.0
#: Faults that end by themselves when cleared and leave memory alone (a leak would not).
FAULTS = ("error-burst", "data-drift", "dependency-down")
#: Longest a fault stays on, whatever the length of the run.
MAX_FAULT_SECONDS = 60.0
#: After a clear, requests already in flight (scoring waits up to 2 s on features) may fail.
GRACE_SECONDS = 5.0
FLAT_MIB_PER_MINUTE = 1.0
#: How long a page may take to arrive after the run: group_wait and group_interval, with room.
PAGE_WAIT_SECONDS = 30.0
#: Labels of an ALERTS series that Alertmanager never sees.
_NOT_ALERT_LABELS = ("__name__", "alertstate")


@dataclass(frozen=True)
class Window:
    """When a fault was on, in unix seconds."""

    fault: str
    start: float
    end: float


def schedule(seconds: float, names: Sequence[str]) -> list[tuple[str, float, float]]:
    """(fault, start, end) offsets from the start of the run: the run is cut into one part
    per fault and a last quiet part, and each fault is on in the middle half of its part
    (at most ``MAX_FAULT_SECONDS``)."""
    part = seconds / (len(names) + 1)
    length = min(part / 2, MAX_FAULT_SECONDS)
    return [
        (name, index * part + (part - length) / 2, index * part + (part + length) / 2)
        for index, name in enumerate(names)
    ]


def parse_history(path: Path) -> list[tuple[float, int]]:
    """(unix second, failures so far) from the Aggregated rows of Locust's stats history."""
    with path.open(newline="") as file:
        return [
            (float(row["Timestamp"]), int(row["Total Failure Count"]))
            for row in csv.DictReader(file)
            if row["Name"] == "Aggregated"
        ]


def errors_outside(
    history: Sequence[tuple[float, int]], windows: Iterable[Window], grace: float = GRACE_SECONDS
) -> int:
    """Failures that Locust counted in intervals touching no fault window (nor its grace).

    Locust's timestamps are whole seconds, so every window is widened by one second.
    """
    spans = [(w.start - 1, w.end + grace + 1) for w in windows]
    outside = 0
    for (before, failures_before), (after, failures_after) in itertools.pairwise(history):
        if not any(before <= end and start <= after for start, end in spans):
            outside += failures_after - failures_before
    return outside


def is_flat(trace: MemoryTrace) -> bool:
    """Whether memory stopped growing: the slope of the second half of the run, after the
    start-up allocations, stays under ``FLAT_MIB_PER_MINUTE``."""
    half = len(trace.times) // 2
    later = slope_per_minute(trace.times[half:], trace.rss[half:]) / 2**20
    return later < FLAT_MIB_PER_MINUTE


def fired_alerts(prometheus: str, start: float, end: float, step: float = 1.0) -> list[dict]:
    """The label sets of every alert that fired between ``start`` and ``end``."""
    response = requests.get(
        f"{prometheus}/api/v1/query_range",
        params={"query": 'ALERTS{alertstate="firing"}', "start": start, "end": end, "step": step},
        timeout=30,
    )
    response.raise_for_status()
    found = {
        tuple(
            sorted(
                (k, v) for k, v in series["metric"].items() if k not in ("__name__", "alertstate")
            )
        )
        for series in response.json()["data"]["result"]
    }
    return [dict(labels) for labels in sorted(found)]


def missing_pages(oncall: str, alerts: Sequence[Mapping[str, str]], timeout: float) -> list[dict]:
    """The alerts with no firing page of the same labels at the receiver after ``timeout``.

    A ticket counts as delivered when a page about the same subject arrived: Alertmanager
    holds such a ticket back by design (``render.SAME_SUBJECT``).
    """
    deadline = time.monotonic() + timeout
    while True:
        pages = [page["labels"] for page in fetch_pages(oncall, status="firing")]
        missing = [dict(alert) for alert in alerts if not delivered(alert, pages)]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(1)


def delivered(alert: Mapping[str, str], pages: Sequence[Mapping[str, str]]) -> bool:
    """Whether ``alert`` arrived among ``pages``, or was rightly held back by one of them."""
    if any(all(page.get(k) == v for k, v in alert.items()) for page in pages):
        return True
    return alert.get("severity") == "ticket" and any(
        page.get("severity") == "page"
        and all(page.get(label) == alert.get(label) for label in SAME_SUBJECT)
        for page in pages
    )


def drive_faults(lab: Lab, seconds: float, started: float) -> list[Window]:
    """Inject and clear the faults on ``schedule``; return when each was really on."""
    windows = []
    for name, start, end in schedule(seconds, FAULTS):
        time.sleep(max(0.0, started + start - time.time()))
        on = time.time()
        faults.inject(name, duration=end - start + 60)
        try:
            time.sleep(max(0.0, started + end - time.time()))
        finally:
            faults.clear(name)
        windows.append(Window(name, on, time.time()))
    return windows


def run() -> list[Row]:
    seconds = float(os.environ.get("OBSLAB_BENCH_SOAK_SECONDS", DEFAULT_SECONDS))
    with native_lab("test", load_rate=None) as lab:
        prefix = lab.home / "soak"
        result: list[LocustStats] = []
        load = threading.Thread(
            target=lambda: result.append(run_locust(lab, RATE, seconds, prefix)),
            name="locust",
            daemon=True,
        )
        with MemorySampler(lab) as sampler:
            started = time.time()
            load.start()
            windows = drive_faults(lab, seconds, started)
            load.join()
        ended = time.time()
        print("  soak: checking pages", file=sys.stderr, flush=True)
        fired = fired_alerts(lab.urls["prometheus"], started, ended)
        lost = missing_pages(lab.urls["oncall"], fired, PAGE_WAIT_SECONDS)
        history = parse_history(Path(f"{prefix}_stats_history.csv"))
    if not result:
        raise RuntimeError(f"the soak's Locust run ended without stats; see {prefix}.log")
    return rows(seconds, result[0], errors_outside(history, windows), sampler.traces(), fired, lost)


def rows(
    seconds: float,
    stats: LocustStats,
    outside: int,
    traces: Sequence[MemoryTrace],
    fired: Sequence[Mapping[str, str]],
    lost: Sequence[Mapping[str, str]],
) -> list[Row]:
    case = f"{seconds:g} s at {RATE:g} req/s, faults {', '.join(FAULTS)}"
    table = [
        Row(case, "requests, failed", f"{stats.requests}, {stats.failures}"),
        Row(case, "request errors outside fault windows", str(outside), "0", outside == 0),
    ]
    for trace in traces:
        table.append(
            Row(
                f"{case}, {trace.name}",
                "resident memory",
                f"{trace.rss[0] / 2**20:.0f} -> {trace.rss[-1] / 2**20:.0f} MiB, "
                f"{trace.slope_mib_per_minute:+.2f} MiB/min",
                f"flat (2nd half < {FLAT_MIB_PER_MINUTE:g} MiB/min)",
                is_flat(trace),
            )
        )
    names = ", ".join(sorted({alert["alertname"] for alert in lost}))
    table.append(
        Row(
            case,
            "pages lost",
            f"{len(lost)} of {len(fired)} alerts fired" + (f" ({names})" if names else ""),
            "0",
            not lost,
        )
    )
    return table
