"""Time to detect: from a fault's injection to the first page of each of its alerts, beside
the physical bound on that time.

For each fault of the catalogue (``OBSLAB_BENCH_FAULTS``, comma-separated, picks a few), on a
native stack of the ``test`` profile (and of ``demo`` when ``OBSLAB_BENCH_DEMO=1``; a demo
fault takes minutes, and error-burst an hour, the window of its fast SLO burn): wait until
the fault's alerts are quiet and the previous fault (or the stack's start) has left every
window they read, inject it, wait for a firing page of each of its alerts at the oncall
receiver, clear it, wait for its alerts to resolve. Faults delivered by a deploy come last,
as in the live matrix: a deploy stays its job's suspect for the attribution window, and its
rollback restarts scoring. The fault is in effect once ``faults.inject`` returns (for a
deploy, once the rollout is done); the time to detect ends when the receiver stored the page
(its ``received_at``).

The physical bound of an alert, for a fault, is the least time any Prometheus + Alertmanager
could take:

    bound = scrape interval          the first scrape that can see the fault
          + evaluation interval      the first rule evaluation after that scrape
          + for:                     the alert holds its condition this long
          + group_wait               Alertmanager holds a new group this long (a symptom's
                                     longer, for its cause: symptom_group_wait)
          + fill                     how long the fault must be in the window the condition
                                     reads before the condition can hold

    fill  = max((samples - 1) x scrape, delay + threshold / effect x window)

``(samples - 1) x scrape``: a range function (rate, increase, deriv, ...) draws a slope from
two samples, so the fault must be in two of them; an instant condition (``up == 0``) needs
one. ``samples`` comes from the alert's expression and the recording rules it reads,
transitively, in ``alerts.rules.build_rules``; intervals from ``config/stack.yaml``. An alert
with several rules (one per severity or SLO window) takes its lowest bound: the first of them
to fire.

``threshold / effect x window``: a share over a window (an error ratio, the requests beyond
a p95) passes its threshold once the window holds ``threshold / effect`` of faulted traffic,
where ``effect`` is the share the fault drives it to, at an unchanged request rate. A fault
that fails every request needs 5% of a 15 s window to pass a 5% error ratio; one that fails
half of them needs 10%. A fault that holds requests (a dependency that times out) also slows
the traffic, and the window fills at that pace (``fill_seconds``). ``delay`` is how long the
first affected observation takes to be recorded: a request is counted when it ends, an
outcome when the load reports it.

A PSI over a window (``FeatureDrift``) has no linear fill: it passes its level once the
window's mix of traffic from before and after the fault departs far enough from training.
With d seconds of the window drifted, each bin holds (1 - s) x training + s x drifted,
s = d / window (the load draws its applicants from the training population until the fault);
the fill is the least s whose mix has a PSI above the level, times the window
(``psi_fill``). The drifted shares are the load's own applicants under the fault's profile,
binned on the model's training deciles.

A memory leak (``MemoryGrowth``) has no share either: ``predict_linear`` and ``deriv`` fit a
line to the window, and the prediction passes the limit once enough of the window holds the
ramp (``growth_fill``, in closed form). How soon depends on where the memory starts: the
highest resident memory of the fault's instances, read from Prometheus just before the
injection, the one input that is state rather than definition.

All come from the rule's thresholds (``alerts/thresholds.yaml``), the fault's definition and
the load's, never from a measurement of the fault's effect (``onsets``); a pair with no
derivation keeps the two-sample fill, as if the fault showed in full at once. The goal is a
measured/bound ratio of at most 1.25.

With ``OBSLAB_BENCH_COLD=1`` it also measures a class's first minutes: each fault, with the
catalogue's parameters, on its own fresh ``demo`` stack under the load's default rate,
injected a minute after ``obslab up`` (``measure_cold_start``). Its windows then hold a
minute of traffic, and Prometheus has been up no longer: the drift alerts' restart guard
and every rule's minimum counts are in play. The goal is absolute, the class's: the fault's
first page or ticket within three minutes of the injection, and no page or ticket of an alert
the fault does not explain.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from alerts.rules import build_rules, psi
from alerts.thresholds import Profile, duration_seconds, load_profile
from app import releases
from app.model.baseline import Baseline
from app.model.data import default_probability, sample_applicant_features, sample_population
from app.model.train import LinearModel, train
from app.model.versions import MODELS
from app.scoring.changes import CHANGES
from app.scoring.features_client import READ_TIMEOUT
from bench.lab import LOAD_RATE, Lab, native_lab
from bench.report import Row
from loadgen.profile import DEFAULT_FEEDBACK_DELAY, DEFAULT_FEEDBACK_SHARE, DEFAULT_RATE
from loadgen.profile import Profile as LoadProfile
from obslab import faults
from obslab.oncall.client import fetch_pages
from obslab.render import WAITS_FOR_CAUSE
from obslab.stackconfig import load_stack

TITLE = "time to detect"
GOAL_RATIO = 1.25
#: Parameters that make a fault show within the test profile's windows (as the live matrix).
PARAMS: dict[str, dict[str, str]] = {"memory-leak": {"mb_per_second": "4"}}
#: Beyond this many bounds without a page, an alert counts as missed.
PATIENCE = 4.0
MIN_TIMEOUT = 60.0
POLL_SECONDS = 0.5
#: The general alerts any fault can leave behind; a fault starts only once they are quiet.
SETTLE_ALERTS = frozenset({"HighErrorRate", "HighLatency"})

#: A p95 passes a latency once more than this share of the window's requests exceed it.
P95_TAIL = 0.05
#: Applicants drawn to estimate what a fault does to the load's population.
POPULATION = 20_000

_RANGE_FUNCTION = re.compile(
    r"\b(rate|irate|increase|deriv|predict_linear|delta|idelta|changes|resets)\s*\("
)
_RANGE = re.compile(r"\[([0-9a-z]+)\]")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True)
class Timing:
    """A profile's plumbing delays, in seconds."""

    profile: str
    scrape: float
    evaluation: float
    group_wait: float
    #: A symptom's group waits longer, for a cause that may hold it back.
    symptom_group_wait: float

    @classmethod
    def of_profile(cls, profile: str) -> Timing:
        config = load_stack().profile(profile)
        return cls(
            profile,
            duration_seconds(config.scrape_interval),
            duration_seconds(config.evaluation_interval),
            duration_seconds(config.alertmanager.group_wait),
            duration_seconds(config.alertmanager.symptom_group_wait),
        )

    def group_wait_of(self, alert: str) -> float:
        """How long Alertmanager holds a new group of ``alert`` (obslab.render's routes)."""
        return self.symptom_group_wait if alert in WAITS_FOR_CAUSE else self.group_wait


