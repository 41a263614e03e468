"""An unhandled exception: a JSON 500 for the client, one JSON log line, no raw path anywhere."""

from __future__ import annotations

import orjson
import pytest

from app.features import create_app

CUSTOMER_ID = 4711


@pytest.mark.parametrize("telemetry", ["on", "off"])
def test_an_unhandled_exception_is_logged_once_as_json_without_the_path(
    tmp_path, capfd, caplog, telemetry
) -> None:
    database = tmp_path / "customers.db"
    app = create_app({"FEATURES_DB": str(database), "LOG_FILE": "", "TELEMETRY": telemetry})
    # A real failure below the view: the history store is no longer a database.
    database.write_bytes(b"not a database" * 512)
    capfd.readouterr()

    response = app.test_client().get(f"/customers/{CUSTOMER_ID}/features")

    assert response.status_code == 500
    assert response.get_json()["error"] == "internal server error"
    out, err = capfd.readouterr()
    # Flask's own log of it is plain text under the raw path, which names the customer; it
    # goes to stderr, or to the logging handlers when there are some (pytest's, here).
    assert str(CUSTOMER_ID) not in out + err + caplog.text
    assert "Traceback" not in err
    failures = [line for line in map(orjson.loads, out.splitlines()) if "exception" in line]
    assert len(failures) == 1
    (failure,) = failures
    assert failure["route"] == "/customers/<int:customer_id>/features"
    assert failure["level"] == "error"
    assert "file is not a database" in str(failure["exception"])
