"""How one Prometheus's cost grows with the number of scoring instances it watches.

The real Prometheus, with the real rules of the ``demo`` profile, scrapes 2, 8, 32 and 128
synthetic scoring instances. Each serves a recorded ``/metrics`` page of a real scoring
instance (recorded here, after a short load) under its own ``instance`` label: one small HTTP
server answers ``/metrics/<i>`` for every instance, and a file_sd target group per instance
sets its ``instance`` and ``__metrics_path__``. Counters grow at each scrape interval, so
``rate()`` sees traffic; half the instances run version 1.1.0, deployed when the run starts,
and half its predecessor 1.0.0, so the deploy rules compare two live versions.

Two page shapes: the page as recorded (one model, the applicant's features), and the same
page widened to 10 models and 20 features (the model and feature series copied under new
``model_version`` and ``feature`` values), for the PSI and deploy rules.

Reported per size: head series, each rule group's last evaluation time against its interval
(the worst of several readings of ``/api/v1/rules``), the scrape duration, and Prometheus's
resident memory; then, from the largest size, the instance count at which the slowest group
would reach 10 % of its interval (the cost of a group grows linearly with the series it reads).
"""

from __future__ import annotations

import itertools
import json
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import requests
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from alerts.rules import build_rules
from alerts.thresholds import load_profile
from bench import wrk
from bench.pair import ServicePair
from bench.report import Row
from obslab.errors import ObslabError
from obslab.processes import ProcessSpec, Supervisor
from obslab.stackconfig import load_stack, port_offset_from_env

TITLE = "scaling: one Prometheus, demo rules"

INSTANCES = (2, 8, 32, 128)
#: (models, features) per page; the first is the page as recorded.
SHAPES = {"as recorded": None, "10 models, 20 features": (10, 20)}
GOAL_SHARE = 0.10
#: Slopes of head series against instances may differ this much and still count as linear.
LINEAR_TOLERANCE = 0.10
PROFILE = "demo"
READINGS = 6
#: Prometheus listens on the stack's Prometheus port + this (shifted by OBSLAB_PORT_OFFSET).
PORT_SHIFT = 60
LOAD_SECONDS = 5.0
NEW, OLD = "1.1.0", "1.0.0"


# --- the recorded page -------------------------------------------------------------------------


def record_page(home: Path) -> str:
    """A real scoring instance's ``/metrics`` (text format) after a short load."""
    script = home / "predict.lua"
    script.write_text(wrk.predict_script(wrk.applicant_bodies(256)))
    with ServicePair("scaling", 6, home / "pair") as pair:
        wrk.run(pair.scoring_url, script, connections=4, seconds=LOAD_SECONDS)
        response = requests.get(f"{pair.scoring_url}/metrics", timeout=10)
        response.raise_for_status()
        return response.text


def widen(families: Sequence[Metric], models: int, features: int) -> list[Metric]:
    """The families with every model series copied to ``models`` model versions and every
    feature series to ``features`` features (the new ones copy the recorded ones in turn)."""
    recorded = sorted(
        {s.labels["feature"] for f in families for s in f.samples if "feature" in s.labels}
    )
    widened = []
    for family in families:
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        for sample in family.samples:
            for labels in _widened_labels(sample.labels, recorded, models, features):
                copy.add_sample(sample.name, labels, sample.value, sample.timestamp)
        widened.append(copy)
    return widened


def _widened_labels(
    labels: dict[str, str], recorded: list[str], models: int, features: int
) -> list[dict[str, str]]:
    found = [labels]
    if labels.get("feature") in recorded:
        position = recorded.index(labels["feature"])
        found += [
            {**labels, "feature": f"feature_{n:02d}"}
            for n in range(len(recorded) + 1, features + 1)
            if (n - 1) % len(recorded) == position
        ]
    if labels.get("model_version"):
        found = [
            {**each, "model_version": _model(each["model_version"], m)}
            for each in found
            for m in range(1, models + 1)
        ]
    return found


def _model(recorded: str, copy: int) -> str:
    return recorded if copy == 1 else f"{recorded}-{copy:02d}"


_GROWING_SUFFIXES = ("_total", "_bucket", "_count", "_sum")