@dataclass(frozen=True)
class Bound:
    """One alert's physical bound and its terms; ``window`` is the longest range its
    condition reads, how long a fault's traces stay in sight, and ``plumbing`` the scrape,
    evaluation, ``for:`` and group_wait before the ``fill``."""

    alert: str
    for_seconds: float
    samples: int
    window: float
    fill: float
    plumbing: float

    @property
    def seconds(self) -> float:
        return self.plumbing + self.fill

    def with_onset(self, onset: float) -> Bound:
        """This bound for a fault that must be in the window ``onset`` seconds first."""
        return replace(self, fill=max(self.fill, onset))


def _read_by(expr: str, records: Mapping[str, str]) -> list[str]:
    """``expr`` and the expressions of the recording rules it reads, transitively."""
    seen: set[str] = set()
    texts, todo = [], [expr]
    while todo:
        text = todo.pop()
        texts.append(text)
        for name in _NAME.findall(text):
            if name in records and name not in seen:
                seen.add(name)
                todo.append(records[name])
    return texts


def samples_needed(expr: str, records: Mapping[str, str]) -> int:
    """2 when ``expr``, or a recording rule it reads (transitively), applies a range function
    to a series; else 1."""
    return 2 if any(_RANGE_FUNCTION.search(text) for text in _read_by(expr, records)) else 1


