"""Settings from OBSLAB_* variables: text arrives as written, numbers and switches as JSON."""

from __future__ import annotations

import pytest

from app.features import create_app


@pytest.fixture
def features(tmp_path, monkeypatch):
    def start(**environ: str):
        for name, value in environ.items():
            monkeypatch.setenv(f"OBSLAB_{name}", value)
        return create_app({"FEATURES_DB": str(tmp_path / "customers.db"), "LOG_FILE": ""})

    return start


def test_text_settings_that_look_like_numbers_arrive_as_written(features):
    # JSON would read these as 1.1, infinity and 1000.0: the release, its commit and the token
    # the operator holds would all be something else.
    app = features(
        SERVICE_VERSION="1.10", COMMIT="4e12345", ADMIN_ENABLED="true", ADMIN_TOKEN="1e3"
    )
    client = app.test_client()

    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'version="1.10"' in metrics
    assert 'commit="4e12345"' in metrics
    admin = {
        token: client.get("/admin/faults", headers={"Authorization": f"Bearer {token}"})
        for token in ("1e3", "1000.0")
    }
    assert admin["1e3"].status_code == 200
    assert admin["1000.0"].status_code == 401


def test_numbers_and_switches_are_still_decoded(features):
    app = features(MAX_CONTENT_LENGTH="64", ADMIN_ENABLED="false")

    assert app.config["MAX_CONTENT_LENGTH"] == 64
    assert app.test_client().get("/admin/faults").status_code == 404