class Page:
    """The page one instance serves: the recorded families, a version, and counters that grow
    by the recorded values at every scrape interval, as under a steady load."""

    def __init__(self, families: list[Metric], version: str, deployed_at: float) -> None:
        self.families = families
        self.version = version
        self.deployed_at = deployed_at
        self._cache: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def render(self, step: int) -> bytes:
        with self._lock:
            if step not in self._cache:
                self._cache = {step: self._render(step)}
            return self._cache[step]

    def _render(self, step: int) -> bytes:
        families = []
        for family in self.families:
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            for sample in family.samples:
                labels = dict(sample.labels)
                if "version" in labels:
                    labels["version"] = self.version
                if family.name == "app_build_info":
                    labels["previous_version"] = OLD if self.version == NEW else ""
                value = sample.value
                if family.name == "app_deploy_timestamp_seconds":
                    value = self.deployed_at if self.version == NEW else self.deployed_at - 86400
                elif family.type in ("counter", "histogram") and sample.name.endswith(
                    _GROWING_SUFFIXES
                ):
                    value = sample.value * (1 + step)
                copy.add_sample(sample.name, labels, value, sample.timestamp)
            families.append(copy)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(families))
        return generate_latest(registry)


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


class Targets:
    """One HTTP server answering ``/metrics/<i>`` for every synthetic instance."""

    def __init__(self, pages: Sequence[Page], interval: float) -> None:
        started = time.monotonic()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index = self.path.rpartition("/")[2]
                if not self.path.startswith("/metrics/") or not index.isdigit():
                    self.send_error(404)
                    return
                step = int((time.monotonic() - started) // interval)
                body = outer.pages[int(index) % len(outer.pages)].render(step)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # Prometheus gave up past its scrape timeout; `up` and the scrape
                    # duration it records say so.
                    return

            def log_message(self, *args: object) -> None:
                return

        self.pages = pages
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Targets:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def target_groups(port: int, instances: int) -> list[dict]:
    """file_sd groups: one per instance, each with its own ``instance`` label and path."""
    return [
        {
            "targets": [f"127.0.0.1:{port}"],
            "labels": {"instance": f"scoring-{i:03d}", "__metrics_path__": f"/metrics/{i}"},
        }
        for i in range(instances)
    ]


# --- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    instances: int
    head_series: int
    #: Per group: (worst evaluation seconds, interval seconds).
    groups: dict[str, tuple[float, float]]
    scrape_seconds: float
    rss_bytes: int
    #: Per group: its slowest rule's name and worst evaluation seconds.
    slowest: dict[str, tuple[str, float]] = field(default_factory=dict)


def measure(home: Path, targets: Targets, instances: int, port: int) -> Measurement:
    profile = load_profile(PROFILE)
    interval = profile.seconds("interval")
    (home / "rules.yml").write_text(yaml.safe_dump(build_rules(PROFILE)))
    (home / "targets.json").write_text(json.dumps(target_groups(targets.port, instances)))
    config = {
        "global": {
            "scrape_interval": profile.duration("interval"),
            "evaluation_interval": profile.duration("interval"),
        },
        "rule_files": [str(home / "rules.yml")],
        "scrape_configs": [
            {"job_name": "scoring", "file_sd_configs": [{"files": [str(home / "targets.json")]}]}
        ],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    binary = shutil.which("prometheus")
    if binary is None:
        raise ObslabError("prometheus is not on PATH: run `make setup`")
    url = f"http://127.0.0.1:{port}"
    spec = ProcessSpec(
        name=f"prometheus-{instances}",
        argv=[
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        env={},
        log=home / "prometheus.log",
        port=port,
        health_url=f"{url}/-/ready",
    )
    supervisor = Supervisor(home / "run")
    supervisor.start(spec)
    try:
        supervisor.wait_healthy([spec], 60)
        # The rate window, then a few evaluations on a full window.
        time.sleep(profile.seconds("rate_window") + 3 * interval)
        worst: dict[str, tuple[float, float]] = {}
        slowest: dict[str, tuple[str, float]] = {}
        for _ in range(READINGS):
            for group in _get(url, "/api/v1/rules")["groups"]:
                name = group["name"]
                seconds = max(group["evaluationTime"], worst.get(name, (0.0,))[0])
                worst[name] = (seconds, float(group["interval"]))
                for rule in group["rules"]:
                    if rule["evaluationTime"] > slowest.get(name, ("", 0.0))[1]:
                        slowest[name] = (rule["name"], rule["evaluationTime"])
            time.sleep(interval)
        head = _get(url, "/api/v1/status/tsdb")["headStats"]["numSeries"]
        scrapes = _get(url, "/api/v1/query", query='scrape_duration_seconds{job="scoring"}')
        durations = [float(s["value"][1]) for s in scrapes["result"]]
        pid = supervisor.pid(spec.name)
        rss = psutil.Process(pid).memory_info().rss if pid else 0
    finally:
        supervisor.stop([spec.name])
    return Measurement(instances, head, worst, statistics.mean(durations or [0.0]), rss, slowest)


def _get(url: str, path: str, **params: str) -> dict:
    response = requests.get(f"{url}{path}", params=params, timeout=30)
    response.raise_for_status()
    return response.json()["data"]


# --- the table ---------------------------------------------------------------------------------


def is_linear(points: Sequence[tuple[int, int]], tolerance: float = LINEAR_TOLERANCE) -> bool:
    """Whether ``(instances, series)`` points lie on one line: every slope between neighbours
    within ``tolerance`` of the first."""
    slopes = [(s2 - s1) / (n2 - n1) for (n1, s1), (n2, s2) in itertools.pairwise(points)]
    return bool(slopes) and all(abs(s - slopes[0]) <= tolerance * slopes[0] for s in slopes)


def instances_at_share(measurement: Measurement, share: float) -> float:
    """The instance count at which the slowest group would take ``share`` of its interval,
    taking a group's cost as proportional to the instances it reads."""
    worst = max(seconds / interval for seconds, interval in measurement.groups.values())
    return measurement.instances * share / worst if worst > 0 else float("inf")


def rows(shape: str, measurements: Sequence[Measurement]) -> list[Row]:
    table = []
    points = [(m.instances, m.head_series) for m in measurements]
    for m in measurements:
        case = f"{shape}, {m.instances} instances"
        table.append(Row(case, "head series", str(m.head_series)))
        for name, (seconds, interval) in sorted(m.groups.items()):
            share = seconds / interval
            goal = m.instances == max(INSTANCES)
            table.append(
                Row(
                    case,
                    f"{name} evaluation",
                    f"{seconds * 1e3:.1f} ms ({share:.1%} of {interval:g} s)",
                    f"< {GOAL_SHARE:.0%} of interval" if goal else "",
                    share < GOAL_SHARE if goal else None,
                )
            )
            if goal and name in m.slowest:
                rule, rule_seconds = m.slowest[name]
                table.append(
                    Row(case, f"{name} slowest rule", f"{rule}: {rule_seconds * 1e3:.1f} ms")
                )
        table.append(Row(case, "scrape duration, mean", f"{m.scrape_seconds * 1e3:.1f} ms"))
        table.append(Row(case, "Prometheus RSS", f"{m.rss_bytes / 2**20:.0f} MiB"))
    table.append(
        Row(
            shape,
            "head series against instances",
            ", ".join(f"{n}: {s}" for n, s in points),
            "linear",
            is_linear(points),
        )
    )
    for share, meaning in ((GOAL_SHARE, "the goal's limit"), (1.0, "evaluations fall behind")):
        table.append(
            Row(
                shape,
                f"instances at which a group takes {share:.0%} of its interval ({meaning})",
                f"~{instances_at_share(measurements[-1], share):.0f}",
            )
        )
    return table


def run(instances: Sequence[int] = INSTANCES) -> list[Row]:
    stack = load_stack(port_offset=port_offset_from_env())
    port = stack.prometheus_port + PORT_SHIFT
    interval = load_profile(PROFILE).seconds("interval")
    table: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="obslab-bench-scaling-") as tmp:
        root = Path(tmp)
        recorded = list(text_string_to_metric_families(record_page(root)))
        deployed_at = time.time()
        for shape, widened in SHAPES.items():
            families = recorded if widened is None else widen(recorded, *widened)
            pages = [Page(families, NEW, deployed_at), Page(families, OLD, deployed_at)]
            measurements = []
            with Targets(pages, interval) as targets:
                for count in instances:
                    home = root / f"{len(table)}-{count}"
                    home.mkdir()
                    measurements.append(measure(home, targets, count, port))
            table += rows(shape, measurements)
    return table
