"""Deploy attribution: does a deploy alert name the release that did it, and only that one?

A matrix of scenarios, each run ``OBSLAB_BENCH_RUNS`` times (default 3) on a fresh native stack
of the ``test`` profile under Locust's traffic (fresh applicants each run). A scenario deploys
scoring releases, and may make something else go wrong around the deploy; it names the deploy
pages it should cause (alert and release), none for the cases where a deploy must stay silent:

- a bad release (1.2.0 fails the applicants with a debt ratio of 0.5 or more), a slow one
  (1.3.0), a miscalibrated canary (1.4.0, half the traffic) and the bad release as a 10 %
  canary at 5 requests/s: each must be paged, by name;
- a good release (1.1.1), alone, then with features failing 30 s after its rollout, then
  deployed while features already fails: no deploy page;
- quick successive deploys, a good release then the bad one 20 s later: the bad one only.

Every deploy page the oncall receiver gets during a run is counted: one naming a release a
scenario expects is a true page, any other a false one. Precision is true over all deploy
pages, recall the expected pages that came over all expected. A run that expects no page
watches for ``QUIET`` seconds after its last step; a false page later than that (within the
onset window) is not seen. The goal: no false deploy page, every bad release attributed.

The time to attribute runs from the end of the rollout to the page stored at the receiver,
beside its bound: the plumbing (scrape, evaluation, ``for:``, group_wait, as in
``bench.detect``) plus the time the release's traffic takes to hold the samples that
significance needs against its reference. That is the least ``n`` requests (or predictions)
for which the rule's own test convicts the release's true effect: ``two_proportion_z`` for
errors and slow requests (the failing or slow share of the load's population, beside the
margin), the KS chance bound for scores (the models' true binned distance on the load's
population). The reference's counts are what the warm-up gave it. A rolling deploy's release
serves part of the traffic before its rollout ends, so it can beat the bound a little. The
goal: within 1.25 times that bound.

Run it alone: ``python -c "from bench import attribution; ..."`` as ``docs/performance.md``
shows; ``OBSLAB_BENCH_SCENARIOS`` (comma-separated names) picks a few. About half an hour a run.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from alerts.rules import build_rules, ks_coefficient, two_proportion_z, z_critical
from alerts.thresholds import Profile, load_profile
from app import releases
from app.model.data import customer_history, sample_population
from app.model.train import train
from app.model.versions import MODELS
from app.telemetry.model_metrics import SCORE_BUCKETS
from bench.detect import (
    POPULATION,
    Timing,
    alert_bounds,
    first_page,
    job_error_share,
    release_failure_share,
)
from bench.lab import LOAD_RATE, Lab, native_lab
from bench.report import Row
from loadgen.profile import DEFAULT_FEEDBACK_SHARE
from obslab import deploy, faults
from obslab.oncall.client import fetch_pages

TITLE = "deploy attribution"
GOAL_RATIO = 1.25
PROFILE = "test"
DEPLOY_ALERTS = ("DeployErrorRegression", "DeployLatencyRegression", "DeployPredictionShift")
#: Traffic before the first deploy: the first release's figures, its reference's counts.
WARM_UP = 60.0
#: How long a run that expects no page (or has its page) goes on watching for false ones.
QUIET = 90.0
#: An expected page not stored within this many bounds (at least MIN_TIMEOUT) is missed.
PATIENCE = 4.0
MIN_TIMEOUT = 120.0
#: The low-traffic canary's request rate and share: half a prediction a second reaches it. At
#: 2 requests/s the evidence against 1.2.0 (one prediction in nine fails) takes about nine
#: minutes, beyond the test profile's six-minute onset window.
LOW_RATE, LOW_SHARE = 5.0, 10


@dataclass(frozen=True)
class Expected:
    """A deploy page a scenario should cause: its alert, the release it names, and the share
    of the load's traffic that release takes (a canary's)."""

    alert: str
    version: str
    share: float = 1.0


@dataclass(frozen=True)
class Scenario:
    name: str
    #: Runs the scenario's steps on the lab; returns when the last deploy's rollout ended.
    steps: Callable[[Lab], float]
    expected: tuple[Expected, ...] = ()
    #: Locust's predictions a second, from the stack's start.
    rate: float = LOAD_RATE


def _deploy(version: str, **options: object) -> float:
    """Deploy ``version``; the moment its rollout ended."""
    # The deploy narrates on stdout, which carries the benchmark's table.
    with contextlib.redirect_stdout(sys.stderr):
        deploy.deploy(version, **options)
    return time.time()


def _fail_features(seconds: float) -> None:
    with contextlib.redirect_stdout(sys.stderr):
        faults.inject("dependency-down", duration=seconds)


def _bad_release(lab: Lab) -> float:
    return _deploy("1.2.0")


def _slow_release(lab: Lab) -> float:
    return _deploy("1.3.0")


def _miscalibrated_canary(lab: Lab) -> float:
    return _deploy("1.4.0", canary=50)


def _low_traffic_canary(lab: Lab) -> float:
    return _deploy("1.2.0", canary=LOW_SHARE)


def _good_release(lab: Lab) -> float:
    return _deploy("1.1.1")


def _outside_cause_after(lab: Lab) -> float:
    deployed = _deploy("1.1.1")
    time.sleep(30)
    _fail_features(QUIET + 60)
    return deployed


def _regression_before(lab: Lab) -> float:
    _fail_features(QUIET + 120)
    first_page(lab.urls["oncall"], "DependencyFailing", time.time(), MIN_TIMEOUT)
    return _deploy("1.1.1")


def _quick_successive(lab: Lab) -> float:
    _deploy("1.1.1")
    time.sleep(20)
    return _deploy("1.2.0")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("bad release", _bad_release, (Expected("DeployErrorRegression", "1.2.0"),)),
    Scenario("slow release", _slow_release, (Expected("DeployLatencyRegression", "1.3.0"),)),
    Scenario(
        "miscalibrated canary",
        _miscalibrated_canary,
        (Expected("DeployPredictionShift", "1.4.0", share=0.5),),
    ),
    Scenario(
        "bad 10 % canary at 5 requests/s",
        _low_traffic_canary,
        (Expected("DeployErrorRegression", "1.2.0", share=LOW_SHARE / 100),),
        rate=LOW_RATE,
    ),
    Scenario("good release", _good_release),
    Scenario("dependency fails after a good release", _outside_cause_after),
    Scenario("good release while a dependency fails", _regression_before),
    Scenario(
        "good then bad release, 20 s apart",
        _quick_successive,
        (Expected("DeployErrorRegression", "1.2.0"),),
    ),
)


# --- the bound ----------------------------------------------------------------------------


def least_samples(convicts: Callable[[int], bool], limit: int = 10**7) -> int | None:
    """The least n >= 1 with ``convicts(n)``, for a ``convicts`` that stays true once true;
    None when even ``limit`` does not."""
    if not convicts(limit):
        return None
    low, high = 0, 1
    while not convicts(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if convicts(middle):
            high = middle
        else:
            low = middle
    return high


def ratio_samples(share: float, reference: float, margin: float, z: float) -> int | None:
    """Requests the release must answer before ``share`` of them (failing, or slow) convicts
    it against ``reference`` requests of which none did, beyond ``margin`` at ``z``."""
    return least_samples(lambda n: two_proportion_z((share * n, n), (0.0, reference), margin) > z)


def ks_samples(
    distance: float, reference: float, coefficient: float, floor: float, minimum: int
) -> int | None:
    """Predictions the release must make before a true KS ``distance`` exceeds the chance
    bound against ``reference`` predictions (and at least ``minimum`` of them)."""
    if distance <= floor:
        return None
    return least_samples(
        lambda n: n >= minimum and distance > coefficient * math.sqrt(1 / n + 1 / reference)
    )


@functools.cache
def late_payment_share() -> float:
    """The share of the load's applicants 1.3.0 audits: customers with a late payment (the
    load draws customer ids uniformly)."""
    return float(np.mean(customer_history()["late_payments"] > 0))


@functools.cache
def score_distance(model: str, reference: str) -> float:
    """The binned KS distance between two models' scores (on the buckets scoring exports)
    for the training population, which the load draws its applicants from."""
    population = sample_population(np.random.default_rng(0), POPULATION)
    edges = np.asarray(SCORE_BUCKETS)

    def cdf(version: str) -> np.ndarray:
        scores = np.sort(train(MODELS[version])[0].predict_many(population))
        return np.searchsorted(scores, edges, side="right") / len(scores)

    return float(np.max(np.abs(cdf(model) - cdf(reference))))


def fill_seconds(expected: Expected, rate: float, config: Profile) -> float | None:
    """Seconds of the release's traffic that significance needs at the load's ``rate``
    (None: the rule can never convict it). The reference has the warm-up's traffic: its
    baseline after a rolling deploy, its share of the same moment's beside a canary (which
    only grows while the canary runs)."""
    alpha = config.fraction("deploy.significance")
    predictions = rate * expected.share
    reference_rate = rate * (1 - expected.share) if expected.share < 1 else rate
    if expected.alert == "DeployPredictionShift":
        model = releases.get(expected.version).model_version
        window = config.seconds("deploy.prediction_window")
        needed = ks_samples(
            score_distance(model, releases.get(releases.DEFAULT_VERSION).model_version),
            reference_rate * min(WARM_UP, window),
            ks_coefficient(alpha),
            config.fraction("deploy.max_ks_distance"),
            int(config.number("deploy.min_score_samples")),
        )
        return None if needed is None else needed / predictions
    # The load also reports the outcome of a share of the predictions answered, on /feedback
    # requests that neither fail nor slow down: they dilute the share among API requests.
    if expected.alert == "DeployErrorRegression":
        failing = release_failure_share(expected.version)
        share, margin = job_error_share(failing), "deploy.error_ratio_margin"
    else:
        failing = 0.0
        share, margin = (
            late_payment_share() / (1 + DEFAULT_FEEDBACK_SHARE),
            "deploy.slow_ratio_margin",
        )
    window = config.seconds("deploy.comparison_window")
    reference = reference_rate * (1 + DEFAULT_FEEDBACK_SHARE) * min(WARM_UP, window)
    needed = ratio_samples(share, reference, config.fraction(margin), z_critical(alpha))
    requests_per_second = predictions * (1 + DEFAULT_FEEDBACK_SHARE * (1 - failing))
    return None if needed is None else needed / requests_per_second


# --- the measurement ------------------------------------------------------------------------


@dataclass
class Run:
    """One run of a scenario: the deploy pages it got, and when each expected one came."""

    scenario: Scenario
    pages: set[tuple[str, str]] = field(default_factory=set)
    seconds: dict[Expected, float] = field(default_factory=dict)

    @property
    def true_pages(self) -> int:
        return len(self.pages & {(e.alert, e.version) for e in self.scenario.expected})

    @property
    def false_pages(self) -> int:
        return len(self.pages) - self.true_pages


def _deploy_pages(lab: Lab, since: float) -> set[tuple[str, str]]:
    return {
        (page["labels"]["alertname"], page["labels"].get("version", ""))
        for name in DEPLOY_ALERTS
        for page in fetch_pages(lab.urls["oncall"], alertname=name, status="firing")
        if page["labels"].get("severity") == "page"
        and datetime.fromisoformat(page["received_at"]).timestamp() >= since
    }


def run_scenario(scenario: Scenario, bounds: Mapping[Expected, float | None]) -> Run:
    result = Run(scenario)
    with native_lab(PROFILE, load_rate=scenario.rate) as lab:
        time.sleep(WARM_UP)
        started = time.time()
        deployed = scenario.steps(lab)
        for expected in scenario.expected:
            timeout = max(MIN_TIMEOUT, PATIENCE * (bounds[expected] or MIN_TIMEOUT))
            paged = first_page(
                lab.urls["oncall"],
                expected.alert,
                deployed,
                timeout,
                version=expected.version,
                severity="page",
            )
            if paged is not None:
                result.seconds[expected] = paged - deployed
        time.sleep(QUIET)
        result.pages = _deploy_pages(lab, started)
    return result


def bound_seconds(
    expected: Expected, rate: float, config: Profile, plumbing: Mapping[str, float]
) -> float | None:
    """The plumbing of ``expected.alert`` plus the traffic significance needs."""
    fill = fill_seconds(expected, rate, config)
    return None if fill is None else plumbing[expected.alert] + fill


def rows(
    runs: list[Run],
    bounds: Mapping[Expected, float | None],
    scenarios: Sequence[Scenario] = SCENARIOS,
) -> list[Row]:
    """Precision and recall over every run, then each scenario's time to attribute (or its
    false pages)."""
    table = []
    true = sum(run.true_pages for run in runs)
    false = sum(run.false_pages for run in runs)
    wanted = sum(len(run.scenario.expected) for run in runs)
    table.append(
        Row(
            f"{len(runs)} runs",
            "precision of deploy pages",
            f"{true}/{true + false}" + (f" = {true / (true + false):.2f}" if true + false else ""),
            "1.00 (no false page)",
            false == 0,
        )
    )
    table.append(
        Row(
            f"{len(runs)} runs",
            "recall of bad releases",
            f"{true}/{wanted}" + (f" = {true / wanted:.2f}" if wanted else ""),
            "1.00",
            true == wanted,
        )
    )
    for scenario in scenarios:
        mine = [run for run in runs if run.scenario is scenario]
        if not mine:
            continue
        if not scenario.expected:
            falsely = sum(run.false_pages for run in mine)
            table.append(
                Row(
                    scenario.name,
                    "false deploy pages",
                    f"{falsely} in {len(mine)} runs",
                    "0",
                    falsely == 0,
                )
            )
            continue
        for expected in scenario.expected:
            times = [run.seconds[expected] for run in mine if expected in run.seconds]
            bound = bounds[expected]
            label = f"page {expected.alert} {expected.version}"
            if len(times) < len(mine) or bound is None:
                value, met = f"{len(times)} of {len(mine)} runs paged", False
            else:
                median = statistics.median(times)
                value = (
                    f"median {median:.1f} s / bound {bound:.3g} s = {median / bound:.2f}"
                    f" (runs {min(times):.1f} to {max(times):.1f} s)"
                )
                met = median / bound <= GOAL_RATIO
            falsely = sum(run.false_pages for run in mine)
            if falsely:
                value += f", {falsely} false pages"
                met = False
            table.append(Row(scenario.name, label, value, f"<= {GOAL_RATIO:g} x bound", met))
    return table


def selected() -> list[Scenario]:
    chosen = {s.strip() for s in os.environ.get("OBSLAB_BENCH_SCENARIOS", "").split(",")}
    chosen.discard("")
    return [s for s in SCENARIOS if not chosen or s.name in chosen]


def run() -> list[Row]:
    config = load_profile(PROFILE)
    plumbing = {
        name: bound.plumbing
        for name, bound in alert_bounds(build_rules(PROFILE), Timing.of_profile(PROFILE)).items()
        if name in DEPLOY_ALERTS
    }
    scenarios = selected()
    bounds = {
        expected: bound_seconds(expected, scenario.rate, config, plumbing)
        for scenario in scenarios
        for expected in scenario.expected
    }
    runs = []
    for number in range(int(os.environ.get("OBSLAB_BENCH_RUNS", "3"))):
        for scenario in scenarios:
            print(f"  run {number + 1}: {scenario.name}", file=sys.stderr, flush=True)
            runs.append(run_scenario(scenario, bounds))
    return rows(runs, bounds, scenarios)
