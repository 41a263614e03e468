"""The admin API: off by default, refused in prod, a constant-time bearer token, JSON errors."""

from __future__ import annotations

import hmac

import pytest
from structlog.testing import capture_logs

from app.features import create_app

TOKEN = "s3cret-token"


def features(tmp_path, **config):
    return create_app(
        {
            "FEATURES_DB": str(tmp_path / "customers.db"),
            "LOG_FILE": "",
            "TELEMETRY": "off",
            **config,
        }
    )


@pytest.fixture
def client(tmp_path):
    return features(tmp_path, ADMIN_ENABLED=True, ADMIN_TOKEN=TOKEN).test_client()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_admin_api_is_off_unless_enabled(tmp_path):
    client = features(tmp_path).test_client()
    assert client.get("/admin/faults", headers=auth()).status_code == 404


def test_admin_api_refuses_the_prod_profile(tmp_path):
    with pytest.raises(ValueError, match="ADMIN_ENABLED"):
        features(tmp_path, ADMIN_ENABLED=True, ADMIN_TOKEN=TOKEN, PROFILE="prod")


def test_admin_api_needs_a_token(tmp_path):
    with pytest.raises(ValueError, match="ADMIN_TOKEN"):
        features(tmp_path, ADMIN_ENABLED=True)


@pytest.mark.parametrize("headers", [{}, auth("wrong"), {"Authorization": f"Basic {TOKEN}"}])
def test_missing_or_wrong_token_is_401_naming_the_header(client, headers):
    response = client.get("/admin/faults", headers=headers)
    assert response.status_code == 401
    assert response.json["field"] == "Authorization"


def test_token_is_compared_in_constant_time(client, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(given, expected):
        calls.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr("app.admin.hmac.compare_digest", spy)
    assert client.get("/admin/faults", headers=auth()).status_code == 200
    assert calls == [(TOKEN.encode(), TOKEN.encode())]


def test_inject_list_and_clear(client):
    response = client.post(
        "/admin/faults",
        json={"name": "dependency-down", "params": {"rate": 1}, "duration_seconds": 60},
        headers=auth(),
    )
    assert response.status_code == 201
    assert response.json["params"] == {"rate": 1.0}
    assert client.get("/customers/1/features").status_code == 503
    assert [f["name"] for f in client.get("/admin/faults", headers=auth()).json["faults"]] == [
        "dependency-down"
    ]
    assert client.delete("/admin/faults/dependency-down", headers=auth()).json == {
        "cleared": ["dependency-down"]
    }
    assert client.get("/customers/1/features").status_code == 200


def test_hidden_fault_acts_but_is_neither_listed_nor_logged(client):
    with capture_logs() as logs:
        response = client.post(
            "/admin/faults", json={"name": "dependency-down", "hidden": True}, headers=auth()
        )
        assert response.status_code == 201
        assert "dependency-down" not in response.get_data(as_text=True)
        assert client.get("/customers/1/features").status_code == 503
        assert client.get("/admin/faults", headers=auth()).json == {"faults": []}
        assert client.delete("/admin/faults", headers=auth()).json == {"cleared": []}
    assert not [line for line in logs if "fault" in str(line)]
    assert client.get("/customers/1/features").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({}, "name"),
        ({"name": "cpu-hog"}, "name"),  # a scoring fault, not one of features'
        ({"name": "dependency-down", "params": []}, "params"),
        ({"name": "dependency-down", "params": {"rate": 2}}, "params.rate"),
        ({"name": "dependency-down", "params": {"rate": "all"}}, "params.rate"),
        ({"name": "dependency-down", "params": {"speed": 1}}, "params.speed"),
        ({"name": "dependency-down", "duration_seconds": 0}, "duration_seconds"),
        ({"name": "dependency-down", "duration_seconds": True}, "duration_seconds"),
        ({"name": "dependency-down", "hidden": "yes"}, "hidden"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client, body, field):
    response = client.post("/admin/faults", json=body, headers=auth())
    assert 400 <= response.status_code < 500
    assert response.json["field"] == field
