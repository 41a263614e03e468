"""Telemetry overhead: ``POST /predict`` end to end, without telemetry and with several kinds of it.

Each variant is a real scoring + features pair under gunicorn, loaded by wrk at the same
fixed concurrency. The variants run interleaved, in an order rotated every round and on
processes started afresh every round, so neither a machine that slows down over the run nor
one lucky process favours a variant. Figures are medians over rounds. Beside throughput and
latency, each variant reports the CPU time each service's processes spent per request (from
the kernel's accounting), which shows where telemetry's cost lands. b/a also comes with a
bootstrap interval over rounds, and ``OBSLAB_BENCH_VARIANTS=a,b`` runs only the variants named,
so the same time buys more rounds.

Rerun a variant by hand with the same settings: ``OBSLAB_TELEMETRY=off`` turns obslab's
telemetry off; ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` set its sampling.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench import wrk
from bench.pair import ServicePair
from bench.report import Row
from obslab.errors import ObslabError

TITLE = "telemetry overhead"

#: Throughput of full telemetry relative to none that issues 7 and 26 ask for.
GOAL_FULL_RATIO = 0.85

#: Throughput of full telemetry relative to the zero-code agent's that issue 26 asks for.
GOAL_VERSUS_ZERO_CODE = 1.15

ROUNDS = int(os.environ.get("OBSLAB_BENCH_ROUNDS", "5"))
SECONDS = float(os.environ.get("OBSLAB_BENCH_SECONDS", "8"))
CONNECTIONS = int(os.environ.get("OBSLAB_BENCH_CONNECTIONS", "8"))
WARMUP_SECONDS = 3.0
BOOTSTRAP_DRAWS = 2000


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    env: Mapping[str, str] = field(default_factory=dict)
    #: Run under ``opentelemetry-instrument`` (zero-code).
    agent: bool = False
    #: Export spans over OTLP/HTTP to the local sink, a collector that costs nothing.
    to_sink: bool = False
    #: Settings for one service only, added to ``env``: ``{"features": {...}}``.
    only: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Run when ``OBSLAB_BENCH_VARIANTS`` is unset; the others only when named there.
    default: bool = True


VARIANTS = (
    Variant("a", "telemetry off", {"OBSLAB_TELEMETRY": "off"}),
    Variant("b", "obslab, traces 100%", {"OTEL_TRACES_SAMPLER": "parentbased_always_on"}),
    Variant(
        "c",
        "OTel zero-code only",
        {
            "OBSLAB_TELEMETRY": "off",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        },
        agent=True,
        to_sink=True,
    ),
    Variant(
        "d",
        "obslab, traces 10%",
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    ),
    # f with its trace backend gone: nothing listens on port 9, so every export fails.
    Variant(
        "e",
        "obslab, trace backend down",
        {
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        },
    ),
    # b exporting as under compose, over OTLP/HTTP (protobuf) rather than to OTLP-JSON files:
    # what e is without its failure.
    Variant(
        "f",
        "obslab, traces 100% over OTLP/HTTP",
        {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
        to_sink=True,
    ),
    # Where b's cost lands: b with telemetry off in one of its two services. Not run unless
    # named, as they answer a question of diagnosis rather than of the goal.
    Variant(
        "g",
        "obslab in scoring only",
        {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
        only={"features": {"OBSLAB_TELEMETRY": "off"}},
        default=False,
    ),
    Variant(
        "h",
        "obslab in features only",
        {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
        only={"scoring": {"OBSLAB_TELEMETRY": "off"}},
        default=False,
    ),
)
BASELINE = "a"


@dataclass(frozen=True)
class Summary:
    """A variant's medians over rounds; ``errors`` is summed over every round. ``cpu`` is
    each service's CPU time per request, in seconds; ``rates`` each round's throughput, in
    round order."""

    variant: Variant
    rate: float
    p50: float
    p99: float
    errors: int
    cpu: Mapping[str, float] = field(default_factory=dict)
    rates: tuple[float, ...] = ()


def summarise(
    variant: Variant,
    runs: Sequence[wrk.WrkResult],
    cpu: Sequence[Mapping[str, float]] = (),
) -> Summary:
    """Medians of ``runs``, and of ``cpu``: per run, each service's CPU seconds per request."""
    return Summary(
        variant=variant,
        rate=statistics.median(run.rate for run in runs),
        p50=statistics.median(run.p50 for run in runs),
        p99=statistics.median(run.p99 for run in runs),
        errors=sum(run.errors for run in runs),
        cpu={service: statistics.median(run[service] for run in cpu) for service in cpu[0]}
        if cpu
        else {},
        rates=tuple(run.rate for run in runs),
    )


