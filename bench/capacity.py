"""Capacity: the highest request rate the native stack sustains with p99 under 250 ms and no
errors, and the resident memory of each service instance meanwhile.

wrk loads the stack's front door (nginx) with ``POST /predict`` at a doubling number of open
connections, each step for ``OBSLAB_BENCH_CAPACITY_STEP_SECONDS`` (default 20). wrk is a
closed loop: each connection sends its next request when the last one is answered, so more
connections raise the rate until the stack saturates, and then only the latency. A step
passes with no error and a p99 under the goal; the capacity is the highest rate a passing
step reached. Steps stop at the first failing one, or when the rate stops growing. Locust,
the lab's own client, cannot be the judge here: one Locust process saturates its core long
before the stack does (docs/performance.md).

The stack runs the ``demo`` profile, as a class runs it. psutil samples the resident memory
of every features and scoring instance once a second over all steps. ``run_locust`` and its
CSV parsers serve the soak, which drives realistic traffic (feedback too) with Locust.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import psutil

from bench import wrk
from bench.lab import Lab, native_lab
from bench.report import Row
from bench.wrk import WrkResult
from loadgen.profile import Profile
from obslab.layout import StateLayout
from obslab.processes import Supervisor
from obslab.stack import locust_argv
from obslab.stackconfig import REPO_ROOT

TITLE = "capacity"
GOAL_P99_SECONDS = 0.250
#: The steps' open connections: 1, 2, 4, ... up to this.
MAX_CONNECTIONS = 128
#: A step whose rate grows less than this over the last one found the stack's limit.
MIN_GAIN = 1.05
#: Locust users each send about this many requests a second (``users_for``).
RATE_PER_USER = 4.0
MIN_USERS = 10
SAMPLE_SECONDS = 1.0
#: The processes whose memory is sampled: every instance of these services.
SERVICES = ("features", "scoring")


@dataclass(frozen=True)
class LocustStats:
    """Locust's aggregated figures for one run."""

    requests: int
    failures: int
    rate: float
    p99: float
    #: The most frequent failure, as Locust words it ("" without failures).
    failure: str = ""


def parse_stats(path: Path) -> LocustStats:
    """The ``Aggregated`` row of Locust's ``<prefix>_stats.csv``."""
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            if row["Name"] == "Aggregated":
                return LocustStats(
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    rate=float(row["Requests/s"]),
                    p99=float(row["99%"]) / 1000,
                )
    raise ValueError(f"{path}: no Aggregated row")


def parse_failure(path: Path) -> str:
    """The most frequent failure in Locust's ``<prefix>_failures.csv``; "" when none."""
    with path.open(newline="") as file:
        found = sorted(csv.DictReader(file), key=lambda row: -int(row["Occurrences"]))
    if not found:
        return ""
    top = found[0]
    return f"{top['Method']} {top['Name']}: {top['Error']} (x{top['Occurrences']})"


def users_for(rate: float) -> int:
    return max(MIN_USERS, math.ceil(rate / RATE_PER_USER))


def run_locust(
    lab: Lab, rate: float, seconds: float, csv_prefix: Path, *, users: int | None = None
) -> LocustStats:
    """Locust headless against the lab's scoring front door at ``rate`` for ``seconds``;
    its CSV files are written under ``csv_prefix``."""
    Profile.load(lab.profile_file).with_rate(rate).save(lab.profile_file)
    users = users or users_for(rate)
    argv = locust_argv(
        lab.urls["scoring"],
        users,
        users,
        f"--run-time={seconds:g}s",
        f"--csv={csv_prefix}",
        "--loglevel=WARNING",
    )
    env = {**os.environ, "OBSLAB_HOME": str(lab.home)}
    log = csv_prefix.with_suffix(".log")
    with log.open("w") as out:
        done = subprocess.run(
            argv, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=seconds + 60
        )
    # Locust exits 1 when a request failed; the stats say so, and are read either way.
    if done.returncode not in (0, 1):
        raise RuntimeError(f"locust failed ({done.returncode}); see {log}")
    stats = parse_stats(Path(f"{csv_prefix}_stats.csv"))
    return replace(stats, failure=parse_failure(Path(f"{csv_prefix}_failures.csv")))


# --- memory ---------------------------------------------------------------------------------