def window_seconds(expr: str, records: Mapping[str, str]) -> float:
    """The longest range a range function reads in ``expr`` or the recording rules it reads:
    traffic older than this no longer counts. A ``last_over_time`` memory is no window."""
    longest = 0.0
    for text in _read_by(expr, records):
        for call in _RANGE_FUNCTION.finditer(text):
            match = _RANGE.search(text, call.end())
            if match is not None:
                longest = max(longest, duration_seconds(match.group(1)))
    return longest


def alert_bounds(rules: Mapping, timing: Timing) -> dict[str, Bound]:
    """Every alert of a ``build_rules`` document, with its lowest bound for a fault that shows
    in full at once."""
    rule_list = [rule for group in rules["groups"] for rule in group["rules"]]
    records = {rule["record"]: rule["expr"] for rule in rule_list if "record" in rule}
    bounds: dict[str, Bound] = {}
    for rule in rule_list:
        if "alert" not in rule:
            continue
        for_seconds = duration_seconds(rule.get("for", "0s"))
        samples = samples_needed(rule["expr"], records)
        fill = (samples - 1) * timing.scrape
        wait = timing.group_wait_of(rule["alert"])
        plumbing = timing.scrape + timing.evaluation + for_seconds + wait
        known = bounds.get(rule["alert"])
        if known is None or plumbing + fill < known.seconds:
            window = window_seconds(rule["expr"], records)
            bounds[rule["alert"]] = Bound(
                rule["alert"], for_seconds, samples, window, fill, plumbing
            )
    return bounds


# --- the onset: how long a fault must fill a window, from its definition -------------------


def fill_seconds(threshold: float, effect: float, window: float, pace: float = 1.0) -> float:
    """Seconds of faulted traffic a ``window``-second window must hold before a share the
    fault drives to ``effect`` passes ``threshold``; ``pace`` is the faulted traffic's rate
    over the rate before (a fault that holds requests longer also slows the traffic).

    With d seconds faulted the window's share is effect x pace x d / (pace x d + window - d),
    above the threshold once d > threshold x window / (pace x (effect - threshold) + threshold):
    threshold / effect x window at an unchanged pace.
    """
    if not 0 < threshold < effect:
        raise ValueError(f"an effect of {effect:g} never passes a threshold of {threshold:g}")
    if not 0 < pace <= 1:
        raise ValueError(f"a pace of {pace:g} is not a share of the traffic")
    return threshold * window / (pace * (effect - threshold) + threshold)


def psi_fill(
    baseline: Sequence[float],
    drifted: Sequence[float],
    level: float,
    window: float,
    epsilon: float,
) -> float:
    """Seconds of drifted traffic a ``window``-second window must hold before the PSI of its
    bins against ``baseline`` (training's shares, which the traffic before the fault follows)
    passes ``level``; ``drifted`` is the drifted traffic's share of each bin and ``epsilon``
    the rule's clamp.

    The PSI of the mix (1 - s) x baseline + s x drifted is convex in s (each bin's term is
    convex in its share) and zero at s = 0, so it grows with s and bisection finds the least
    s above the level.
    """

    def mixed(share: float) -> float:
        live = [(1 - share) * b + share * d for b, d in zip(baseline, drifted, strict=True)]
        return psi(live, baseline, epsilon)

    if mixed(1.0) <= level:
        raise ValueError(f"a drift whose PSI is {mixed(1.0):.3g} never passes {level:g}")
    low, high = 0.0, 1.0
    while high - low > 1e-9:
        middle = (low + high) / 2
        low, high = (low, middle) if mixed(middle) > level else (middle, high)
    return high * window


