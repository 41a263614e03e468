"""configure_logging: JSON lines to stdout and a file, structured exceptions, redaction, trace
ids; loadable without the OpenTelemetry SDK."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import structlog
from opentelemetry.sdk.trace import TracerProvider

from app.logs import REDACTED, Redactor, bind_request_fields, configure_logging, hash_customer_id


def lines(stream: io.BytesIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_writes_one_json_object_a_line_to_the_file_and_nothing_to_stream(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "scoring.jsonl"
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", log_file=log_file, stream=stream)
    structlog.get_logger().info("first", n=1)
    structlog.get_logger().warning("second", n=2)

    assert stream.getvalue() == b""
    first, second = (orjson.loads(line) for line in log_file.read_bytes().splitlines())
    assert first["event"] == "first"
    assert first["level"] == "info"
    assert second["level"] == "warning"
    assert first["service"] == "scoring"
    assert first["version"] == "2.0.0"
    assert "trace_id" not in first and "span_id" not in first


def test_timestamps_are_iso_8601_utc_with_microseconds() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream)
    before = datetime.now(UTC)
    structlog.get_logger().info("stamped")
    after = datetime.now(UTC)

    (line,) = lines(stream)
    # isoformat() leaves out the microseconds when they are 0.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", line["timestamp"])
    stamped = datetime.fromisoformat(line["timestamp"])
    assert before <= stamped <= after


def test_reconfiguring_appends_to_the_new_file(tmp_path: Path) -> None:
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    new.write_bytes(b'{"event":"earlier"}\n')
    configure_logging("scoring", "1.0.0", log_file=old, stream=io.BytesIO())
    configure_logging("scoring", "2.0.0", log_file=new, stream=io.BytesIO())
    structlog.get_logger().info("after")

    assert old.read_bytes() == b""
    earlier, after = (orjson.loads(line) for line in new.read_bytes().splitlines())
    assert earlier == {"event": "earlier"}
    assert after["version"] == "2.0.0"


def test_debug_lines_are_dropped() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream)
    structlog.get_logger().debug("noise")

    assert stream.getvalue() == b""


def test_exceptions_are_structured_without_frame_locals() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream)
    token = "s3cr3t"  # a local that must not reach the log
    try:
        raise ValueError(f"bad input for {len(token)} chars")
    except ValueError:
        structlog.get_logger().exception("failed")

    (line,) = lines(stream)
    (exception,) = line["exception"]
    assert exception["exc_type"] == "ValueError"
    assert exception["frames"][-1]["name"] == "test_exceptions_are_structured_without_frame_locals"
    assert b"s3cr3t" not in stream.getvalue()


def test_logged_lines_are_redacted() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream)
    structlog.get_logger().info("scored", customer_id=42, income=52_000, Authorization="Bearer x")

    (line,) = lines(stream)
    assert line["customer_id"] == hash_customer_id(42)
    assert line["income"] == REDACTED
    assert line["Authorization"] == REDACTED


def test_redactor_hashes_customer_ids_and_redacts_at_any_depth() -> None:
    applicant = {"age": 41, "debt_ratio": 0.3, "customer_id": "C-9", "channel": "web"}
    event = {
        "event": "request body",
        "customer_id": 42,
        "payload": {"applicant": applicant, "history": [{"late_payments": 2, "month": 3}]},
        "headers": {"X-Api-Token": "t", "Cookie": "c", "Accept": "json"},
        "db_password": "p",
        "client_secret": "s",
        "referrer": {"customer_id": None},
    }

    redacted = Redactor()(None, "info", event)

    assert redacted["customer_id"] == hash_customer_id(42) != "42"
    assert len(redacted["customer_id"]) == 16
    assert redacted["payload"] == {
        "applicant": {
            "age": REDACTED,
            "debt_ratio": REDACTED,
            "customer_id": hash_customer_id("C-9"),
            "channel": "web",
        },
        "history": [{"late_payments": REDACTED, "month": 3}],
    }
    assert redacted["headers"] == {"X-Api-Token": REDACTED, "Cookie": REDACTED, "Accept": "json"}
    assert redacted["db_password"] == REDACTED
    assert redacted["client_secret"] == REDACTED
    assert redacted["referrer"] == {"customer_id": None}
    assert applicant["age"] == 41, "the caller's own data is left alone"


def test_redactor_judges_every_line_whatever_it_has_seen_before() -> None:
    redactor = Redactor()
    for _ in range(2):  # the second time, every key is one the redactor has judged before
        scalars = redactor(None, "info", {"income": 1, "customer_id": 7, "n": 2})
        nested = redactor(None, "info", {"event": "e", "n": {"income": 5, "token": "t", "k": 1}})

        assert scalars == {"income": REDACTED, "customer_id": hash_customer_id(7), "n": 2}
        assert nested == {"event": "e", "n": {"income": REDACTED, "token": REDACTED, "k": 1}}


def test_customer_id_pseudonyms_are_stable_and_distinct() -> None:
    assert hash_customer_id(42) == hash_customer_id("42")
    assert hash_customer_id(42) != hash_customer_id(43)


def test_bound_fields_ride_on_every_later_line_until_cleared() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream)
    bind_request_fields(request_id="r-1", customer_id=42)
    structlog.get_logger().info("bound", request_id="given")
    structlog.contextvars.clear_contextvars()
    structlog.get_logger().info("cleared")

    bound, cleared = lines(stream)
    assert bound["request_id"] == "given", "a field given to the line wins"
    assert bound["customer_id"] == hash_customer_id(42), "bound fields are redacted too"
    assert "customer_id" not in cleared


def test_a_line_carries_the_ids_of_the_current_span() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream)
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner") as inner:
        structlog.get_logger().info("inside")

    (line,) = lines(stream)
    assert line["trace_id"] == format(inner.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(inner.get_span_context().span_id, "016x")


def test_a_line_with_keys_that_are_not_text_still_renders() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream)
    structlog.get_logger().info("odd", payload={1: "a", "nested": object()})

    (line,) = lines(stream)
    assert line["payload"]["1"] == "a"
    assert line["payload"]["nested"].startswith("<object object")


def test_the_logging_module_loads_no_part_of_the_opentelemetry_sdk() -> None:
    """The oncall receiver and the CLI log through it without tracing."""
    code = (
        "import sys, app.logs; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
