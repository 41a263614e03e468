"""A cardinality attack: random paths, methods, headers and values add no series.

Every label value of the services' metrics comes from a closed set (URL rule templates,
standard methods, status codes, training bins, feature names), so once each reachable
combination has been seen, no request can add another series.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry

from app.model.data import APPLICANT_FEATURES, CUSTOMERS, FEATURE_SPECS
from app.scoring import create_app as create_scoring
from app.telemetry import EXTENSION_KEY
from app.telemetry.http_metrics import UNMATCHED
from tests.unit.services import APPLICANT, make_features, scoring_settings, served

ATTACK = 10_000
WARM_UP = 1_000
# Measured: scoring exposes 730 series after the attack and features 368; the bound leaves
# room for a few more routes or statuses, none for anything that grows per request.
MAX_SERIES = 1_000

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND", "BREW"]
PATHS = [
    "/predict",
    "/feedback",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/admin/faults",
    "/customers/{n}/features",
    "/customers/{word}/features",
    "/predict/{word}",
    "/{word}",
    "/{word}/{word}/{n}",
]


@pytest.fixture(scope="module")
def features_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return make_features(tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="module")
def scoring_app(features_app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with served(features_app) as features_url:
        yield create_scoring(scoring_settings(tmp_path_factory.mktemp("scoring"), features_url))


def word(rng: random.Random) -> str:
    return "".join(
        rng.choices(string.ascii_letters + string.digits + "-._~%", k=rng.randint(1, 12))
    )


def feature_value(rng: random.Random, name: str) -> object:
    spec = FEATURE_SPECS[name]
    return rng.choice(
        [
            None,
            rng.uniform(spec.minimum, spec.maximum),
            round(rng.uniform(spec.minimum, spec.maximum)),
            rng.uniform(-1e12, 1e12),
            word(rng),
        ]
    )


def hostile_request(client: FlaskClient, rng: random.Random) -> None:
    path = rng.choice(PATHS).format(n=rng.randint(-5, 2 * CUSTOMERS), word=word(rng))
    headers = {
        "X-Request-ID": word(rng),
        f"X-{word(rng)}": word(rng),
        "Accept": rng.choice(["*/*", "application/openmetrics-text", word(rng)]),
    }
    body = {"customer_id": rng.randint(-5, 2 * CUSTOMERS)} | {
        name: feature_value(rng, name) for name in APPLICANT_FEATURES
    }
    if rng.random() < 0.2:
        body[word(rng)] = word(rng)
    client.open(path, method=rng.choice(METHODS), headers=headers, json=body)


def legitimate_traffic(client: FlaskClient) -> None:
    """Every route and method once with a valid applicant, and an unknown customer."""
    rng = random.Random(0)
    for path in PATHS:
        for method in METHODS:
            client.open(path.format(n=17, word=word(rng)), method=method, json=APPLICANT)
    client.post("/predict", json=APPLICANT | {"customer_id": CUSTOMERS + 1})


def series(registry: CollectorRegistry) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for metric in registry.collect()
        for sample in metric.samples
    }


@pytest.mark.parametrize("service", ["scoring", "features"])
def test_hostile_requests_stop_adding_series(request: pytest.FixtureRequest, service: str) -> None:
    app: Flask = request.getfixturevalue(f"{service}_app")
    registry = app.extensions[EXTENSION_KEY].registry
    client = app.test_client()
    rng = random.Random(8)
    # Legitimate answers may first occur at any point of a random attack; seen first, they
    # cannot pass for growth.
    legitimate_traffic(client)

    for _ in range(WARM_UP):
        hostile_request(client, rng)
    after_warm_up = series(registry)
    for _ in range(ATTACK - WARM_UP):
        hostile_request(client, rng)
    after_attack = series(registry)

    assert after_attack - after_warm_up == set()
    assert len(after_attack) < MAX_SERIES
    counted = [dict(labels) for name, labels in after_attack if name == "http_requests_total"]
    assert {labels["route"] for labels in counted} <= {
        rule.rule for rule in app.url_map.iter_rules()
    } | {UNMATCHED}
    assert {labels["method"] for labels in counted} <= set(METHODS[:7]) | {"OTHER"}