def growth_fill(
    rate: float, window: float, horizon: float, start: float, limit: float, min_growth: float
) -> float:
    """Seconds a leak of ``rate`` bytes a second must run before ``predict_linear`` over a
    ``window``-second window, ``horizon`` seconds ahead, passes ``limit`` from ``start`` bytes,
    while ``deriv`` over the same window passes ``min_growth``.

    Both fit a least-squares line to the window. With the leak x seconds old (x <= window),
    the line through flat memory and then a ramp has the slope 3 rate x² / window² x
    (1 - 2x / (3 window)), and at the window's end the value start + rate x² / (2 window) +
    slope x window / 2; the prediction adds slope x horizon. Both grow with x, so the least x
    is found by bisection. Beyond the window the line is the ramp itself.
    """
    if rate <= min_growth:
        raise ValueError(f"a leak of {rate:g} B/s never passes a growth of {min_growth:g} B/s")

    def holds(x: float) -> bool:
        slope = 3 * rate * x**2 / window**2 * (1 - 2 * x / (3 * window))
        level = start + rate * x**2 / (2 * window) + slope * (window / 2 + horizon)
        return slope > min_growth and level > limit

    if not holds(window):
        return max(window, (limit - start) / rate - horizon)
    low, high = 0.0, window
    while high - low > 0.01:
        middle = (low + high) / 2
        low, high = (low, middle) if holds(middle) else (middle, high)
    return high


def job_error_share(failing: float) -> float:
    """Scoring's 5xx share when ``failing`` of its predictions fail: the load also reports
    the outcome of a share of the accepted ones, on /feedback requests that succeed."""
    return failing / (1 + DEFAULT_FEEDBACK_SHARE * (1 - failing))


@functools.cache
def release_failure_share(version: str) -> float:
    """The share of the load's applicants whose prediction fails on release ``version``: its
    change (``app.scoring.changes``) run on applicants of the population the load draws."""
    if releases.get(version).behaviour != "errors":
        return 0.0
    change = CHANGES[version]
    applicants = sample_applicant_features(np.random.default_rng(0), POPULATION)
    failed = 0
    for i in range(POPULATION):
        try:
            change({name: float(values[i]) for name, values in applicants.items()})
        except Exception:  # scoring answers any exception of a change with a 500
            failed += 1
    return failed / POPULATION


@functools.cache
def _trained(model_version: str) -> tuple[LinearModel, Baseline]:
    # The same seed gives the same model and baseline the services load.
    return train(MODELS[model_version])


@functools.cache
def concept_drift_accuracy_drop(model_version: str) -> float:
    """How far concept drift takes the balanced accuracy of ``model_version`` (the measure
    ModelAccuracyDrop judges) below its training baseline: its decisions on the training
    population, judged by the drifted law."""
    model, baseline = _trained(model_version)
    if baseline.performance is None:
        raise ValueError(f"the baseline of {model_version} has no performance")
    population = sample_population(np.random.default_rng(0), POPULATION)
    declined = model.predict_many(population) >= model.threshold
    defaults = default_probability(population, concept_drift=True)
    default_recall = float(np.sum(np.where(declined, defaults, 0)) / np.sum(defaults))
    repaid_recall = float(np.sum(np.where(declined, 0, 1 - defaults)) / np.sum(1 - defaults))
    return baseline.performance.balanced_accuracy - (default_recall + repaid_recall) / 2


