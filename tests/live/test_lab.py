"""The lab runs: traffic flows, exemplars reach Prometheus, and losing features pages on-call.

Against the real native stack (``stack`` fixture): real gunicorn instances behind nginx, a real
Prometheus scraping them and evaluating the rules, a real Alertmanager delivering to the oncall
receiver.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import requests

from alerts.thresholds import load_profile

pytestmark = pytest.mark.live


def test_traffic_is_scored_and_scraped(stack):
    response = stack.predict()
    assert response.status_code == 200
    assert response.json()["model_version"]
    stack.wait_for_query(
        'sum by (job) (rate(http_requests_total{route="/predict", status="200"}[10s])) > 0'
    )
    stack.wait_for_query(
        'sum by (job) (rate(http_requests_total{job="features", status="200"}[10s])) > 0'
    )
    build = stack.wait_for_query('app_build_info{job="scoring"}')
    assert {series["metric"]["version"] for series in build} == {"1.0.0"}


def test_a_starting_prometheus_pages_no_target_absent(stack):
    """Prometheus syncs its first scrape targets seconds after it starts, so every job is
    absent for a moment: ``TargetAbsent`` waits that out, and never fired since the start."""
    start = stack.wait_for_query('process_start_time_seconds{job="prometheus"}')[0]
    started = float(start["value"][1])
    # Long enough for the bug this guards against to show: a `for:` shorter than the sync.
    time.sleep(
        max(0.0, started + load_profile("test").seconds("target_down.absent_for") + 5 - time.time())
    )
    uptime = time.time() - started
    fired = stack.query(
        'max_over_time(ALERTS{alertname="TargetAbsent", alertstate="firing"}'
        f"[{int(uptime) + 60}s])"
    )
    assert fired == [], [series["metric"]["job"] for series in fired]


def test_latency_exemplars_carry_trace_ids(stack):
    found = stack.wait_for_exemplars('http_request_duration_seconds_bucket{job="scoring"}')
    assert all(len(exemplar["labels"]["trace_id"]) == 32 for exemplar in found)


@pytest.mark.parametrize("service", ["scoring", "features"])
def test_metrics_pass_promtool(stack, service):
    instance = stack.wait_for_query(f'up{{job="{service}"}} == 1')[0]["metric"]["instance"]
    text = requests.get(f"http://{instance}/metrics", timeout=5).text
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_losing_features_pages_and_recovery_resolves(stack):
    since = time.time()
    stack.stop("features")
    try:
        # The symptoms (scoring's errors) are held back under this cause: test_alerting.py.
        # The page: while the instances stop one by one, half the job down tickets first.
        down = stack.wait_for_page(
            "TargetDown", labels={"job": "features", "severity": "page"}, since=since
        )
    finally:
        stack.start("features")

    assert down["annotations"]["summary"]
    assert down["annotations"]["runbook_url"].endswith("#targetdown")
    # Every alert names the last deploy: the running version and its commit.
    assert "1.0.0" in down["annotations"]["description"]
    assert down["labels"]["instance"].startswith("127.0.0.1:")

    stack.wait_for_page(
        "TargetDown",
        status="resolved",
        labels={"job": "features", "severity": "page"},
        since=since,
        # The page outlasts the outage by three rate windows, holding back its symptoms.
        timeout=120,
    )
