"""The scaling benchmark's parts (``make bench`` runs the benchmark itself, not the tests)."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bench.scaling import (
    NEW,
    OLD,
    Measurement,
    Page,
    Targets,
    instances_at_share,
    is_linear,
    target_groups,
    widen,
)


def recorded_families():
    registry = CollectorRegistry()
    bins = Counter(
        "model_feature_bin",
        "bins",
        ("feature", "bin", "model_version", "version"),
        registry=registry,
    )
    for feature in ("age", "income"):
        for bin_ in ("0", "1"):
            bins.labels(feature, bin_, "m1", OLD).inc(10)
    Gauge("app_build_info", "build", ("version", "previous_version"), registry=registry).labels(
        OLD, ""
    ).set(1)
    Gauge("app_deploy_timestamp_seconds", "deployed", registry=registry).set(5)
    return list(text_string_to_metric_families(generate_latest(registry).decode()))


def samples(text: bytes, name: str) -> list:
    return [
        sample
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if sample.name == name
    ]


def test_widen_copies_model_and_feature_series() -> None:
    widened = widen(recorded_families(), models=3, features=5)
    (bins,) = [f for f in widened if f.name == "model_feature_bin"]
    totals = [s for s in bins.samples if s.name == "model_feature_bin_total"]
    assert len(totals) == 5 * 2 * 3  # features x bins x models
    assert {s.labels["feature"] for s in totals} == {
        "age",
        "income",
        "feature_03",
        "feature_04",
        "feature_05",
    }
    assert {s.labels["model_version"] for s in totals} == {"m1", "m1-02", "m1-03"}


def test_a_page_grows_its_counters_and_carries_its_version() -> None:
    page = Page(recorded_families(), NEW, deployed_at=1000.0)
    first, later = page.render(0), page.render(4)
    before = sum(s.value for s in samples(first, "model_feature_bin_total"))
    after = sum(s.value for s in samples(later, "model_feature_bin_total"))
    assert after == 5 * before > 0
    (build,) = samples(later, "app_build_info")
    assert build.labels == {"version": NEW, "previous_version": OLD}
    assert {s.labels["version"] for s in samples(later, "model_feature_bin_total")} == {NEW}
    (deployed,) = samples(later, "app_deploy_timestamp_seconds")
    assert deployed.value == 1000.0
    old = Page(recorded_families(), OLD, deployed_at=1000.0).render(0)
    assert samples(old, "app_deploy_timestamp_seconds")[0].value < 1000.0


def test_targets_serve_each_instance_path() -> None:
    pages = [Page(recorded_families(), NEW, 1.0), Page(recorded_families(), OLD, 1.0)]
    with Targets(pages, interval=60) as targets:
        groups = target_groups(targets.port, 3)
        assert [g["labels"]["instance"] for g in groups] == [
            "scoring-000",
            "scoring-001",
            "scoring-002",
        ]
        base = f"http://{groups[0]['targets'][0]}"
        versions = []
        for group in groups:
            response = requests.get(base + group["labels"]["__metrics_path__"], timeout=10)
            assert response.status_code == 200
            (build,) = samples(response.content, "app_build_info")
            versions.append(build.labels["version"])
        assert versions == [NEW, OLD, NEW]
        assert requests.get(f"{base}/metrics/x", timeout=10).status_code == 404


def test_linearity_and_the_instance_limit() -> None:
    assert is_linear([(2, 120), (8, 420), (32, 1620), (128, 6420)])
    assert not is_linear([(2, 120), (8, 420), (32, 3000), (128, 20000)])
    measurement = Measurement(
        instances=128,
        head_series=1,
        groups={"a": (0.05, 5.0), "b": (0.25, 5.0)},
        scrape_seconds=0.01,
        rss_bytes=1,
    )
    # The slowest group takes 5 % of its interval at 128: 10 % at about 256.
    assert instances_at_share(measurement, 0.10) == pytest.approx(256)
    assert instances_at_share(measurement, 1.0) == pytest.approx(2560)


def test_a_render_is_reused_within_a_step() -> None:
    page = Page(recorded_families(), NEW, time.time())
    assert page.render(1) is page.render(1)