def rotated(items: Sequence[Variant], round_index: int) -> list[Variant]:
    """``items`` starting at position ``round_index`` (mod length): each leads one round."""
    start = round_index % len(items)
    return [*items[start:], *items[:start]]


def rows(summaries: Sequence[Summary]) -> list[Row]:
    """Figures per variant, then the throughput of each variant relative to the baseline."""
    by_key = {summary.variant.key: summary for summary in summaries}
    baseline = by_key[BASELINE]
    table: list[Row] = []
    for summary in summaries:
        case = f"{summary.variant.key}: {summary.variant.label}"
        table += [
            Row(case, "throughput", f"{summary.rate:.0f} req/s"),
            Row(case, "p50 / p99", f"{summary.p50 * 1e3:.1f} / {summary.p99 * 1e3:.1f} ms"),
            Row(case, "errors", str(summary.errors), "0", summary.errors == 0),
        ]
        if summary.cpu:
            table.append(Row(case, "CPU per request", _cpu_text(summary.cpu)))
    for summary in summaries:
        key = summary.variant.key
        if key == BASELINE:
            continue
        ratio = summary.rate / baseline.rate
        goal, met = "", None
        if key == "b":
            goal, met = f">= {GOAL_FULL_RATIO}", ratio >= GOAL_FULL_RATIO
        table.append(Row(f"{key}/{BASELINE}", "throughput ratio", f"{ratio:.2f}", goal, met))
        if key == "b" and len(summary.rates) > 1 and len(summary.rates) == len(baseline.rates):
            table += [_per_round(summary, baseline), _interval(summary, baseline)]
    if "b" in by_key and baseline.cpu and by_key["b"].cpu:
        # Where full telemetry's cost lands: scoring is the bottleneck, one GIL-bound process.
        full = by_key["b"].cpu
        added = ", ".join(
            f"{service} +{(full[service] - spent) * 1e6:.0f} µs ({full[service] / spent - 1:+.0%})"
            for service, spent in baseline.cpu.items()
        )
        table.append(Row(f"b - {BASELINE}", "CPU per request added", added))
    if "f" in by_key and "e" in by_key:
        up, down = by_key["f"], by_key["e"]
        table.append(Row("e vs f", "p50 latency ratio", f"{down.p50 / up.p50:.2f}", "~ 1 (noise)"))
    if "b" in by_key and "c" in by_key:
        full, zero_code = by_key["b"], by_key["c"]
        table.append(
            Row(
                "b vs c",
                "throughput ratio",
                f"{full.rate / zero_code.rate:.2f}",
                f">= {GOAL_VERSUS_ZERO_CODE}",
                full.rate / zero_code.rate >= GOAL_VERSUS_ZERO_CODE,
            )
        )
    return table


def _per_round(full: Summary, baseline: Summary) -> Row:
    """b/a within each round, where both ran a minute apart on the machine as it was then:
    how far the ratio moves from round to round, and how often it meets the goal."""
    ratios = [rate / base for rate, base in zip(full.rates, baseline.rates, strict=True)]
    met = sum(ratio >= GOAL_FULL_RATIO for ratio in ratios)
    return Row(
        f"b/{BASELINE}",
        "throughput ratio per round",
        f"median {statistics.median(ratios):.2f}, {min(ratios):.2f} to {max(ratios):.2f}; "
        f">= {GOAL_FULL_RATIO} in {met} of {len(ratios)}",
    )


def _interval(full: Summary, baseline: Summary) -> Row:
    """A 95 % bootstrap interval for b/a, the ratio of medians: rounds drawn again with
    replacement, each keeping its a and b together, as they ran side by side. How far the
    ratio could be off by which processes and minutes a run happened to get; the goal is met
    reliably when the whole interval meets it."""
    draws = random.Random(0)  # the same figures give the same interval
    rounds = list(zip(full.rates, baseline.rates, strict=True))
    ratios = []
    for _ in range(BOOTSTRAP_DRAWS):
        drawn = draws.choices(rounds, k=len(rounds))
        ratios.append(
            statistics.median(rate for rate, _ in drawn)
            / statistics.median(base for _, base in drawn)
        )
    cuts = statistics.quantiles(ratios, n=40, method="inclusive")  # every 2.5 %
    low, high = cuts[0], cuts[-1]
    return Row(
        f"b/{BASELINE}",
        "throughput ratio, 95 % interval",
        f"{low:.3f} to {high:.3f} (bootstrap over {len(rounds)} rounds)",
        f"low end >= {GOAL_FULL_RATIO}",
        low >= GOAL_FULL_RATIO,
    )


