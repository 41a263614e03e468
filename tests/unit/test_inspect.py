"""``obslab trace``, ``logs`` and ``exemplars`` on recorded data."""

from __future__ import annotations

import json

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import StatusCode

from app.telemetry.otlp_json import OtlpJsonFileExporter
from obslab import cli, inspect


def record_trace(traces_dir) -> str:
    """A scoring request whose feature lookup failed, written as the services write it."""
    scoring = TracerProvider(resource=Resource({"service.name": "scoring"}))
    scoring.add_span_processor(
        SimpleSpanProcessor(OtlpJsonFileExporter(traces_dir / "scoring.jsonl"))
    )
    features = TracerProvider(resource=Resource({"service.name": "features"}))
    features.add_span_processor(
        SimpleSpanProcessor(OtlpJsonFileExporter(traces_dir / "features.jsonl"))
    )
    tracer = scoring.get_tracer("t")
    with (
        tracer.start_as_current_span("POST /predict") as root,
        tracer.start_as_current_span("feature_lookup") as lookup,
    ):
        with features.get_tracer("t").start_as_current_span("GET /customers") as served:
            served.set_attribute("http.response.status_code", 503)
            served.set_status(StatusCode.ERROR)
        lookup.set_status(StatusCode.ERROR)
    return format(root.get_span_context().trace_id, "032x")


def test_trace_tree_shows_services_nesting_and_errors(tmp_path):
    trace_id = record_trace(tmp_path)
    lines = inspect.format_trace(inspect.find_trace(trace_id, tmp_path))
    assert len(lines) == 3
    assert lines[0].startswith("POST /predict (scoring)")
    assert lines[1].startswith("  feature_lookup (scoring)") and "ERROR" in lines[1]
    assert lines[2].startswith("    GET /customers (features)") and "status 503" in lines[2]


def test_a_trace_file_of_the_older_conventions_still_shows_its_status(tmp_path):
    provider = TracerProvider(resource=Resource({"service.name": "features"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OtlpJsonFileExporter(tmp_path / "features.jsonl"))
    )
    with provider.get_tracer("t").start_as_current_span("GET /customers") as served:
        served.set_attribute("http.status_code", 404)
    trace_id = format(served.get_span_context().trace_id, "032x")

    (line,) = inspect.format_trace(inspect.find_trace(trace_id, tmp_path))
    assert "status 404" in line


def test_trace_command_reports_an_unknown_trace(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))
    (tmp_path / "traces").mkdir()
    assert cli.main(["trace", "0" * 32]) == 1
    assert "no span of trace" in capsys.readouterr().err


LINES = [
    {
        "timestamp": "2026-01-01T10:00:00Z",
        "level": "info",
        "service": "scoring",
        "event": "request",
        "trace_id": "a" * 32,
        "status": 200,
    },
    {
        "timestamp": "2026-01-01T10:00:01Z",
        "level": "error",
        "service": "features",
        "event": "request",
        "trace_id": "b" * 32,
        "status": 503,
    },
    {
        "timestamp": "2026-01-01T10:00:02Z",
        "level": "warning",
        "service": "scoring",
        "event": "fault_injected",
    },
]


def write_logs(logs_dir):
    logs_dir.mkdir()
    (logs_dir / "scoring.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in (LINES[0], LINES[2])) + "not json\n"
    )
    (logs_dir / "features.jsonl").write_text(json.dumps(LINES[1]) + "\n")


def test_logs_are_merged_in_time_order_and_filtered(tmp_path):
    write_logs(tmp_path / "logs")
    lines = list(inspect.read_logs(tmp_path / "logs"))
    assert lines == LINES
    assert inspect.filter_logs(lines, trace_id="B" * 32) == [LINES[1]]
    assert inspect.filter_logs(lines, service="scoring", level="warning") == [LINES[2]]
    assert inspect.filter_logs(lines, event="request", level="error") == [LINES[1]]
    cutoff = LINES[1]["timestamp"].replace("Z", "+00:00")
    from datetime import datetime

    since = datetime.fromisoformat(cutoff).timestamp()
    assert inspect.filter_logs(lines, since=since) == LINES[1:]


def test_logs_command_prints_matching_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))
    write_logs(tmp_path / "logs")
    assert cli.main(["logs", "--service", "features"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "features" in out[0] and '"status"' not in out[0].split()[0]


def test_exemplars_slowest_first_one_per_trace():
    result = [
        {
            "seriesLabels": {"job": "scoring", "route": "/predict", "instance": "i:1"},
            "exemplars": [
                {"labels": {"trace_id": "a" * 32}, "value": "0.2", "timestamp": 1.0},
                {"labels": {"trace_id": "b" * 32}, "value": "2.5", "timestamp": 2.0},
                {"labels": {"trace_id": "a" * 32}, "value": "0.9", "timestamp": 3.0},
                {"labels": {}, "value": "9", "timestamp": 4.0},
            ],
        }
    ]
    found = inspect.slowest_exemplars(result, limit=5)
    assert [(e["trace_id"][0], e["seconds"]) for e in found] == [("b", 2.5), ("a", 0.9)]
    assert inspect.exemplar_query("/predict", None) == (
        'http_request_duration_seconds_bucket{route="/predict"}'
    )
