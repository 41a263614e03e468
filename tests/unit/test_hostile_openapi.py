"""schemathesis against the OpenAPI document scoring serves: no 5xx, every answer as documented."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.scoring import create_app as create_scoring
from app.scoring.openapi import OPENAPI_PATH, document
from tests.unit.services import make_features, scoring_settings, served


@pytest.fixture(scope="module")
def scoring_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    home = tmp_path_factory.mktemp("openapi")
    with served(make_features(home)) as features_url:
        yield create_scoring(scoring_settings(home, features_url))


@pytest.fixture(scope="module")
def api_schema(scoring_app: Flask) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_wsgi(OPENAPI_PATH, scoring_app)


def test_the_document_describes_every_public_route(scoring_app: Flask) -> None:
    document = scoring_app.test_client().get(OPENAPI_PATH).get_json()

    public = {
        rule.rule
        for rule in scoring_app.url_map.iter_rules()
        if rule.endpoint not in ("static", "metrics", "openapi")
        and not rule.rule.startswith("/admin")
    }
    assert set(document["paths"]) == public
    assert document["info"]["version"] == scoring_app.config["SERVICE_VERSION"]


# schemathesis' own pytest loader does not run under pytest 9, so each operation's strategy is
# driven by hypothesis directly; the checks are the same.
OPERATIONS = [
    (path, method.upper())
    for path, methods in document("any")["paths"].items()
    for method in methods
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_scoring_answers_as_documented(
    api_schema: schemathesis.BaseSchema, path: str, method: str
) -> None:
    operation = api_schema[path][method]

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def answers_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

    answers_as_documented()
