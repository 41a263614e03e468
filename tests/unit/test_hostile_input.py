"""Hostile input against scoring and features: nothing gets a 5xx, every 4xx says what is wrong.

Scoring reaches a real features service over HTTP, as in production, so an input that slips
through validation meets the real lookup and the real model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.model.data import APPLICANT_FEATURES, CUSTOMERS, FEATURE_SPECS
from app.scoring import create_app as create_scoring
from app.settings import SERVICE_DEFAULTS
from tests.unit.services import APPLICANT, make_features, scoring_settings, served

BODY_LIMIT = int(SERVICE_DEFAULTS["MAX_CONTENT_LENGTH"])  # type: ignore[call-overload]

# Numbers as hostile as JSON text can carry: unbounded integers, NaN and the infinities
# (json.dumps writes them as the non-standard tokens NaN and Infinity), huge and tiny floats.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([2**63, -(2**63) - 1, 1e308, 5e-324, -0.0])
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
HOSTILE = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def features_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return make_features(tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="module")
def features_url(features_app: Flask) -> Iterator[str]:
    with served(features_app) as url:
        yield url


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("models"))


@pytest.fixture
def scoring(tmp_path, features_url: str, models_dir: str) -> FlaskClient:
    # Every example gets fresh predictions but shares one trained model.
    app = create_scoring(scoring_settings(tmp_path, features_url) | {"MODELS_DIR": models_dir})
    return app.test_client()


@pytest.fixture
def features(features_app: Flask) -> FlaskClient:
    return features_app.test_client()


def post(client: FlaskClient, path: str, body: object, content_type: str = "application/json"):
    return client.post(path, data=json.dumps(body), content_type=content_type)


def names(response, field: str) -> bool:
    """The error names ``field``, or the value made the whole body invalid JSON (NaN, 2**64)."""
    body = response.get_json()
    return body.get("field") == field or body["error"].startswith("body is not valid JSON")


def assert_no_server_error(response) -> None:
    """Below 500, and a 4xx carries a JSON object whose ``error`` says what is wrong."""
    assert response.status_code < 500, response.get_data()
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict), response.get_data()
        assert isinstance(body.get("error"), str) and body["error"]


@HOSTILE
@given(body=JSON)
@pytest.mark.parametrize("path", ["/predict", "/feedback"])
def test_any_json_body_is_refused_without_a_server_error(
    scoring: FlaskClient, path: str, body: object
) -> None:
    response = post(scoring, path, body)

    assert_no_server_error(response)
    assert response.status_code in (400, 413)


@HOSTILE
@given(field=st.sampled_from(list(APPLICANT)), value=JSON)
@example(field="income", value=float("nan"))
@example(field="loan_amount", value=float("inf"))
@example(field="customer_id", value=2**64)
@example(field="age", value=True)
def test_any_value_in_an_applicant_field_is_scored_or_named(
    scoring: FlaskClient, field: str, value: object
) -> None:
    response = post(scoring, "/predict", APPLICANT | {field: value})

    assert_no_server_error(response)
    if response.status_code != 200:
        assert response.status_code in (400, 422)
        assert names(response, field)


def _feature_value(name: str) -> st.SearchStrategy[float | None]:
    spec = FEATURE_SPECS[name]
    if spec.integer:
        number = st.integers(int(spec.minimum), int(spec.maximum))
    else:
        number = st.floats(spec.minimum, spec.maximum)
    return st.none() | number


APPLICANTS = st.fixed_dictionaries(
    {"customer_id": st.integers(1, CUSTOMERS)}
    | {name: _feature_value(name) for name in APPLICANT_FEATURES}
)


@HOSTILE
@given(applicant=APPLICANTS)
def test_every_applicant_in_range_is_scored(scoring: FlaskClient, applicant: dict) -> None:
    response = post(scoring, "/predict", applicant)

    assert response.status_code == 200, response.get_data()
    body = response.get_json()
    assert 0 <= body["default_probability"] <= 1
    assert body["decision"] in ("approve", "decline")


@HOSTILE
@given(field=st.sampled_from(["prediction_id", "defaulted"]), value=JSON)
def test_any_value_in_a_feedback_field_is_named(
    scoring: FlaskClient, field: str, value: object
) -> None:
    response = post(
        scoring, "/feedback", {"prediction_id": "f" * 32, "defaulted": True} | {field: value}
    )

    assert_no_server_error(response)
    # No prediction was ever made, so a valid body can only meet an unknown id.
    if response.status_code == 404:
        assert response.get_json()["field"] == "prediction_id"
    else:
        assert response.status_code == 400
        assert names(response, field)


@pytest.mark.parametrize(
    "data",
    [
        b"[" * (BODY_LIMIT - 1),
        b"[" * 2000 + b"]" * 2000,
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
        b'"' + b"\\u0000" * 2000 + b'"',
        b"\xff\xfe\x00{",
        b"",
    ],
    ids=["unclosed", "deep-arrays", "deep-objects", "nul-escapes", "not-utf8", "empty"],
)
@pytest.mark.parametrize("path", ["/predict", "/feedback"])
def test_deep_or_broken_json_is_a_400(scoring: FlaskClient, path: str, data: bytes) -> None:
    response = scoring.post(path, data=data, content_type="application/json")

    assert response.status_code == 400
    assert_no_server_error(response)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(size=st.integers(BODY_LIMIT + 1, 64 * BODY_LIMIT))
@pytest.mark.parametrize("path", ["/predict", "/feedback"])
def test_a_body_over_the_limit_is_413(scoring: FlaskClient, path: str, size: int) -> None:
    # Valid JSON all the way, so only the size can be the reason.
    data = b'{"pad": "' + b"x" * (size - 11) + b'"}'

    response = scoring.post(path, data=data, content_type="application/json")

    assert response.status_code == 413
    assert_no_server_error(response)


JSON_TYPES = ["application/json", "Application/JSON", "application/json; charset=utf-8"]
OTHER_TYPES = [
    "",
    "text/plain",
    "text/json",
    "application/json-patch+json",
    "application/jsonx",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/xml",
    "*/*",
]


@HOSTILE
@given(
    content_type=st.sampled_from(OTHER_TYPES)
    | st.from_regex(r"\A[a-z]{1,10}/[a-z0-9.+-]{1,20}\Z").filter(
        lambda value: value != "application/json"
    )
)
@pytest.mark.parametrize("path", ["/predict", "/feedback"])
def test_a_body_that_is_not_declared_json_is_415(
    scoring: FlaskClient, path: str, content_type: str
) -> None:
    response = post(scoring, path, APPLICANT, content_type=content_type)

    assert response.status_code == 415
    assert_no_server_error(response)


@pytest.mark.parametrize("content_type", JSON_TYPES)
def test_json_is_recognised_whatever_its_case_and_parameters(
    scoring: FlaskClient, content_type: str
) -> None:
    assert post(scoring, "/predict", APPLICANT, content_type=content_type).status_code == 200


@HOSTILE
@given(customer_id=st.integers(min_value=0))
@example(customer_id=2**63)
@example(customer_id=10**30)
def test_any_customer_id_in_a_features_path_is_found_or_404(
    features: FlaskClient, customer_id: int
) -> None:
    response = features.get(f"/customers/{customer_id}/features")

    assert_no_server_error(response)
    if customer_id in range(1, CUSTOMERS + 1):
        assert response.status_code == 200
        assert response.get_json()["customer_id"] == customer_id
    else:
        assert response.status_code == 404


@HOSTILE
@given(segment=st.text(min_size=1, max_size=40), method=st.sampled_from(["GET", "POST", "PUT"]))
def test_any_path_segment_or_method_on_features_is_a_json_4xx_or_found(
    features: FlaskClient, segment: str, method: str
) -> None:
    response = features.open(f"/customers/{quote(segment, safe='')}/features", method=method)

    assert_no_server_error(response)
