"""Drift detection quality: how often the PSI drift alerts cry wolf, and how fast they see a shift.

The simulation replays what Prometheus sees under the drift rules of ``alerts/thresholds.yaml``:
applicants drawn from the training population (``app.model.data``) with the history of a
random customer of the features service's table, scored by the initial release's model,
counted per evaluation step in the baseline's bins, summed over the sliding window, guarded by
the minimum number of observations, scored by ``alerts.rules.psi`` (the function the promtool
tests pin the recording rules to) and held for the alert's ``for:``. Beside it, on the same
windows with the same guard and ``for:``, a two-sample Kolmogorov-Smirnov test at the 5% level
against the model's training sample.

Scrapes and evaluations are aligned, and a time to detect ends when the rule fires, before
Alertmanager's group_wait: the rules' own statistical delay, without the plumbing.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from alerts.rules import psi
from alerts.thresholds import load_profile
from app import releases
from app.model.baseline import Baseline
from app.model.data import (
    FEATURE_SPECS,
    FEATURES,
    HISTORY_FEATURES,
    customer_history,
    sample_applicant_features,
    sample_population,
)
from app.model.train import TRAIN_SIZE, LinearModel, ModelSpec, train
from app.model.versions import MODELS
from bench.report import Row
from loadgen.profile import DEFAULT_RATE, training_sd

TITLE = "drift"
SEED = 4
SCORE = "score"
VARIABLES: tuple[str, ...] = (*FEATURES, SCORE)
#: Two-sample KS at this level, with the asymptotic critical value c(alpha) * sqrt((n+m)/(nm)).
ALPHA = 0.05
KS_C_ALPHA = math.sqrt(-math.log(ALPHA / 2) / 2)
#: The KS statistic is read at this many training quantiles (every distinct value of a
#: discrete feature): at most 1/KS_GRID below the exact statistic, and cheap on a sliding window.
KS_GRID = 1000
FALSE_ALARM_RATES = (1.0, 5.0, DEFAULT_RATE, 20.0, 100.0)
#: The live suite's Locust rate (tests/live/conftest.py), judged under the ``test`` profile.
LIVE_TEST_RATE = 20.0
#: Far longer than a live suite runs (under 30 minutes).
LIVE_TEST_SECONDS = 6 * 3600
SHIFTED_FEATURE = "income"
SHIFTS = (0.25, 0.5, 1.0)
DETECTION_RATES = (5.0, 20.0, 100.0)
REPLICATES = 20
#: A shift not detected within this many windows of its start counts as missed.
HORIZON_WINDOWS = 3
DAY_SECONDS = 86_400
#: Cells of per-step counts held at once; bounds memory whatever the rate or duration.
BLOCK_CELLS = 16_000_000


@dataclass(frozen=True)
class DriftRules:
    """The drift rules of one profile of ``alerts/thresholds.yaml``, in evaluation steps."""

    profile: str
    step_seconds: float
    window_steps: int
    for_steps: int
    min_observations: float
    epsilon: float
    #: severity -> the PSI above which the alert of that severity holds.
    levels: dict[str, float]

    @classmethod
    def load(cls, profile: str) -> DriftRules:
        config = load_profile(profile)
        step = config.seconds("interval")
        return cls(
            profile=profile,
            step_seconds=step,
            window_steps=round(config.seconds("drift.window") / step),
            for_steps=round(config.seconds("drift.for") / step),
            min_observations=config.number("drift.min_observations"),
            epsilon=config.fraction("drift.epsilon"),
            levels={
                "ticket": config.number("drift.ticket_psi"),
                "page": config.number("drift.page_psi"),
            },
        )

    def firing_starts(self, condition: np.ndarray) -> np.ndarray:
        """Where an alert on ``condition`` (replicates x evaluations) starts firing.

        Prometheus fires once the condition has held since an evaluation at least ``for:``
        ago, that is at ``for_steps + 1`` consecutive evaluations; a gap starts over.
        """
        index = np.arange(condition.shape[-1])
        last_false = np.maximum.accumulate(np.where(condition, -1, index), axis=-1)
        return index - last_false == self.for_steps + 1


@dataclass(frozen=True)
class Reference:
    """What live traffic is judged against: the model, its baseline and its training sample."""

    model: LinearModel
    baseline: Baseline
    #: The features service's customer table (``app.model.data.customer_history``).
    history: dict[str, np.ndarray]
    #: Every variable's training sample, sorted.
    training: dict[str, np.ndarray]

    @classmethod
    def of_release(cls, version: str = releases.DEFAULT_VERSION) -> Reference:
        spec = MODELS[releases.get(version).model_version]
        model, baseline = train(spec)
        sample = training_sample(spec)
        sample[SCORE] = model.predict_many(sample)
        return cls(model, baseline, customer_history(), {k: np.sort(v) for k, v in sample.items()})

    def bin_edges(self, variable: str) -> np.ndarray:
        edges = self.baseline.score if variable == SCORE else self.baseline.features[variable]
        return np.asarray(edges.edges)

    def bin_shares(self, variable: str) -> tuple[float, ...]:
        edges = self.baseline.score if variable == SCORE else self.baseline.features[variable]
        return edges.shares


def training_sample(spec: ModelSpec) -> dict[str, np.ndarray]:
    """The sample ``train(spec)`` fits on: the first draw from its seeded generator."""
    return sample_population(np.random.default_rng(spec.seed), TRAIN_SIZE)


@dataclass(frozen=True)
class Shift:
    """From evaluation step ``start`` on, ``feature``'s mean moves by ``sds`` training SDs,
    as the ``drift`` load profile moves it (``loadgen.profile``)."""

    feature: str
    sds: float
    start: int

    def apply(self, values: np.ndarray) -> np.ndarray:
        spec = FEATURE_SPECS[self.feature]
        moved = np.clip(values + self.sds * training_sd()[self.feature], spec.minimum, spec.maximum)
        return np.round(moved) if spec.integer else moved


def draw(
    reference: Reference,
    rng: np.random.Generator,
    n: int,
    shifted: tuple[np.ndarray, Shift] | None = None,
) -> dict[str, np.ndarray]:
    """``n`` scored requests; ``shifted`` = (which requests, how) moves one feature."""
    values = sample_applicant_features(rng, n)
    customers = rng.integers(0, len(reference.history["customer_id"]), n)
    values |= {name: reference.history[name][customers] for name in HISTORY_FEATURES}
    if shifted is not None:
        mask, shift = shifted
        values[shift.feature] = np.where(
            mask, shift.apply(values[shift.feature]), values[shift.feature]
        )
    values[SCORE] = reference.model.predict_many(values)
    return values


class KSGrid:
    """One variable's training CDF at its grid of training quantiles."""

    def __init__(self, training: np.ndarray) -> None:
        levels = np.linspace(0, 1, KS_GRID + 1)
        self.points = np.unique(np.quantile(training, levels, method="inverted_cdf"))
        self.cdf = np.searchsorted(training, self.points, side="right") / len(training)
        self.size = len(training)

    def distance(self, windows: np.ndarray) -> np.ndarray:
        """KS distance from training of each window (counts per grid cell on the last axis)."""
        n = windows.sum(axis=-1, keepdims=True)
        live = np.cumsum(windows[..., :-1], axis=-1) / np.maximum(n, 1)
        return np.abs(live - self.cdf).max(axis=-1)

    def rejects(self, windows: np.ndarray, min_observations: float) -> np.ndarray:
        """Whether the test rejects each window; a window below ``min_observations`` is held
        back, as the PSI rules hold it back."""
        n = windows.sum(axis=-1)
        critical = KS_C_ALPHA * np.sqrt((n + self.size) / (np.maximum(n, 1) * self.size))
        return (n >= min_observations) & (self.distance(windows) > critical)


