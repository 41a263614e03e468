"""Scrape cost: what one ``/metrics`` scrape of each service costs, and whether it stays bounded.

A scoring + features pair under gunicorn is scraped as Prometheus scrapes it (OpenMetrics,
with exemplars) after normal traffic, then after each half of 10 000 hostile requests: random
paths, odd methods, random feature values. The series count must reach a ceiling: the second
half of the hostile traffic may not add a single series.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from app.model.data import APPLICANT_FEATURES
from bench import wrk
from bench.pair import ServicePair
from bench.report import Row

TITLE = "scrape cost"

GOAL_SECONDS = 0.020
GOAL_BYTES = 150 * 1024
HOSTILE_REQUESTS = 10_000
NORMAL_SECONDS = 5.0
SCRAPES = 20
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_ODD_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "BREW", "X-Y")
_ODD_VALUES = (None, -1, 0, 1e308, -1e308, 3.5, "12", "NaN", [], {}, True, 10**30)


@dataclass(frozen=True)
class Scrape:
    """Median round-trip time of a scrape, its size and its number of samples."""

    seconds: float
    size: int
    series: int


def count_series(exposition: str) -> int:
    """Samples in a text or OpenMetrics exposition: every line that is not a comment."""
    return sum(1 for line in exposition.splitlines() if line and not line.startswith("#"))


def scrape(url: str, times: int = SCRAPES) -> Scrape:
    durations, body = [], ""
    with requests.Session() as session:
        for _ in range(times):
            started = time.perf_counter()
            response = session.get(f"{url}/metrics", headers={"Accept": OPENMETRICS}, timeout=10)
            durations.append(time.perf_counter() - started)
            response.raise_for_status()
            body = response.text
    return Scrape(statistics.median(durations), len(body.encode()), count_series(body))


def hostile_request(rng: random.Random, scoring: str, features: str) -> tuple[str, str, dict]:
    """One request a careless or malicious client might send: (method, url, requests kwargs)."""
    method = rng.choice(_ODD_METHODS)
    kind = rng.randrange(4)
    if kind == 0:
        path = "/" + "/".join(f"{rng.getrandbits(32):x}" for _ in range(rng.randint(1, 3)))
        return method, f"{rng.choice((scoring, features))}{path}", {}
    if kind == 1:
        customer = rng.choice((rng.randint(-(10**9), 10**12), "abc", "1.5", ""))
        return method, f"{features}/customers/{customer}/features", {}
    body = {
        "customer_id": rng.choice((rng.randint(1, 10_000), *_ODD_VALUES)),
        **{name: rng.choice((rng.uniform(-1e6, 1e6), *_ODD_VALUES)) for name in APPLICANT_FEATURES},
    }
    if kind == 2:
        return "POST", f"{scoring}/predict", {"json": body}
    return method, f"{scoring}/feedback", {"json": {"prediction_id": rng.random(), **body}}


def send_hostile(scoring: str, features: str, n: int, seed: int) -> None:
    """Send ``n`` hostile requests from 8 threads; any answer (4xx, 5xx) is fine."""
    rng = random.Random(seed)
    batch = [hostile_request(rng, scoring, features) for _ in range(n)]

    def send(chunk: Sequence[tuple[str, str, dict]]) -> None:
        with requests.Session() as session:
            for method, url, options in chunk:
                session.request(method, url, timeout=10, **options)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, [batch[i::8] for i in range(8)]))


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="obslab-bench-") as tmp:
        root = Path(tmp)
        script = root / "predict.lua"
        script.write_text(wrk.predict_script(wrk.applicant_bodies(512)))
        with ServicePair("scrape", 4, root / "pair") as pair:
            services = {"scoring": pair.scoring_url, "features": pair.features_url}
            wrk.run(pair.scoring_url, script, connections=8, seconds=NORMAL_SECONDS)
            normal = {name: scrape(url) for name, url in services.items()}
            send_hostile(pair.scoring_url, pair.features_url, HOSTILE_REQUESTS // 2, seed=1)
            half = {name: scrape(url, times=1) for name, url in services.items()}
            send_hostile(pair.scoring_url, pair.features_url, HOSTILE_REQUESTS // 2, seed=2)
            hostile = {name: scrape(url) for name, url in services.items()}
    return rows(normal, half, hostile)


def rows(
    normal: dict[str, Scrape], half: dict[str, Scrape], hostile: dict[str, Scrape]
) -> list[Row]:
    table: list[Row] = []
    for service in normal:
        for when, measured in (("normal", normal[service]), ("hostile", hostile[service])):
            case = f"{service}, after {when} traffic"
            table += [
                Row(
                    case,
                    "scrape time",
                    f"{measured.seconds * 1e3:.1f} ms",
                    f"< {GOAL_SECONDS * 1e3:.0f} ms",
                    measured.seconds < GOAL_SECONDS,
                ),
                Row(
                    case,
                    "scrape size",
                    f"{measured.size / 1024:.1f} KB",
                    f"< {GOAL_BYTES // 1024} KB",
                    measured.size < GOAL_BYTES,
                ),
                Row(case, "series", str(measured.series)),
            ]
        added = hostile[service].series - half[service].series
        table.append(
            Row(
                f"{service}, 2nd half of hostile traffic",
                "series added",
                str(added),
                "0",
                added == 0,
            )
        )
    return table
