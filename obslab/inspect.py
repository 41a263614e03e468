"""From an alert to its cause, natively: ``obslab trace``, ``obslab logs``, ``obslab exemplars``.

- ``trace TRACE_ID``: the span tree of one trace from the OTLP-JSON files in
  ``<state>/traces/``, with each span's service, duration and errors.
- ``logs``: the JSON log lines of ``<state>/logs/*.jsonl``, filtered.
- ``exemplars``: the trace ids Prometheus keeps as exemplars of the request duration
  histogram, slowest first, so a latency spike leads to its guilty trace in one command.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from obslab.commands import Commands
from obslab.errors import ObslabError

LEVELS = ("debug", "info", "warning", "error", "critical")


def register(commands: Commands) -> None:
    trace = commands.add_parser("trace", help="print one trace's span tree")
    trace.add_argument("trace_id", metavar="TRACE_ID")
    trace.set_defaults(run=run_trace)

    logs = commands.add_parser("logs", help="filter the services' JSON logs")
    logs.add_argument("--trace-id", help="only lines of this trace")
    logs.add_argument("--service", help="only lines of this service (scoring, features, …)")
    logs.add_argument("--level", choices=LEVELS, help="only lines at this level or above")
    logs.add_argument("--event", help="only lines of this event (request, fault_injected, …)")
    logs.add_argument("--since", help="only lines newer than this (90s, 10m, 1h)")
    logs.add_argument("--limit", type=int, default=200, help="at most this many, newest last")
    logs.set_defaults(run=run_logs)

    exemplars = commands.add_parser("exemplars", help="trace ids of the slowest requests")
    exemplars.add_argument("--route", help="only this route template, e.g. /predict")
    exemplars.add_argument("--job", help="only this job (scoring or features)")
    exemplars.add_argument("--since", default="10m", help="how far back (default 10m)")
    exemplars.add_argument("--limit", type=int, default=10, help="how many (default 10)")
    exemplars.set_defaults(run=run_exemplars)


# --- traces -------------------------------------------------------------------------------------


def find_trace(trace_id: str, traces_dir: Path) -> list[dict[str, Any]]:
    """Every span of ``trace_id`` in the ``*.jsonl`` files of ``traces_dir``."""
    from app.telemetry import read_spans

    wanted = trace_id.lower()
    spans: list[dict[str, Any]] = []
    for path in sorted(traces_dir.glob("*.jsonl")):
        try:
            spans += [dict(span) for span in read_spans(path) if span["trace_id"] == wanted]
        except ValueError as exc:
            raise ObslabError(str(exc)) from None
    return spans


def format_trace(spans: list[dict[str, Any]]) -> list[str]:
    """The span tree, children indented under parents, each in start order.

    A span whose parent is not in the files (a caller outside the lab) is a root.
    """
    ids = {span["span_id"] for span in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda span: span["start_ns"])
    origin = min(span["start_ns"] for span in spans)

    def walk(parent: str | None, depth: int) -> Iterator[str]:
        for span in children.get(parent, ()):
            duration = (span["end_ns"] - span["start_ns"]) / 1e6
            offset = (span["start_ns"] - origin) / 1e6
            attributes = span["attributes"]
            # Files written before the stable HTTP conventions name it http.status_code.
            status = attributes.get("http.response.status_code", attributes.get("http.status_code"))
            notes = [f"status {status}"] if status is not None else []
            if span["status"] == "error":
                notes.append("ERROR")
            tail = f"  [{', '.join(notes)}]" if notes else ""
            label = f"{'  ' * depth}{span['name']} ({span['service']})"
            yield f"{label:<60} +{offset:8.1f} ms {duration:9.1f} ms{tail}"
            yield from walk(span["span_id"], depth + 1)

    return list(walk(None, 0))


def run_trace(args: argparse.Namespace) -> int:
    from app.telemetry import default_traces_dir

    traces_dir = default_traces_dir()
    spans = find_trace(args.trace_id, traces_dir)
    if not spans:
        raise ObslabError(f"no span of trace {args.trace_id} in {traces_dir}/*.jsonl")
    print(f"trace {args.trace_id.lower()}: {len(spans)} spans")
    for line in format_trace(spans):
        print(line)
    return 0


# --- logs ---------------------------------------------------------------------------------------


def read_logs(logs_dir: Path) -> Iterator[dict[str, Any]]:
    """Every JSON line of ``logs_dir/*.jsonl``, in timestamp order; other lines are skipped."""
    lines = []
    for path in sorted(logs_dir.glob("*.jsonl")):
        with path.open("rb") as file:
            for raw in file:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(line, dict):
                    lines.append(line)
    lines.sort(key=lambda line: str(line.get("timestamp", "")))
    return iter(lines)


def filter_logs(
    lines: Iterable[dict[str, Any]],
    *,
    trace_id: str | None = None,
    service: str | None = None,
    level: str | None = None,
    event: str | None = None,
    since: float | None = None,
) -> list[dict[str, Any]]:
    """The lines matching every filter given; ``since`` is unix seconds."""
    floor = LEVELS.index(level) if level else 0
    found = []
    for line in lines:
        if trace_id and line.get("trace_id") != trace_id.lower():
            continue
        if service and line.get("service") != service:
            continue
        if event and line.get("event") != event:
            continue
        if level and _level_rank(line.get("level")) < floor:
            continue
        if since is not None and _timestamp(line) < since:
            continue
        found.append(line)
    return found


def _level_rank(level: object) -> int:
    name = {"warn": "warning"}.get(str(level).lower(), str(level).lower())
    return LEVELS.index(name) if name in LEVELS else 0


def _timestamp(line: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(line["timestamp"])).timestamp()
    except (KeyError, ValueError):
        return 0.0


def format_log(line: dict[str, Any]) -> str:
    head = ("timestamp", "level", "service", "event")
    rest = " ".join(f"{key}={json.dumps(value)}" for key, value in line.items() if key not in head)
    return (
        f"{line.get('timestamp', '-')} {str(line.get('level', '-')).upper():<7} "
        f"{line.get('service', '-'):<9} {line.get('event', '-')} {rest}"
    )


def run_logs(args: argparse.Namespace) -> int:
    from app.settings import state_dir
    from obslab.faults import parse_duration

    since = time.time() - parse_duration(args.since) if args.since else None
    logs_dir = state_dir() / "logs"
    found = filter_logs(
        read_logs(logs_dir),
        trace_id=args.trace_id,
        service=args.service,
        level=args.level,
        event=args.event,
        since=since,
    )
    for line in found[-args.limit :] if args.limit > 0 else found:
        print(format_log(line))
    if not found:
        print(f"no matching line in {logs_dir}/*.jsonl")
    return 0


# --- exemplars ----------------------------------------------------------------------------------


def exemplar_query(route: str | None, job: str | None) -> str:
    matchers = [
        f'{key}="{_escape(value)}"' for key, value in (("route", route), ("job", job)) if value
    ]
    return f"http_request_duration_seconds_bucket{{{','.join(matchers)}}}"


def slowest_exemplars(result: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Flatten Prometheus' ``query_exemplars`` answer, slowest request first, one per trace."""
    seen: dict[str, dict[str, Any]] = {}
    for series in result:
        labels = series.get("seriesLabels", {})
        for exemplar in series.get("exemplars", ()):
            trace_id = exemplar.get("labels", {}).get("trace_id")
            if not trace_id:
                continue
            entry = {
                "trace_id": trace_id,
                "seconds": float(exemplar["value"]),
                "timestamp": float(exemplar["timestamp"]),
                "job": labels.get("job", ""),
                "instance": labels.get("instance", ""),
                "route": labels.get("route", ""),
            }
            if trace_id not in seen or seen[trace_id]["seconds"] < entry["seconds"]:
                seen[trace_id] = entry
    return sorted(seen.values(), key=lambda entry: -entry["seconds"])[:limit]


def run_exemplars(args: argparse.Namespace) -> int:
    import requests

    from obslab import stack
    from obslab.faults import parse_duration

    url = stack.urls()["prometheus"]
    now = time.time()
    params = {
        "query": exemplar_query(args.route, args.job),
        "start": now - parse_duration(args.since),
        "end": now,
    }
    try:
        response = requests.get(f"{url}/api/v1/query_exemplars", params=params, timeout=10)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise ObslabError(f"cannot query exemplars at {url}: {exc}") from None
    found = slowest_exemplars(response.json().get("data", []), args.limit)
    if not found:
        print(f"no exemplar in the last {args.since}; is traffic flowing?")
    for entry in found:
        print(
            f"{entry['trace_id']}  {entry['seconds'] * 1000:9.1f} ms  "
            f"{entry['job']} {entry['instance']} {entry['route']}"
        )
    return 0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