class Windows:
    """One variable's counts per cell (``edges`` as the baseline bins them) over the sliding
    window, fed a block of evaluation steps at a time.

    Kept as running totals, so a window is the difference of two totals ``window`` steps
    apart; the totals start at zero, as a counter does when the service starts.
    """

    def __init__(self, edges: np.ndarray, window: int, replicates: int) -> None:
        self.edges = edges
        #: The running totals after each of the last ``window`` steps.
        self.recent = np.zeros((replicates, window, len(edges) + 1), dtype=np.int32)

    def feed(self, step_of: np.ndarray, values: np.ndarray, steps: int) -> np.ndarray:
        """Window sums (replicates x steps x cells) after each of the block's ``steps``, given
        each value's flat (replicate, step) index in ``step_of``."""
        replicates, window, cells = self.recent.shape
        counts = np.bincount(
            step_of * cells + np.searchsorted(self.edges, values, side="left"),
            minlength=replicates * steps * cells,
        ).reshape(replicates, steps, cells)
        totals = np.cumsum(counts, axis=1, dtype=np.int32) + self.recent[:, -1:]
        joined = np.concatenate([self.recent, totals], axis=1)
        self.recent = joined[:, -window:]
        return totals - joined[:, :steps]


@dataclass(frozen=True)
class Evaluations:
    """Per variable, per replicate and evaluation: the window's PSI (NaN where the
    min-observation guard holds it back) and whether the KS test rejects."""

    psi: dict[str, np.ndarray]
    ks_rejects: dict[str, np.ndarray]