@functools.cache
def feature_bin_shares(
    load: LoadProfile, model_version: str
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The training shares of the bins of ``load.feature`` for ``model_version``, and the
    shares the load's applicants under ``load`` send into them: what the PSI compares."""
    feature = str(load.feature)
    bins = _trained(model_version)[1].features[feature]
    sent = [row[feature] for row, _ in load.applicants(np.random.default_rng(0), POPULATION)]
    return bins.shares, bins.shares_of(np.asarray(sent))


@dataclass(frozen=True)
class Scene:
    """What an onset is derived from: a fault, its resolved parameters and a profile's rules."""

    fault: str
    params: Mapping[str, Any]
    thresholds: Profile
    #: The highest resident memory among the fault's instances when it starts, in bytes;
    #: None when unknown (MemoryGrowth then keeps the two-sample fill).
    resident_bytes: float | None = None

    def fill(
        self,
        threshold_key: str,
        effect: float,
        window_key: str = "rate_window",
        pace: float = 1.0,
    ) -> float:
        threshold = self.thresholds.number(threshold_key)
        return fill_seconds(threshold, effect, self.thresholds.seconds(window_key), pace)


def _dependency_down(scene: Scene) -> dict[str, float]:
    failing = scene.params["rate"]
    return {
        "DependencyFailing": scene.fill("dependency.max_failure_ratio", failing),
        # features answers the failing lookups itself, and its job sends no /feedback.
        "HighErrorRate": scene.fill("error_rate.max_ratio", failing),
    }


def _slow_dependency(scene: Scene) -> dict[str, float]:
    # A lookup slower than scoring's read timeout fails when the timeout ends it, and a
    # request counts (in errors and latency) only when it ends. Meanwhile it holds one of
    # scoring's request threads, so the load passes at most threads / (rate x late) a second;
    # features answers late but not in error, so only scoring's ratio rises.
    failing = scene.params["rate"]
    late = min(scene.params["delay_ms"] / 1000, READ_TIMEOUT)
    scoring = load_stack().scoring
    capacity = scoring.instances * scoring.threads / (failing * late)
    predictions = min(1.0, capacity / LOAD_RATE)
    requests = min(1.0, capacity / (LOAD_RATE * (1 + DEFAULT_FEEDBACK_SHARE)))
    failures = scene.thresholds.fraction("dependency.max_failure_ratio")
    window = scene.thresholds.seconds("rate_window")
    return {
        "HighLatency": late + fill_seconds(P95_TAIL, failing, window, predictions),
        "DependencyFailing": late + fill_seconds(failures, failing, window, predictions),
        "HighErrorRate": late
        + scene.fill("error_rate.max_ratio", job_error_share(failing), pace=requests),
    }


def _error_burst(scene: Scene) -> dict[str, float]:
    errors = job_error_share(scene.params["rate"])
    burn = scene.thresholds.number("slo.fast.burn_rate")
    budget = 1 - scene.thresholds.fraction("slo.availability")
    long_window = scene.thresholds.seconds("slo.fast.long_window")
    return {
        "HighErrorRate": scene.fill("error_rate.max_ratio", errors),
        "ErrorBudgetBurn": fill_seconds(burn * budget, errors, long_window),
    }


def _bad_deploy(scene: Scene) -> dict[str, float]:
    # DeployErrorRegression reads the new version's own series, failing from its first
    # request; only the job's ratio must be filled.
    errors = job_error_share(release_failure_share(scene.params["version"]))
    return {"HighErrorRate": scene.fill("error_rate.max_ratio", errors)}


def _model_regression(scene: Scene) -> dict[str, float]:
    # The new release's scores are compared once its window holds the minimum sample; m3's
    # distance from m1 (about 0.6) is above the KS chance bound at that sample, so the
    # sample decides.
    return {
        "DeployPredictionShift": scene.thresholds.number("deploy.min_score_samples") / LOAD_RATE
    }


def _missing_features(scene: Scene) -> dict[str, float]:
    return {"FeatureMissing": scene.fill("missing.max_ratio", scene.params["rate"])}


def _feature_drift(scene: Scene) -> dict[str, float]:
    # The ticket's level is the lower one: its rule fires first, and gives the alert's bound.
    load = faults.traffic(scene.fault, scene.params, rate=LOAD_RATE)
    baseline, drifted = feature_bin_shares(load, load_stack().scoring.release.model_version)
    level = min(scene.thresholds.number(f"drift.{severity}_psi") for severity in ("ticket", "page"))
    window = scene.thresholds.seconds("drift.window")
    epsilon = scene.thresholds.fraction("drift.epsilon")
    return {"FeatureDrift": psi_fill(baseline, drifted, level, window, epsilon)}


def _cpu_hog(scene: Scene) -> dict[str, float]:
    # Every prediction holds its instance's interpreter for cpu_ms of CPU, so the instances
    # answer at most instances / cpu predictions a second between them. The load is a closed
    # loop: each user waits for its answer, then thinks users / rate. Once the users ask for
    # more than that, they queue at the instances and each answer takes users per instance
    # x cpu - think (mean-value analysis of a saturated closed system). Past the latency
    # threshold every prediction counts toward the p95, and the window fills at the slower
    # pace; such a prediction is counted no sooner than the threshold after it began.
    cpu = scene.params["cpu_ms"] / 1000
    stack = load_stack()
    instances, users = stack.scoring.instances, stack.locust.users
    answer = max(cpu, users / instances * cpu - users / LOAD_RATE)
    latency = scene.thresholds.number("latency.max_p95_seconds")
    if answer <= latency:
        raise ValueError(f"answers of {answer:g} s never pass a p95 of {latency:g} s")
    predictions = min(1.0, instances / cpu / LOAD_RATE)
    window = scene.thresholds.seconds("rate_window")
    return {"HighLatency": latency + fill_seconds(P95_TAIL, 1.0, window, predictions)}


def _memory_leak(scene: Scene) -> dict[str, float]:
    # Not a share: the prediction of a line fitted to the window must pass the limit, and how
    # soon depends on where the memory starts, read just before the injection.
    if scene.resident_bytes is None:
        return {}
    fill = growth_fill(
        rate=scene.params["mb_per_second"] * 2**20,
        window=scene.thresholds.seconds("memory.window"),
        horizon=scene.thresholds.seconds("memory.horizon"),
        start=scene.resident_bytes,
        limit=scene.thresholds.number("memory.limit_bytes"),
        min_growth=scene.thresholds.number("memory.min_growth_bytes_per_second"),
    )
    return {"MemoryGrowth": fill}


def _concept_drift(scene: Scene) -> dict[str, float]:
    drop = concept_drift_accuracy_drop(load_stack().scoring.release.model_version)
    delay = DEFAULT_FEEDBACK_DELAY[scene.thresholds.name]
    return {"ModelAccuracyDrop": delay + scene.fill("accuracy.max_drop", drop, "accuracy.window")}


#: Faults whose onset depends on the state they start from, read just before the injection.
STATEFUL = frozenset({"memory-leak"})

#: Per fault, its alerts' onsets.
ONSETS: dict[str, Callable[[Scene], dict[str, float]]] = {
    "data-drift": _feature_drift,
    "unit-change": _feature_drift,
    "slow-dependency": _slow_dependency,
    "error-burst": _error_burst,
    "dependency-down": _dependency_down,
    "bad-deploy": _bad_deploy,
    "model-regression": _model_regression,
    "missing-features": _missing_features,
    "cpu-hog": _cpu_hog,
    "concept-drift": _concept_drift,
    "memory-leak": _memory_leak,
}


def onsets(
    name: str, params: Mapping[str, str], profile: str, *, resident_bytes: float | None = None
) -> dict[str, float]:
    """Seconds fault ``name`` with ``params`` must be in each alert's window, by alert;
    ``resident_bytes`` is the highest resident memory of the fault's instances at its start."""
    derive = ONSETS.get(name)
    if derive is None:
        return {}
    resolved = faults.get(name).resolve(params)
    return derive(Scene(name, resolved, load_profile(profile), resident_bytes))


def fault_bounds(name: str, bounds: Mapping[str, Bound], profile: str) -> dict[str, Bound]:
    """The bound of each alert of fault ``name``."""
    mine = {alert: bounds[alert] for alert in faults.get(name).alerts}
    return with_onsets(mine, onsets(name, PARAMS.get(name, {}), profile))


def with_onsets(bounds: Mapping[str, Bound], onset: Mapping[str, float]) -> dict[str, Bound]:
    """``bounds`` for a fault that must be in each alert's window ``onset[alert]`` seconds."""
    return {alert: bound.with_onset(onset.get(alert, 0.0)) for alert, bound in bounds.items()}


@dataclass(frozen=True)
class Detected:
    """One alert of one fault: seconds from injection to its first page (None: missed)."""

    fault: str
    profile: str
    bound: Bound
    seconds: float | None

    @property
    def ratio(self) -> float | None:
        return None if self.seconds is None else self.seconds / self.bound.seconds


def rows(results: list[Detected]) -> list[Row]:
    table = []
    for result in results:
        bound = f"bound {result.bound.seconds:.3g} s"
        if result.seconds is None or result.ratio is None:
            value, met = f"no page ({bound})", False
        else:
            value = f"{result.seconds:.1f} s / {bound} = {result.ratio:.2f}"
            met = result.ratio <= GOAL_RATIO
        table.append(
            Row(
                f"{result.fault}, {result.profile}",
                f"page {result.bound.alert}",
                value,
                f"<= {GOAL_RATIO:g} x bound",
                met,
            )
        )
    return table


# --- the measurement -----------------------------------------------------------------------


def lingers(labels: Mapping[str, str]) -> bool:
    """Whether an alert is a slow SLO burn tier, whose window (hours or days, or minutes in the
    test profile) outlives any short fault by design: it is neither waited for nor measured,
    as it may still hold an earlier fault and page sooner than this one alone could make it."""
    return labels.get("window") in ("slow", "gradual", "chronic")


def first_firing(
    oncall: str,
    since: float,
    timeout: float,
    wanted: Callable[[Mapping[str, str]], bool],
    alertname: str | None = None,
) -> tuple[float, dict] | None:
    """The first firing notification (page or ticket) the receiver stored at or after
    ``since`` whose labels are ``wanted``, but a lingering burn tier's, with the unix time it
    was received; None when none came within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        received = [
            (datetime.fromisoformat(page["received_at"]).timestamp(), page)
            for page in fetch_pages(oncall, alertname=alertname, status="firing")
            if not lingers(page["labels"]) and wanted(page["labels"])
        ]
        after = [pair for pair in received if pair[0] >= since]
        if after:
            return min(after, key=lambda pair: pair[0])
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_SECONDS)


def first_page(
    oncall: str, alert: str, since: float, timeout: float, **labels: str
) -> float | None:
    """Unix time the receiver stored the first firing page of ``alert`` (with ``labels``)
    received at or after ``since``; None when none came within ``timeout``."""
    found = first_firing(
        oncall,
        since,
        timeout,
        lambda got: all(got.get(key) == value for key, value in labels.items()),
        alertname=alert,
    )
    return None if found is None else found[0]


def wait_quiet(lab: Lab, names: set[str], timeout: float) -> None:
    """Wait until none of ``names`` fires (but a lingering one), at most ``timeout``. An alert
    still firing when its fault starts cannot page again, so it shows in the table as a
    missed page."""
    deadline = time.monotonic() + timeout
    while True:
        firing = {a["labels"]["alertname"] for a in lab.firing() if not lingers(a["labels"])}
        if not firing & names or time.monotonic() > deadline:
            return
        time.sleep(1)


def measure_fault(
    lab: Lab, name: str, bounds: Mapping[str, Bound], profile: str, since: float
) -> tuple[list[Detected], float]:
    """Measure fault ``name`` once the previous one (ended at unix time ``since``) has left
    its alerts' windows; return the results and the time this fault ended.

    A window still holding a previous fault's errors or outcomes would let the alert fire
    sooner than the fault alone could, or later (an accuracy raised by a drift).
    """
    fault = faults.get(name)
    settle = max(MIN_TIMEOUT, PATIENCE * max(bound.seconds for bound in bounds.values()))
    wait_quiet(lab, set(fault.alerts) | set(fault.may_alert) | SETTLE_ALERTS, settle)
    time.sleep(max(0.0, since + max(b.window for b in bounds.values()) - time.time()))
    if name in STATEFUL:
        resident = lab.query(f'max(process_resident_memory_bytes{{job="{fault.service}"}})')
        bounds = with_onsets(
            bounds, onsets(name, PARAMS.get(name, {}), profile, resident_bytes=resident)
        )
    timeout = {alert: max(MIN_TIMEOUT, PATIENCE * bounds[alert].seconds) for alert in fault.alerts}
    faults.inject(name, PARAMS.get(name), duration=max(timeout.values()) + 60)
    injected = time.time()
    results = []
    try:
        for alert in fault.alerts:
            elapsed = time.time() - injected
            paged = first_page(
                lab.urls["oncall"], alert, injected, max(0.0, timeout[alert] - elapsed)
            )
            seconds = None if paged is None else paged - injected
            results.append(Detected(name, profile, bounds[alert], seconds))
    finally:
        faults.clear(name)
        ended = time.time()
    wait_quiet(lab, set(fault.alerts), settle)
    return results, ended


def selected_faults() -> list[str]:
    """The faults to measure, deploys last."""
    chosen = os.environ.get("OBSLAB_BENCH_FAULTS", "")
    names = [name.strip() for name in chosen.split(",") if name.strip()] or list(faults.CATALOGUE)
    return sorted(names, key=lambda name: faults.get(name).source == "deploy")


def profiles() -> list[str]:
    return ["test", "demo"] if os.environ.get("OBSLAB_BENCH_DEMO") == "1" else ["test"]


# --- a class's first minutes: each fault a minute after `obslab up` ------------------------

#: A class injects its first fault this long after ``obslab up`` returns: every window then
#: holds a minute of traffic at most, and Prometheus has been up no longer.
COLD_START = 60.0
#: A class sees each fault of the catalogue, as a page or a ticket, within this long.
CLASS_GOAL = 180.0


@dataclass(frozen=True)
class ColdStart:
    """One fault injected :data:`COLD_START` seconds after a fresh demo stack came up."""

    fault: str
    #: The fault's first alert to reach the receiver, its kind (page or ticket) and the
    #: seconds from the injection; None when none came.
    first: tuple[str, str, float] | None
    #: Alerts the fault does not explain that reached the receiver since ``obslab up``, each
    #: with its kind: ``"TargetDown (page)"``.
    others: tuple[str, ...] = ()


def first_notice(
    oncall: str, alerts: Collection[str], since: float, timeout: float
) -> tuple[str, str, float] | None:
    """The first firing page or ticket of any of ``alerts`` received at or after ``since``:
    its alert, kind and seconds after ``since``; None when none came within ``timeout``."""
    found = first_firing(oncall, since, timeout, lambda got: got.get("alertname") in alerts)
    if found is None:
        return None
    moment, page = found
    return page["labels"]["alertname"], page["kind"], moment - since


def measure_cold_start(name: str) -> ColdStart:
    """Fault ``name``, with the catalogue's parameters, on a fresh ``demo`` stack under the
    load's default rate, injected :data:`COLD_START` seconds after it came up."""
    fault = faults.get(name)
    with native_lab("demo", load_rate=DEFAULT_RATE) as lab:
        up = time.time()
        time.sleep(COLD_START)
        faults.inject(name, duration=2 * CLASS_GOAL + 60)
        injected = time.time()
        first = first_notice(lab.urls["oncall"], set(fault.alerts), injected, 2 * CLASS_GOAL)
        explained = {*fault.alerts, *fault.may_alert}
        others = {
            f"{page['labels']['alertname']} ({page['kind']})"
            for page in fetch_pages(lab.urls["oncall"], status="firing")
            if datetime.fromisoformat(page["received_at"]).timestamp() >= up
            and page["labels"]["alertname"] not in explained
        }
    return ColdStart(name, first, tuple(sorted(others)))


def cold_rows(results: list[ColdStart]) -> list[Row]:
    table = []
    for result in results:
        if result.first is None:
            value, met = f"nothing within {2 * CLASS_GOAL:g} s", False
        else:
            alert, kind, seconds = result.first
            value, met = f"{seconds:.1f} s ({alert}, {kind})", seconds <= CLASS_GOAL
        if result.others:
            value += f"; also: {', '.join(result.others)}"
            met = False
        table.append(
            Row(
                f"{result.fault}, demo, {COLD_START:g} s after up",
                "first page or ticket",
                value,
                f"<= {CLASS_GOAL:g} s, no other alert",
                met,
            )
        )
    return table


def run() -> list[Row]:
    names = selected_faults()
    results: list[Detected] = []
    for profile in profiles():
        bounds = alert_bounds(build_rules(profile), Timing.of_profile(profile))
        with native_lab(profile) as lab:
            # The load starts with the stack: the first fault waits for its windows to fill.
            ended = time.time()
            for name in names:
                print(f"  {profile}: {name}", file=sys.stderr, flush=True)
                measured, ended = measure_fault(
                    lab, name, fault_bounds(name, bounds, profile), profile, ended
                )
                results += measured
    table = rows(results)
    if os.environ.get("OBSLAB_BENCH_COLD") == "1":
        cold = []
        for name in names:
            print(f"  demo, {COLD_START:g} s after up: {name}", file=sys.stderr, flush=True)
            cold.append(measure_cold_start(name))
        table += cold_rows(cold)
    return table
