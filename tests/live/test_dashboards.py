"""Every dashboard query returns data from the live Prometheus while traffic flows.

A panel that shows nothing is a broken panel: a renamed metric, a recording rule that does
not exist, a label filter that matches nothing. Each query runs with its template variables
set to "All", as the dashboards open.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from app.model.data import customer_history
from dashboards.build import dashboard_models, prometheus_queries
from loadgen.profile import Profile

pytestmark = pytest.mark.live

# Grafana's interval variables, at sizes that hold enough 1 s scrapes of the test profile.
INTERVALS = {"$__rate_interval": "15s", "$__interval": "5s", "$__range": "2m"}
# Selected as "All": any value of the label.
ALL = ".+"
# Bounds of the background traffic: it stops by itself even if the test never returns.
MAX_REQUESTS = 20_000
MAX_SECONDS = 180.0
HEX_TRACE_ID = re.compile(r"[0-9a-f]{32}")
ALERT_SELECTOR = re.compile(r"\bALERTS(_FOR_STATE)?(\{[^}]*\})?")

QUERIES = [
    (uid, where, expr)
    for uid, document in dashboard_models().items()
    for where, expr in prometheus_queries(document)
]


def fill(expr: str) -> str:
    for name, value in INTERVALS.items():
        expr = expr.replace(name, value)
    return re.sub(r"\$\{?(\w+)(:\w+)?\}?", ALL, expr)


def _applicant_traffic(url: str, stop: threading.Event, seed: int) -> None:
    """Score applicants and send back half of the outcomes, as the load generator does."""
    rng = np.random.default_rng(seed)
    customers = len(customer_history()["customer_id"])
    deadline = time.monotonic() + MAX_SECONDS
    session = requests.Session()
    for count in range(MAX_REQUESTS):
        if stop.is_set() or time.monotonic() > deadline:
            return
        if count % 64 == 0:
            applicants = Profile().applicants(rng, 64)
        sent, _ = applicants[count % 64]
        body = {"customer_id": int(rng.integers(1, customers + 1)), **sent}
        answer = session.post(f"{url}/predict", json=body, timeout=5)
        if answer.ok and count % 2 == 0:
            session.post(
                f"{url}/feedback",
                json={"prediction_id": answer.json()["prediction_id"], "defaulted": False},
                timeout=5,
            )


@pytest.fixture(scope="module")
def traffic(stack) -> Iterator[None]:
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=4) as pool:
        # A seed each: four copies of one draw would make the traffic's feature shares four
        # times as noisy, and could tip a drift alert that later tests must not inherit.
        for seed in range(4):
            pool.submit(_applicant_traffic, stack.scoring, stop, seed)
        try:
            # PSI needs a window's worth of predictions; it is the last figure to appear.
            stack.wait_for_query("obslab:model_feature:psi", timeout=90)
            stack.wait_for_query("obslab:model_accuracy:ratio", timeout=60)
            yield
        finally:
            stop.set()


@pytest.mark.parametrize(
    ("uid", "where", "expr"), QUERIES, ids=[f"{u}: {w}" for u, w, _ in QUERIES]
)
def test_query_returns_data(stack, traffic, uid: str, where: str, expr: str) -> None:
    if expr.startswith("label_values("):
        metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", expr).groups()
        result = stack.query(f"count by ({label}) ({fill(metric)})")
        assert result, f"{uid} {where}: variable {expr!r} has no values"
        return
    result = stack.query(fill(expr))
    alert_state = ALERT_SELECTOR.search(expr)
    if not result and alert_state:
        # An alert panel is rightly empty while nothing is in the state it shows; then the
        # bare selector it reads is empty too.
        selector = alert_state.group(0)
        assert not stack.query(selector), f"{uid} {where}: {selector} has series, {expr!r} none"
        return
    assert result, f"{uid} {where}: {fill(expr)!r} returned nothing"


def test_latency_exemplars_carry_trace_ids(stack, traffic) -> None:
    """The exemplars Grafana links to Tempo exist, each with a W3C trace id."""
    exemplars = stack.wait_for_exemplars(
        'http_request_duration_seconds_bucket{job="scoring", route="/predict"}'
    )
    assert all(HEX_TRACE_ID.fullmatch(e["labels"]["trace_id"]) for e in exemplars)