def _cpu_text(cpu: Mapping[str, float]) -> str:
    return ", ".join(f"{service} {seconds * 1e6:.0f} µs" for service, seconds in cpu.items())


def run() -> list[Row]:
    variants = chosen(os.environ.get("OBSLAB_BENCH_VARIANTS", ""))
    return rows(measure(variants, rounds=ROUNDS, seconds=SECONDS, connections=CONNECTIONS))


def chosen(keys: str) -> list[Variant]:
    """The variants named in ``keys`` (``OBSLAB_BENCH_VARIANTS``, e.g. ``a,b``), in table
    order; when empty, every variant but those run only when named. Fewer variants make a
    round shorter, so the same time buys more rounds of the ratio that matters."""
    if not keys.strip():
        return [variant for variant in VARIANTS if variant.default]
    wanted = {key.strip() for key in keys.split(",")}
    known = {variant.key for variant in VARIANTS}
    if unknown := sorted(wanted - known):
        raise ObslabError(
            f"OBSLAB_BENCH_VARIANTS names no variant {', '.join(unknown)}; "
            f"choose from {', '.join(sorted(known))}"
        )
    if BASELINE not in wanted:
        raise ObslabError(
            f"OBSLAB_BENCH_VARIANTS must include {BASELINE}, the baseline every ratio is taken "
            f"against; got {keys!r}"
        )
    return [variant for variant in VARIANTS if variant.key in wanted]


def measure(
    variants: Sequence[Variant], *, rounds: int, seconds: float, connections: int
) -> list[Summary]:
    """Each round: start every variant's pair afresh, warm each up, load them in rotated order.

    Fresh processes every round, because a process has luck of its own (where the scheduler
    puts it beside its features partner, its hash seed): measured on the same processes all
    run long, two starts of one variant differed by more than the telemetry under test.
    """
    with tempfile.TemporaryDirectory(prefix="obslab-bench-") as tmp, _otlp_sink() as sink:
        root = Path(tmp)
        script = root / "predict.lua"
        script.write_text(wrk.predict_script(wrk.applicant_bodies(512)))
        runs: dict[str, list[wrk.WrkResult]] = {variant.key: [] for variant in variants}
        cpu: dict[str, list[dict[str, float]]] = {variant.key: [] for variant in variants}
        for round_index in range(rounds):
            with ExitStack() as stack:
                pairs = {
                    variant.key: stack.enter_context(
                        _pair(variant, slot, root / f"{variant.key}-{round_index}", root, sink)
                    )
                    for slot, variant in enumerate(variants)
                }
                for variant in variants:
                    wrk.run(
                        pairs[variant.key].scoring_url,
                        script,
                        connections=connections,
                        seconds=WARMUP_SECONDS,
                    )
                for variant in rotated(variants, round_index):
                    pair = pairs[variant.key]
                    before = pair.cpu_seconds()
                    result = wrk.run(
                        pair.scoring_url, script, connections=connections, seconds=seconds
                    )
                    after = pair.cpu_seconds()
                    runs[variant.key].append(result)
                    if result.requests:
                        cpu[variant.key].append(
                            {name: (after[name] - before[name]) / result.requests for name in after}
                        )
        if any(variant.to_sink for variant in variants) and sink.exports == 0:
            raise ObslabError(
                f"no variant exported spans to the OTLP sink; see the logs under {root}"
            )
        return [summarise(variant, runs[variant.key], cpu[variant.key]) for variant in variants]


def _pair(variant: Variant, slot: int, home: Path, root: Path, sink: _Sink) -> ServicePair:
    env = dict(variant.env)
    if variant.to_sink:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.url
    return ServicePair(
        variant.key,
        slot,
        home,
        env=env,
        only=variant.only,
        agent=variant.agent,
        models_dir=root / "models",
    )


class _Sink(ThreadingHTTPServer):
    exports = 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _DiscardTraces(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and discards them: a collector that costs nothing."""

    server: _Sink

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/v1/traces":
            self.server.exports += 1
            self.send_response(200)
        else:
            self.send_response(404)
        # An empty ExportTraceServiceResponse encodes as zero bytes.
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Silent: one line per export would only clutter the benchmark's output."""


@contextmanager
def _otlp_sink() -> Iterator[_Sink]:
    sink = _Sink(("127.0.0.1", 0), _DiscardTraces)
    thread = threading.Thread(target=sink.serve_forever, name="otlp-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()