def slope_per_minute(times: Sequence[float], values: Sequence[float]) -> float:
    """The least-squares slope of ``values`` over ``times`` (seconds), per minute."""
    if len(times) < 2:
        raise ValueError("a slope needs two samples")
    slope, _ = np.polyfit(np.asarray(times, dtype=float), np.asarray(values, dtype=float), 1)
    return float(slope) * 60


@dataclass(frozen=True)
class MemoryTrace:
    """One process's resident memory (bytes) at seconds since sampling started."""

    name: str
    times: tuple[float, ...]
    rss: tuple[int, ...]

    @property
    def slope_mib_per_minute(self) -> float:
        return slope_per_minute(self.times, self.rss) / 2**20


class MemorySampler:
    """Samples, on a thread, the resident memory of the lab's service instances."""

    def __init__(self, lab: Lab, services: Iterable[str] = SERVICES) -> None:
        supervisor = Supervisor(StateLayout(lab.home).run)
        wanted = tuple(services)
        self._processes = {
            name: psutil.Process(pid)
            for name in supervisor.names()
            if name.rsplit("-", 1)[0] in wanted and (pid := supervisor.pid(name)) is not None
        }
        self._samples: dict[str, list[tuple[float, int]]] = {n: [] for n in self._processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="memory", daemon=True)

    def _sample(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic() - started
            for name, process in self._processes.items():
                try:
                    self._samples[name].append((now, _tree_rss(process)))
                except psutil.NoSuchProcess:
                    continue
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def traces(self) -> list[MemoryTrace]:
        return [
            MemoryTrace(name, tuple(t for t, _ in samples), tuple(r for _, r in samples))
            for name, samples in sorted(self._samples.items())
            if len(samples) >= 2
        ]


def _tree_rss(process: psutil.Process) -> int:
    """Resident memory of an instance: its gunicorn arbiter and the worker that serves."""
    return sum(p.memory_info().rss for p in (process, *process.children(recursive=True)))


def memory_rows(case: str, traces: Iterable[MemoryTrace]) -> list[Row]:
    """Start, end and slope of each process's resident memory."""
    return [
        Row(
            f"{case}, {trace.name}",
            "resident memory",
            f"{trace.rss[0] / 2**20:.0f} -> {trace.rss[-1] / 2**20:.0f} MiB over "
            f"{trace.times[-1]:.0f} s, {trace.slope_mib_per_minute:+.2f} MiB/min",
        )
        for trace in traces
    ]


# --- the steps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    connections: int
    result: WrkResult

    @property
    def passed(self) -> bool:
        return self.result.errors == 0 and self.result.p99 < GOAL_P99_SECONDS


def connection_steps(top: int = MAX_CONNECTIONS) -> Iterator[int]:
    """1, 2, 4, ... up to ``top``."""
    connections = 1
    while connections <= top:
        yield connections
        connections *= 2


def climb(url: str, script: Path, seconds: float) -> list[Step]:
    """Steps of doubling connections until one fails or the rate stops growing."""
    steps: list[Step] = []
    for connections in connection_steps():
        print(f"  capacity: {connections} connections", file=sys.stderr, flush=True)
        steps.append(
            Step(connections, wrk.run(url, script, connections=connections, seconds=seconds))
        )
        if not steps[-1].passed:
            break
        if len(steps) > 1 and steps[-1].result.rate < MIN_GAIN * steps[-2].result.rate:
            break
    return steps


def step_rows(steps: Sequence[Step]) -> list[Row]:
    table = [
        Row(
            f"wrk, {step.connections} connections",
            "rate, p99, errors",
            f"{step.result.rate:.0f} req/s, {step.result.p99 * 1e3:.0f} ms, {step.result.errors}",
            f"p99 < {GOAL_P99_SECONDS * 1e3:.0f} ms, 0 errors",
            step.passed,
        )
        for step in steps
    ]
    passing = [step.result.rate for step in steps if step.passed]
    table.append(
        Row(
            "native stack, demo profile",
            "highest sustained rate",
            f"{max(passing):.0f} req/s" if passing else "none",
        )
    )
    return table


def run() -> list[Row]:
    seconds = float(os.environ.get("OBSLAB_BENCH_CAPACITY_STEP_SECONDS", "20"))
    with native_lab("demo", load_rate=None) as lab:
        script = lab.home / "capacity.lua"
        script.write_text(wrk.predict_script(wrk.applicant_bodies(512)))
        with MemorySampler(lab) as sampler:
            steps = climb(lab.urls["scoring"], script, seconds)
        return step_rows(steps) + memory_rows("under stepped load", sampler.traces())
