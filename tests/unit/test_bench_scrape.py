"""bench.scrape: counting series, hostile requests, and the rows it reports."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

from bench import scrape
from bench.scrape import Scrape


def test_count_series_counts_samples_in_either_format() -> None:
    registry = CollectorRegistry()
    counter = Counter("hits", "Hits.", ("route",), registry=registry)
    for route in ("/a", "/b"):
        counter.labels(route).inc()

    # One _total and one _created sample per child, whatever the format.
    assert scrape.count_series(generate_latest(registry).decode()) == 4
    assert scrape.count_series(openmetrics(registry).decode()) == 4


def test_hostile_requests_stay_on_the_services_under_test() -> None:
    rng = random.Random(3)

    batch = [scrape.hostile_request(rng, "http://s", "http://f") for _ in range(500)]

    assert all(url.startswith(("http://s/", "http://f/")) for _, url, _ in batch)
    methods = {method for method, _, _ in batch}
    assert {"PROPFIND", "BREW", "POST"} <= methods
    assert any(url == "http://s/predict" and "json" in options for _, url, options in batch)


def test_rows_hold_each_service_to_the_goals_and_to_no_growth() -> None:
    normal = {"scoring": Scrape(0.004, 30_000, 350)}
    half = {"scoring": Scrape(0.005, 50_000, 500)}
    hostile = {"scoring": Scrape(0.025, 200_000, 502)}

    rows = scrape.rows(normal, half, hostile)

    verdicts = {(row.case, row.measure): row.met for row in rows}
    assert verdicts[("scoring, after normal traffic", "scrape time")] is True
    assert verdicts[("scoring, after hostile traffic", "scrape time")] is False
    assert verdicts[("scoring, after hostile traffic", "scrape size")] is False
    added = next(row for row in rows if row.measure == "series added")
    assert (added.value, added.met) == ("2", False)