def simulate(
    rules: DriftRules,
    reference: Reference,
    rng: np.random.Generator,
    *,
    rate: float,
    steps: int,
    replicates: int = 1,
    variables: Sequence[str] = VARIABLES,
    shift: Shift | None = None,
) -> Evaluations:
    """Evaluate the drift rules ``steps`` times on Poisson traffic at ``rate`` requests/s."""
    grids = {v: KSGrid(reference.training[v]) for v in variables}
    binned = {v: Windows(reference.bin_edges(v), rules.window_steps, replicates) for v in variables}
    gridded = {v: Windows(grids[v].points, rules.window_steps, replicates) for v in variables}
    psi_parts: dict[str, list[np.ndarray]] = {v: [] for v in variables}
    ks_parts: dict[str, list[np.ndarray]] = {v: [] for v in variables}
    block = max(rules.window_steps, BLOCK_CELLS // (replicates * (KS_GRID + 1)))
    for first in range(0, steps, block):
        length = min(block, steps - first)
        per_step = rng.poisson(rate * rules.step_seconds, size=(replicates, length))
        step_of = np.repeat(np.arange(replicates * length), per_step.ravel())
        shifted = None if shift is None else (first + step_of % length >= shift.start, shift)
        values = draw(reference, rng, len(step_of), shifted)
        for v in variables:
            shares = reference.bin_shares(v)
            psi_parts[v].append(_psi(binned[v].feed(step_of, values[v], length), shares, rules))
            windows = gridded[v].feed(step_of, values[v], length)
            ks_parts[v].append(grids[v].rejects(windows, rules.min_observations))
    return Evaluations(
        psi={v: np.concatenate(p, axis=1) for v, p in psi_parts.items()},
        ks_rejects={v: np.concatenate(p, axis=1) for v, p in ks_parts.items()},
    )


def _psi(window: np.ndarray, shares: Sequence[float], rules: DriftRules) -> np.ndarray:
    result = np.full(window.shape[:-1], np.nan)
    guarded = window.sum(axis=-1) >= rules.min_observations
    result[guarded] = [psi(row, shares, rules.epsilon) for row in window[guarded].tolist()]
    return result


# --- the figures of the table --------------------------------------------------------------


@dataclass(frozen=True)
class FalseAlarms:
    """Alerts that fired on in-distribution traffic, counted per labelled alert."""

    rules: DriftRules
    rate: float
    hours: float
    #: alert (e.g. "FeatureDrift ticket") -> firings
    firings: dict[str, int]
    #: the highest PSI any window reached, for features and for the score
    highest_feature_psi: float
    highest_score_psi: float


def false_alarms(
    rules: DriftRules,
    reference: Reference,
    rng: np.random.Generator,
    *,
    rate: float,
    seconds: float = DAY_SECONDS,
) -> FalseAlarms:
    steps = round(seconds / rules.step_seconds)
    evaluations = simulate(rules, reference, rng, rate=rate, steps=steps)
    features = [v for v in VARIABLES if v != SCORE]

    def firings(conditions: Iterable[np.ndarray]) -> int:
        return int(sum(rules.firing_starts(c).sum() for c in conditions))

    counts = {}
    for severity, level in rules.levels.items():
        counts[f"FeatureDrift {severity} (PSI > {level:g})"] = firings(
            evaluations.psi[f] > level for f in features
        )
        counts[f"PredictionDrift {severity} (PSI > {level:g})"] = firings(
            [evaluations.psi[SCORE] > level]
        )
    counts["KS 5% on features"] = firings(evaluations.ks_rejects[f] for f in features)
    counts["KS 5% on the score"] = firings([evaluations.ks_rejects[SCORE]])
    return FalseAlarms(
        rules,
        rate,
        seconds / 3600,
        counts,
        float(max(np.nanmax(evaluations.psi[f], initial=0) for f in features)),
        float(np.nanmax(evaluations.psi[SCORE], initial=0)),
    )


@dataclass(frozen=True)
class Detection:
    """Seconds from a shift's start until each detector fired, per replicate (inf: missed)."""

    rules: DriftRules
    rate: float
    shift: Shift
    horizon_seconds: float
    seconds: dict[str, np.ndarray]


def detection(
    rules: DriftRules,
    reference: Reference,
    rng: np.random.Generator,
    *,
    rate: float,
    sds: float,
    feature: str = SHIFTED_FEATURE,
    replicates: int = REPLICATES,
) -> Detection:
    """Shift ``feature`` once a full window of normal traffic has been seen."""
    warmup = rules.window_steps
    horizon = HORIZON_WINDOWS * rules.window_steps
    shift = Shift(feature, sds, start=warmup)
    evaluations = simulate(
        rules,
        reference,
        rng,
        rate=rate,
        steps=warmup + horizon,
        replicates=replicates,
        variables=[feature],
        shift=shift,
    )
    conditions = {
        f"FeatureDrift {severity} (PSI > {level:g})": evaluations.psi[feature] > level
        for severity, level in rules.levels.items()
    }
    conditions["KS 5%"] = evaluations.ks_rejects[feature]
    seconds = {}
    for name, condition in conditions.items():
        starts = rules.firing_starts(condition)[:, warmup:]
        first = np.where(starts.any(axis=1), starts.argmax(axis=1) + 1, np.inf)
        seconds[name] = first * rules.step_seconds
    return Detection(rules, rate, shift, horizon * rules.step_seconds, seconds)


def false_alarm_rows(result: FalseAlarms) -> list[Row]:
    rules = result.rules
    case = f"in-distribution {result.hours:g} h, {rules.profile} rules, {result.rate:g} req/s" + (
        " (demo load)" if rules.profile == "demo" and result.rate == DEFAULT_RATE else ""
    )
    goal = f"0 in {result.hours:g} h"
    rows = [
        Row(case, f"{alert} firings", str(count), goal, count == 0)
        for alert, count in result.firings.items()
    ]
    rows.append(
        Row(
            case,
            "highest window PSI, features / score",
            f"{result.highest_feature_psi:.3f} / {result.highest_score_psi:.3f}",
        )
    )
    return rows


def detection_rows(result: Detection) -> list[Row]:
    case = (
        f"{result.shift.feature} +{result.shift.sds:g} SD, "
        f"{result.rules.profile} rules, {result.rate:g} req/s"
    )
    return [
        Row(case, f"{name}: time to fire", _summary(seconds, result.horizon_seconds))
        for name, seconds in result.seconds.items()
    ]


def _summary(seconds: np.ndarray, horizon: float) -> str:
    detected = int(np.isfinite(seconds).sum())
    within = f"{detected}/{len(seconds)} within {_duration(horizon)}"
    if detected * 2 <= len(seconds):
        return f"missed ({within})"
    return f"median {_duration(float(np.median(seconds)))} ({within})"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def run() -> list[Row]:
    """Every case, spread over the machine's cores; each case has its own seed, so the table
    does not depend on which worker ran what."""
    cases = [(_false_alarm_case, ("demo", rate, DAY_SECONDS)) for rate in FALSE_ALARM_RATES]
    cases.append((_false_alarm_case, ("test", LIVE_TEST_RATE, LIVE_TEST_SECONDS)))
    cases += [(_detection_case, ("demo", rate, sds)) for sds in SHIFTS for rate in DETECTION_RATES]
    seeds = np.random.SeedSequence(SEED).spawn(len(cases))
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        futures = [
            pool.submit(case, *args, seed) for (case, args), seed in zip(cases, seeds, strict=True)
        ]
        return [row for future in futures for row in future.result()]


@functools.cache
def _reference() -> Reference:
    return Reference.of_release()


def _false_alarm_case(
    profile: str, rate: float, seconds: float, seed: np.random.SeedSequence
) -> list[Row]:
    rules, rng = DriftRules.load(profile), np.random.default_rng(seed)
    return false_alarm_rows(false_alarms(rules, _reference(), rng, rate=rate, seconds=seconds))


def _detection_case(
    profile: str, rate: float, sds: float, seed: np.random.SeedSequence
) -> list[Row]:
    rules, rng = DriftRules.load(profile), np.random.default_rng(seed)
    return detection_rows(detection(rules, _reference(), rng, rate=rate, sds=sds))
