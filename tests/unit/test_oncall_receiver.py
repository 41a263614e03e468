"""The oncall receiver through Flask's test client, with a real SQLite file under tmp_path."""

from __future__ import annotations

import copy
import json
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from obslab.oncall import ConfigError, create_app
from tests.unit.oncall_payloads import AUTH, TOKEN, alert, notification


@pytest.fixture(autouse=True)
def _no_obslab_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come only from each test, never from the shell that runs the suite."""
    for name in list(os.environ):
        if name.startswith("OBSLAB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path / "home"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "pages.db"


@pytest.fixture
def make_app(db_path: Path) -> Callable[..., Flask]:
    def make(**config: object) -> Flask:
        return create_app({"ONCALL_TOKEN": TOKEN, "ONCALL_DB": str(db_path), **config})

    return make


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app().test_client()


def post(client: FlaskClient, payload: object, headers: dict[str, str] = AUTH):
    return client.post("/webhook", json=payload, headers=headers)


def pages(client: FlaskClient, query: str = "") -> list[dict]:
    response = client.get(f"/pages{query}")
    assert response.status_code == 200
    return response.get_json()


def metric(client: FlaskClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{name}{labels} not exposed")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer tökén"},
    ],
    ids=["none", "wrong", "prefix", "longer", "basic", "empty", "non-ascii"],
)
def test_webhook_without_the_right_bearer_token_is_refused(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = post(client, notification(alert()), headers)

    assert response.status_code == 401
    assert response.get_json()["field"] == "Authorization"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert pages(client) == []
    assert metric(client, "oncall_webhook_rejected_total", reason="unauthorized") == 1


def test_a_valid_notification_is_stored_and_listed(client: FlaskClient) -> None:
    before = datetime.now(UTC)
    firing = alert(instance="127.0.0.1:8100", starts_at="2024-05-01T14:00:00.25+02:00")

    response = post(client, notification(firing))

    assert response.status_code == 200
    assert response.get_json() == {"received": 1, "stored": 1}
    [page] = pages(client)
    received_at = datetime.fromisoformat(page.pop("received_at"))
    assert received_at.utcoffset().total_seconds() == 0
    assert before.replace(microsecond=0) <= received_at <= datetime.now(UTC)
    assert page == {
        "alertname": "HighErrorRate",
        "status": "firing",
        "labels": firing["labels"],
        "annotations": firing["annotations"],
        "starts_at": "2024-05-01T12:00:00.250Z",
        "ends_at": None,
        "generator_url": firing["generatorURL"],
        "fingerprint": "a1b2c3d4e5f60718",
        "kind": "page",
        # No Alertmanager to ask in this app: the page keeps what it last heard.
        "state": "firing",
        "held_back_by": [],
        "checked": False,
    }


@pytest.fixture
def three_pages(client: FlaskClient) -> FlaskClient:
    post(client, notification(alert("TargetDown", fingerprint="f1")))
    post(client, notification(alert("HighLatency", fingerprint="f2")))
    post(
        client,
        notification(
            alert("TargetDown", status="resolved", fingerprint="f1", ends_at="2024-05-01T12:05:00Z")
        ),
    )
    return client


def test_pages_are_listed_newest_first(three_pages: FlaskClient) -> None:
    listed = [(page["alertname"], page["status"], page["ends_at"]) for page in pages(three_pages)]

    assert listed == [
        ("TargetDown", "resolved", "2024-05-01T12:05:00.000Z"),
        ("HighLatency", "firing", None),
        ("TargetDown", "firing", None),
    ]


def test_a_redelivered_notification_is_stored_once(client: FlaskClient) -> None:
    payload = notification(alert())
    repeat = copy.deepcopy(payload)
    # Alertmanager's repeat_interval resends the group, perhaps to another receiver name.
    repeat["receiver"] = "oncall-repeat"
    same_instant = alert(starts_at="2024-05-01T14:00:00+02:00")

    answers = [post(client, body).get_json() for body in (payload, payload, repeat)]
    answers.append(post(client, notification(same_instant)).get_json())

    assert answers[0] == {"received": 1, "stored": 1}
    assert answers[1:] == [{"received": 1, "stored": 0}] * 3
    assert len(pages(client)) == 1
    assert metric(client, "oncall_notifications_total", status="firing") == 1


def test_a_new_firing_episode_of_the_same_alert_is_a_new_page(client: FlaskClient) -> None:
    post(client, notification(alert(starts_at="2024-05-01T12:00:00Z")))
    post(client, notification(alert(starts_at="2024-05-01T13:00:00Z")))

    assert [page["starts_at"] for page in pages(client)] == [
        "2024-05-01T13:00:00.000Z",
        "2024-05-01T12:00:00.000Z",
    ]


def _parent(payload: dict, path: tuple[str | int, ...]) -> tuple[dict | list, str | int]:
    *parents, last = path
    for key in parents:
        payload = payload[key]
    return payload, last


def _set(path: tuple[str | int, ...], value: object) -> Callable[[dict], None]:
    def mutate(payload: dict) -> None:
        parent, key = _parent(payload, path)
        parent[key] = value

    return mutate


def _delete(path: tuple[str | int, ...]) -> Callable[[dict], None]:
    def mutate(payload: dict) -> None:
        parent, key = _parent(payload, path)
        del parent[key]

    return mutate


MALFORMED = {
    "missing alerts": (_delete(("alerts",)), "alerts"),
    "alerts not a list": (_set(("alerts",), {"0": alert()}), "alerts"),
    "alerts empty": (_set(("alerts",), []), "alerts"),
    "alert not an object": (_set(("alerts", 0), "HighErrorRate"), "alerts[0]"),
    "alert missing labels": (_delete(("alerts", 0, "labels")), "alerts[0].labels"),
    "labels a list": (_set(("alerts", 0, "labels"), ["alertname"]), "alerts[0].labels"),
    "label value a number": (_set(("alerts", 0, "labels", "job"), 7), "alerts[0].labels.job"),
    "no alertname": (
        _delete(("alerts", 0, "labels", "alertname")),
        "alerts[0].labels.alertname",
    ),
    "annotation value null": (
        _set(("alerts", 0, "annotations", "summary"), None),
        "alerts[0].annotations.summary",
    ),
    "alert status unknown": (_set(("alerts", 0, "status"), "pending"), "alerts[0].status"),
    "status a number": (_set(("status",), 1), "status"),
    "wrong version": (_set(("version",), "3"), "version"),
    "version a number": (_set(("version",), 4), "version"),
    "missing receiver": (_delete(("receiver",)), "receiver"),
    "groupKey null": (_set(("groupKey",), None), "groupKey"),
    "startsAt not a time": (_set(("alerts", 0, "startsAt"), "yesterday"), "alerts[0].startsAt"),
    "startsAt without offset": (
        _set(("alerts", 0, "startsAt"), "2024-05-01T12:00:00"),
        "alerts[0].startsAt",
    ),
    "startsAt a number": (_set(("alerts", 0, "startsAt"), 1714564800), "alerts[0].startsAt"),
    "resolved without end": (_set(("alerts", 0, "status"), "resolved"), "alerts[0].endsAt"),
    "fingerprint a number": (_set(("alerts", 0, "fingerprint"), 12), "alerts[0].fingerprint"),
    "fingerprint empty": (_set(("alerts", 0, "fingerprint"), ""), "alerts[0].fingerprint"),
    "missing generatorURL": (_delete(("alerts", 0, "generatorURL")), "alerts[0].generatorURL"),
}


@pytest.mark.parametrize(("mutate", "field"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_payload_is_refused_naming_the_field(
    client: FlaskClient, mutate: Callable[[dict], None], field: str
) -> None:
    payload = notification(alert())
    mutate(payload)

    response = post(client, payload)

    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == field
    assert body["error"].startswith(field)
    assert pages(client) == []
    assert metric(client, "oncall_webhook_rejected_total", reason="malformed") == 1


@pytest.mark.parametrize("body", [b"", b"{not json", b"[]", b'"text"', b"\xff\xfe"])
def test_a_body_that_is_no_json_object_is_refused(client: FlaskClient, body: bytes) -> None:
    response = client.post(
        "/webhook", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.get_json()["field"] == "body"
    assert pages(client) == []


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "text/json"]
)
def test_a_body_that_is_not_declared_json_is_refused(
    client: FlaskClient, content_type: str | None
) -> None:
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/webhook", data=json.dumps(notification(alert())), headers=headers)

    assert response.status_code == 415
    assert response.get_json()["field"] == "Content-Type"
    assert pages(client) == []
    assert metric(client, "oncall_webhook_rejected_total", reason="unsupported_media_type") == 1


def test_a_body_over_the_size_limit_is_refused(make_app: Callable[..., Flask]) -> None:
    client = make_app(MAX_CONTENT_LENGTH=2048).test_client()
    small = notification(alert())
    large = notification(*(alert(fingerprint=f"{n:016x}") for n in range(40)))

    assert post(client, small).status_code == 200
    response = post(client, large)

    assert response.status_code == 413
    assert response.get_json()["field"] == "body"
    assert len(pages(client)) == 1
    assert metric(client, "oncall_webhook_rejected_total", reason="too_large") == 1


def test_one_malformed_alert_refuses_its_whole_batch(client: FlaskClient) -> None:
    assert post(client, notification(alert("TargetDown", fingerprint="f0"))).status_code == 200
    broken = alert("HighLatency", fingerprint="f2")
    del broken["labels"]

    response = post(client, notification(alert("HighErrorRate", fingerprint="f1"), broken))

    assert response.status_code == 400
    assert response.get_json()["field"] == "alerts[1].labels"
    assert [page["alertname"] for page in pages(client)] == ["TargetDown"]


def test_a_storage_failure_answers_503_so_alertmanager_retries(
    client: FlaskClient, db_path: Path
) -> None:
    with closing(sqlite3.connect(db_path)) as connection:
        connection.execute("DROP TABLE pages")

    response = post(client, notification(alert()))

    assert response.status_code == 503
    assert "error" in response.get_json()
    assert client.get("/readyz").status_code == 503


def test_a_batch_that_fails_midway_in_storage_leaves_nothing(
    client: FlaskClient, db_path: Path
) -> None:
    with closing(sqlite3.connect(db_path)) as connection:
        connection.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON pages WHEN NEW.alertname = 'Refused' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )

    response = post(
        client,
        notification(alert("Accepted", fingerprint="f1"), alert("Refused", fingerprint="f2")),
    )

    assert response.status_code == 503
    assert pages(client) == []
    assert metric(client, "oncall_notifications_total", status="firing") == 0


def test_pages_persist_when_the_app_is_created_again(make_app: Callable[..., Flask]) -> None:
    first = make_app().test_client()
    post(first, notification(alert("TargetDown", fingerprint="f1")))
    post(first, notification(alert("HighLatency", fingerprint="f2")))

    second = make_app().test_client()

    assert pages(second) == pages(first)
    assert [page["alertname"] for page in pages(second)] == ["HighLatency", "TargetDown"]
    assert post(second, notification(alert("TargetDown", fingerprint="f1"))).get_json() == {
        "received": 1,
        "stored": 0,
    }


def test_the_html_view_escapes_what_alerts_carry(client: FlaskClient) -> None:
    hostile = alert(instance="<script>alert(1)</script>")
    hostile["annotations"]["summary"] = 'Errors "&" <b>more</b>'
    hostile["generatorURL"] = "javascript:alert(2)"
    post(client, notification(hostile))

    response = client.get("/")
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "HighErrorRate" in html
    assert "instance=&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Errors &#34;&amp;&#34; &lt;b&gt;more&lt;/b&gt;" in html
    assert "<script>" not in html
    assert "javascript:" not in html


def test_the_html_view_lists_pages_and_applies_filters(client: FlaskClient) -> None:
    post(client, notification(alert("TargetDown", fingerprint="f1")))
    post(client, notification(alert("HighLatency", fingerprint="f2")))

    everything = client.get("/").get_data(as_text=True)
    filtered = client.get("/?alertname=HighLatency&status=").get_data(as_text=True)

    assert "TargetDown" in everything and "HighLatency" in everything
    assert "HighLatency" in filtered and "TargetDown" not in filtered


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [("TargetDown", "resolved"), ("HighLatency", "firing"), ("TargetDown", "firing")]),
        ("?alertname=TargetDown", [("TargetDown", "resolved"), ("TargetDown", "firing")]),
        ("?status=firing", [("HighLatency", "firing"), ("TargetDown", "firing")]),
        ("?alertname=TargetDown&status=firing", [("TargetDown", "firing")]),
        ("?alertname=MemoryGrowth", []),
        (
            "?alertname=&status=",
            [("TargetDown", "resolved"), ("HighLatency", "firing"), ("TargetDown", "firing")],
        ),
    ],
)
def test_filters_select_pages(
    three_pages: FlaskClient, query: str, expected: list[tuple[str, str]]
) -> None:
    listed = [(page["alertname"], page["status"]) for page in pages(three_pages, query)]

    assert listed == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=pending", "status"),
        ("?alertname=High%20Error", "alertname"),
        ("?alertname=1Down", "alertname"),
        ("?severity=page", "severity"),
        ("?status=firing&status=resolved", "status"),
        ("?kind=urgent", "kind"),
        ("?state=pending", "state"),
    ],
)
@pytest.mark.parametrize("path", ["/pages", "/"])
def test_a_bad_filter_is_refused_naming_it(
    client: FlaskClient, path: str, query: str, field: str
) -> None:
    response = client.get(f"{path}{query}")

    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_pages_and_tickets_are_told_apart_by_severity(client: FlaskClient) -> None:
    post(client, notification(alert("TargetDown", fingerprint="f1")))
    post(client, notification(alert("FeatureDrift", fingerprint="f2", severity="ticket")))
    no_severity = alert("Unlabelled", fingerprint="f3")
    del no_severity["labels"]["severity"]
    post(client, notification(no_severity))

    every = {page["alertname"]: page["kind"] for page in pages(client)}
    only_pages = [page["alertname"] for page in pages(client, "?kind=page")]
    only_tickets = [page["alertname"] for page in pages(client, "?kind=ticket")]

    # Alertmanager routes an alert without a severity to the ticket receiver.
    assert every == {"TargetDown": "page", "FeatureDrift": "ticket", "Unlabelled": "ticket"}
    assert only_pages == ["TargetDown"]
    assert only_tickets == ["Unlabelled", "FeatureDrift"]


def _section(html: str, section_id: str) -> str:
    start = html.index(f'<section id="{section_id}">')
    return html[start : html.index("</section>", start)]


def test_the_html_view_lists_pages_and_tickets_in_their_own_sections(client: FlaskClient) -> None:
    post(client, notification(alert("TargetDown", fingerprint="f1")))
    post(client, notification(alert("FeatureDrift", fingerprint="f2", severity="ticket")))

    html = client.get("/").get_data(as_text=True)
    tickets_only = client.get("/?kind=ticket").get_data(as_text=True)

    assert "TargetDown" in _section(html, "pages")
    assert "FeatureDrift" not in _section(html, "pages")
    assert "FeatureDrift" in _section(html, "tickets")
    assert "TargetDown" not in _section(html, "tickets")
    assert "TargetDown" not in tickets_only and "FeatureDrift" in tickets_only


def test_without_alertmanager_a_firing_page_says_it_is_unchecked(client: FlaskClient) -> None:
    post(client, notification(alert("TargetDown", fingerprint="f1")))
    post(
        client,
        notification(
            alert("TargetDown", status="resolved", fingerprint="f1", ends_at="2024-05-01T12:05:00Z")
        ),
    )
    post(client, notification(alert("HighLatency", fingerprint="f2")))

    listed = [(p["alertname"], p["status"], p["state"], p["checked"]) for p in pages(client)]
    html = client.get("/").get_data(as_text=True)

    assert listed == [
        ("HighLatency", "firing", "firing", False),
        ("TargetDown", "resolved", "resolved", True),
        # Its episode was resolved: the firing notification no longer reads as firing.
        ("TargetDown", "firing", "resolved", True),
    ]
    assert [p["alertname"] for p in pages(client, "?state=firing")] == ["HighLatency"]
    assert "OBSLAB_ALERTMANAGER_URL is not set" in html
    assert "firing (unchecked)" in html
    assert client.get("/held-back").status_code == 503


def test_a_database_from_before_kinds_is_read_with_them(
    make_app: Callable[..., Flask], db_path: Path
) -> None:
    with closing(sqlite3.connect(db_path)) as connection, connection:
        connection.executescript(
            """
            CREATE TABLE pages (
                id INTEGER PRIMARY KEY, alertname TEXT NOT NULL, status TEXT NOT NULL,
                labels TEXT NOT NULL, annotations TEXT NOT NULL, starts_at TEXT NOT NULL,
                ends_at TEXT NOT NULL, generator_url TEXT NOT NULL, fingerprint TEXT NOT NULL,
                received_at TEXT NOT NULL, UNIQUE (fingerprint, status, starts_at, ends_at)
            );
            INSERT INTO pages VALUES
              (1, 'FeatureDrift', 'firing', '{"alertname":"FeatureDrift","severity":"ticket"}',
               '{}', '2024-05-01T12:00:00.000Z', '', '', 'f1', '2024-05-01T12:00:01.000Z'),
              (2, 'TargetDown', 'firing', '{"alertname":"TargetDown","severity":"page"}',
               '{}', '2024-05-01T12:00:00.000Z', '', '', 'f2', '2024-05-01T12:00:02.000Z');
            """
        )

    client = make_app().test_client()

    assert [page["alertname"] for page in pages(client, "?kind=page")] == ["TargetDown"]
    assert [page["alertname"] for page in pages(client, "?kind=ticket")] == ["FeatureDrift"]
    assert post(client, notification(alert("Later", fingerprint="f3"))).status_code == 200


def test_health_readiness_and_unknown_routes(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready"}
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert "error" in missing.get_json()
    wrong_method = client.get("/webhook")
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.get_json()


def test_metrics_count_stored_notifications_and_rejections(client: FlaskClient) -> None:
    post(client, notification(alert(fingerprint="f1")))
    post(client, notification(alert(fingerprint="f1")))
    post(
        client,
        notification(
            alert(status="resolved", fingerprint="f1", ends_at="2024-05-01T12:05:00Z"),
            alert("TargetDown", fingerprint="f2"),
        ),
    )
    post(client, notification(alert()), headers={})
    post(client, {"alerts": []})

    assert metric(client, "oncall_notifications_total", status="firing") == 2
    assert metric(client, "oncall_notifications_total", status="resolved") == 1
    assert metric(client, "oncall_webhook_rejected_total", reason="unauthorized") == 1
    assert metric(client, "oncall_webhook_rejected_total", reason="malformed") == 1
    assert metric(client, "oncall_webhook_rejected_total", reason="too_large") == 0
    assert metric(client, "process_resident_memory_bytes") > 0


def test_each_stored_notification_is_logged_and_the_token_never_is(client: FlaskClient) -> None:
    with structlog.testing.capture_logs() as logs:
        post(client, notification(alert("TargetDown", fingerprint="f1")))
        post(client, notification(alert("TargetDown", fingerprint="f1")))
        post(client, notification(alert()), headers={"Authorization": "Bearer guessed-token"})

    stored = [entry for entry in logs if entry["event"] == "page_stored"]
    assert [(entry["alertname"], entry["status"]) for entry in stored] == [("TargetDown", "firing")]
    assert [entry["reason"] for entry in logs if entry["event"] == "webhook_rejected"] == [
        "unauthorized"
    ]
    assert TOKEN not in repr(logs)
    assert "guessed-token" not in repr(logs)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
ALERT_KEYS = (
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
)
TOP_KEYS = ("version", "groupKey", "status", "receiver", "alerts")


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    where=st.sampled_from(
        [(key,) for key in TOP_KEYS] + [("alerts", 0, key) for key in ALERT_KEYS]
    ),
    value=JSON_VALUES,
)
def test_any_json_in_any_field_gets_200_or_400_never_5xx(
    client: FlaskClient, where: tuple[str | int, ...], value: object
) -> None:
    # Resolved, so that no value of one field makes another one wrong.
    payload = notification(alert(status="resolved", ends_at="2024-05-01T12:05:00Z"))
    _set(where, value)(payload)

    response = post(client, payload)

    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.get_json()["field"].startswith(_field_name(where))


def _field_name(path: tuple[str | int, ...]) -> str:
    return "".join(
        f"[{key}]" if isinstance(key, int) else (f".{key}" if index else key)
        for index, key in enumerate(path)
    )


def test_missing_token_refuses_to_start(db_path: Path) -> None:
    for token in ("", "   "):
        with pytest.raises(ConfigError, match="OBSLAB_ONCALL_TOKEN"):
            create_app({"ONCALL_TOKEN": token, "ONCALL_DB": str(db_path)})
    with pytest.raises(ConfigError, match="OBSLAB_ONCALL_TOKEN"):
        create_app({"ONCALL_DB": str(db_path)})


def test_settings_come_from_the_environment_verbatim(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Flask would decode "12345" as JSON into a number; a token is text.
    monkeypatch.setenv("OBSLAB_ONCALL_TOKEN", "12345")
    monkeypatch.setenv("OBSLAB_ONCALL_DB", str(tmp_path / "env" / "pages.db"))
    client = create_app().test_client()

    response = post(client, notification(alert()), headers={"Authorization": "Bearer 12345"})

    assert response.status_code == 200
    assert (tmp_path / "env" / "pages.db").is_file()


def test_the_database_defaults_to_the_state_dir(tmp_path: Path) -> None:
    create_app({"ONCALL_TOKEN": TOKEN})

    assert (tmp_path / "home" / "oncall" / "pages.db").is_file()


def test_an_unusable_database_path_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    with pytest.raises(ConfigError, match=r"OBSLAB_ONCALL_DB.*a-file"):
        create_app({"ONCALL_TOKEN": TOKEN, "ONCALL_DB": str(blocker / "pages.db")})


@pytest.mark.parametrize("limit", [0, -1, "1MB", True])
def test_a_bad_body_limit_names_the_setting(make_app: Callable[..., Flask], limit: object) -> None:
    with pytest.raises(ConfigError, match="OBSLAB_MAX_CONTENT_LENGTH"):
        make_app(MAX_CONTENT_LENGTH=limit)
