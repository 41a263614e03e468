"""configure_logging: JSON lines to stdout and a file, structured exceptions, redaction."""

from __future__ import annotations

import io
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import structlog

from app.telemetry import configure_logging, flush_logs, hash_customer_id
from app.telemetry import logging as logging_module
from app.telemetry.logging import REDACTED, Redactor
from tests.unit.processes import succeeds_in_fork, threads_named


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
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"])
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


def wait_for_lines(stream: io.BytesIO, count: int) -> list[dict]:
    """The stream's lines once it has ``count`` of them; fails after 10 s."""
    deadline = time.monotonic() + 10
    while len(stream.getvalue().splitlines()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return lines(stream)


def test_batched_lines_wait_for_the_writer_then_arrive_in_order() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream, batch_seconds=60)
    for n in range(3):
        structlog.get_logger().info("queued", n=n)

    assert stream.getvalue() == b"", "a minute before the writer's turn, nothing is written"
    flush_logs()
    assert [(line["event"], line["n"]) for line in lines(stream)] == [
        ("queued", 0),
        ("queued", 1),
        ("queued", 2),
    ]


def test_the_writer_writes_batched_lines_on_its_own() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream, batch_seconds=0.05)
    structlog.get_logger().info("later", customer_id=42)

    (line,) = wait_for_lines(stream, 1)
    assert line["event"] == "later"
    assert line["customer_id"] == hash_customer_id(42), "redacted on the writer's thread too"


def test_a_forked_child_starts_a_writer_of_its_own() -> None:
    earlier = set(threading.enumerate())  # other tests' writers, stopped or not yet
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream, batch_seconds=60)
    structlog.get_logger().info("in the parent")  # starts the writer, which waits a minute
    (started,) = threads_named("obslab-log-writer", besides=earlier)

    def child() -> bool:
        before = threads_named("obslab-log-writer")
        structlog.get_logger().info("in the child")
        return before == [] and len(threads_named("obslab-log-writer")) == 1

    assert succeeds_in_fork(child)
    structlog.get_logger().info("in the parent again")
    assert threads_named("obslab-log-writer", besides=earlier) == [started], (
        "no second writer in the process that has one"
    )


def test_a_full_queue_wakes_the_writer_before_its_time() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream, batch_seconds=60)
    for n in range(1100):
        structlog.get_logger().info("burst", n=n)

    written = wait_for_lines(stream, 1024)
    assert len(written) >= 1024
    assert [line["n"] for line in written] == list(range(len(written)))


def test_lines_from_many_threads_are_all_written_each_in_its_order() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream, batch_seconds=0.01)

    def log(thread: int) -> None:
        for n in range(200):
            structlog.get_logger().info("line", thread=thread, n=n)

    threads = [threading.Thread(target=log, args=(thread,)) for thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flush_logs()

    written = lines(stream)
    assert len(written) == 800
    for thread in range(4):
        assert [line["n"] for line in written if line["thread"] == thread] == list(range(200))


def test_a_batched_exception_is_the_one_handled_when_it_was_logged() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream, batch_seconds=60)
    try:
        raise KeyError("missing")
    except KeyError:
        structlog.get_logger().exception("failed")
    flush_logs()  # rendered here, where no exception is being handled

    (line,) = lines(stream)
    (exception,) = line["exception"]
    assert exception["exc_type"] == "KeyError"


def test_reconfiguring_writes_what_the_old_writer_held(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    configure_logging("scoring", "1.0.0", log_file=old, batch_seconds=60)
    structlog.get_logger().info("held")
    configure_logging("scoring", "2.0.0", stream=io.BytesIO())

    (line,) = (orjson.loads(line) for line in old.read_bytes().splitlines())
    assert line["event"] == "held"


def test_a_line_that_cannot_be_rendered_is_reported_and_the_next_still_written() -> None:
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream, batch_seconds=60)
    structlog.get_logger().info("odd", payload={1: "a key JSON cannot hold"})
    structlog.get_logger().info("fine")
    flush_logs()

    odd, fine = lines(stream)
    assert odd["event"] == "log line not rendered"
    assert odd["logged_event"] == "odd"
    assert odd["error"] == "TypeError"
    assert "a key JSON cannot hold" not in stream.getvalue().decode()
    assert fine["event"] == "fine"


def test_a_writer_that_falls_behind_has_the_logging_thread_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No writer thread runs, as if it were stuck in a write to a pipe nobody reads.
    monkeypatch.setattr(logging_module._LineWriter, "_start_thread", lambda self: None)
    stream = io.BytesIO()
    configure_logging("scoring", "2.0.0", stream=stream, batch_seconds=60)
    most = logging_module._MOST_QUEUED
    for n in range(most - 1):
        structlog.get_logger().info("queued", n=n)
    assert stream.getvalue() == b""

    structlog.get_logger().info("queued", n=most - 1)

    # The caller wrote what had queued (behind the writer's lock, so it waits for a stuck
    # output) rather than letting the queue grow.
    assert [line["n"] for line in lines(stream)] == list(range(most))
