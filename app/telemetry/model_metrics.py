"""Scoring's own signals: what its model sees and says, and how its dependency answers.

Model signals are binned on the training deciles; the binned counters and the baseline
shares share their ``bin`` labels, so a PSI rule can divide live shares by training shares
with a plain join.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Protocol

import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.telemetry.http_metrics import LATENCY_BUCKETS

SCORE_BUCKETS = tuple(round(0.05 * step, 2) for step in range(1, 21))
DECISIONS = ("approve", "decline")
FEEDBACK_OUTCOMES = ("correct", "incorrect")
#: Seconds from a prediction to its feedback: seconds in the lab, months for real loans.
FEEDBACK_DELAY_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 3600, 21600, 86400, 604800, 2592000, 7776000)
DEPENDENCY_OUTCOMES = ("ok", "error", "timeout")

#: The ``feature`` label of the score's baseline shares.
SCORE = "score"


class BinEdges(Protocol):
    """Training-decile edges of one variable and the share of training rows in each bin."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]

    def bin_index(self, x: float) -> int: ...


class Performance(Protocol):
    """How the model decided on held-out data (``app.model.baseline.Performance``)."""

    default_rate: float
    default_recall: float
    default_precision: float

    @property
    def balanced_accuracy(self) -> float: ...


class Baseline(Protocol):
    """What training left behind for monitoring (``app.model.baseline.Baseline``)."""

    model_version: str
    features: Mapping[str, BinEdges]
    score: BinEdges
    accuracy: float
    performance: Performance | None


class ModelMetrics:
    """Prediction, drift, missing-input and feedback counters for one model version.

    Every label combination exists from the start at 0, so ``rate()`` and PSI rules see
    every bin from the first scrape.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        baseline: Baseline,
        *,
        release: str = "",
        enabled: bool = True,
    ) -> None:
        # Disabled (OBSLAB_TELEMETRY=off), the series still exist but nothing is recorded.
        self._enabled = enabled
        version = baseline.model_version
        score = Histogram(
            "model_prediction_score",
            "Predicted default probability.",
            ("version", "model_version"),
            registry=registry,
            buckets=SCORE_BUCKETS,
        )
        predictions = Counter(
            "model_predictions",
            "Predictions made, by decision.",
            ("version", "model_version", "decision"),
            registry=registry,
        )
        score_bins = Counter(
            "model_score_bin",
            "Predicted scores per training-decile bin of the score.",
            ("version", "model_version", "bin"),
            registry=registry,
        )
        feature_bins = Counter(
            "model_feature_bin",
            "Present input values per training-decile bin of their feature.",
            ("version", "model_version", "feature", "bin"),
            registry=registry,
        )
        missing = Counter(
            "model_feature_missing",
            "Inputs that arrived missing (null), by feature.",
            ("version", "model_version", "feature"),
            registry=registry,
        )
        feedback = Counter(
            "model_feedback",
            "Ground-truth feedback on past predictions, by whether the prediction was correct.",
            ("model_version", "outcome"),
            registry=registry,
        )
        share = Gauge(
            "model_baseline_share",
            "Share of training rows in each bin (feature 'score' for the predicted score).",
            ("model_version", "feature", "bin"),
            registry=registry,
        )
        accuracy = Gauge(
            "model_baseline_accuracy",
            "Accuracy of the model on its held-out training data.",
            ("model_version",),
            registry=registry,
        )

        for name, edges in [*baseline.features.items(), (SCORE, baseline.score)]:
            for index, training_share in enumerate(edges.shares):
                share.labels(version, name, str(index)).set(training_share)
        self._accuracy = accuracy
        self._performance = {
            measure: Gauge(
                f"model_baseline_{measure}",
                f"{description} on the model's held-out training data.",
                ("model_version",),
                registry=registry,
            )
            for measure, description in _PERFORMANCE.items()
        }
        self.add_baseline(baseline)
        # Feedback by the model's decision and the real outcome: recall, precision and
        # balanced accuracy need no join. The probabilities sum per model, so the mean
        # predicted default rate of the same cohort tells calibration.
        self._outcomes = Counter(
            "model_feedback_outcomes",
            "Feedback on past predictions, by the decision made and whether the applicant "
            "defaulted.",
            ("model_version", "decision", "defaulted"),
            registry=registry,
        )
        self._probabilities = Counter(
            "model_feedback_default_probability",
            "Sum of the predicted default probabilities of the predictions that got feedback.",
            ("model_version",),
            registry=registry,
        )
        self._delay = Histogram(
            "model_feedback_delay_seconds",
            "Time from a prediction to its feedback.",
            ("model_version",),
            registry=registry,
            buckets=FEEDBACK_DELAY_BUCKETS,
        )
        for decision in DECISIONS:
            for defaulted in ("true", "false"):
                self._outcomes.labels(version, decision, defaulted)
        self._probabilities.labels(version)

        # The release beside the model: deploy rules compare releases on these series, so a
        # release never borrows another's figures through a shared instance label.
        served_by = (release, version)
        self._score = score.labels(*served_by)
        self._score_bin_index = baseline.score.bin_index
        self._score_bins = _bins(score_bins, baseline.score, *served_by)
        self._decisions = {
            decision: predictions.labels(*served_by, decision) for decision in DECISIONS
        }
        self._feature_names = tuple(baseline.features)
        self._features = tuple(
            (
                edges.bin_index,
                _bins(feature_bins, edges, *served_by, name),
                missing.labels(*served_by, name),
            )
            for name, edges in baseline.features.items()
        )
        self._version = version
        self._feedback = feedback
        for outcome in FEEDBACK_OUTCOMES:
            feedback.labels(version, outcome)

    def add_baseline(self, baseline: Baseline) -> None:
        """Export the accuracy and performance ``baseline`` measured for its model.

        Scoring exports those of every model trained in the lab, not only its own: feedback
        for a replaced model keeps arriving, and is judged against that model's baseline.
        """
        self._accuracy.labels(baseline.model_version).set(baseline.accuracy)
        if baseline.performance is None:
            return
        for measure, gauge in self._performance.items():
            gauge.labels(baseline.model_version).set(getattr(baseline.performance, measure))

    def observe_inputs(self, features: Mapping[str, float | None]) -> None:
        """Count the inputs handed to the model; a feature that is None or absent counts as
        missing.

        Called before inference, so the inputs of a request the model then fails on still
        count: a release that fails on some applicants must not look like their features
        drifted away (their bins would empty while the population stayed the same).
        """
        if not self._enabled:
            return
        for name, (bin_index, bins, missing) in zip(
            self._feature_names, self._features, strict=True
        ):
            value = features.get(name)
            if value is None:
                missing.inc()
            else:
                bins[bin_index(value)].inc()

    def observe_prediction(self, score: float, decision: str) -> None:
        """Count one prediction: its score and its decision."""
        if not self._enabled:
            return
        decided = self._decisions.get(decision)
        if decided is None:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        self._score.observe(score)
        self._score_bins[self._score_bin_index(score)].inc()
        decided.inc()

    def observe_feedback(self, correct: bool, *, model_version: str | None = None) -> None:
        """Count the ground truth of one earlier prediction.

        ``model_version`` is the version that made the prediction, when not the current one:
        feedback arrives late, possibly after a deploy.
        """
        if not self._enabled:
            return
        outcome = "correct" if correct else "incorrect"
        self._feedback.labels(model_version or self._version, outcome).inc()

    def observe_outcome(
        self,
        *,
        decision: str,
        defaulted: bool,
        probability: float,
        delay_seconds: float,
        model_version: str | None = None,
    ) -> None:
        """Count the real outcome of one earlier prediction beside the decision and the
        probability the model gave it, ``delay_seconds`` after it was made.

        ``model_version`` is the version that made the prediction, when not the current one.
        """
        if not self._enabled:
            return
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        version = model_version or self._version
        self._outcomes.labels(version, decision, "true" if defaulted else "false").inc()
        self._probabilities.labels(version).inc(probability)
        self._delay.labels(version).observe(max(delay_seconds, 0.0))


@dataclass
class DependencyCall:
    """A call being tracked; set ``outcome`` when the block knows better than its exception."""

    outcome: str | None = None


class DependencyMetrics:
    """``dependency_requests_total{dependency, outcome}`` and its latency histogram."""

    def __init__(
        self, registry: CollectorRegistry, dependency: str, *, enabled: bool = True
    ) -> None:
        self._enabled = enabled
        calls = Counter(
            "dependency_requests",
            "Calls to a dependency, by outcome (ok, error, timeout).",
            ("dependency", "outcome"),
            registry=registry,
        )
        duration = Histogram(
            "dependency_request_duration_seconds",
            "Time spent calling a dependency, whatever the outcome.",
            ("dependency",),
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._calls = {
            outcome: calls.labels(dependency, outcome) for outcome in DEPENDENCY_OUTCOMES
        }
        self._duration = duration.labels(dependency)

    def observe(self, outcome: str, seconds: float) -> None:
        """Record one finished call."""
        calls = self._calls.get(outcome)
        if calls is None:
            raise ValueError(f"outcome must be one of {DEPENDENCY_OUTCOMES}, got {outcome!r}")
        calls.inc()
        self._duration.observe(seconds)

    @contextmanager
    def track(self) -> Iterator[DependencyCall]:
        """Time the block and record how it ended.

        Unless the block sets ``call.outcome``: ``ok`` if it returns, ``timeout`` if it
        raises a timeout (``requests.Timeout``, ``TimeoutError``), ``error`` if it raises
        anything else, such as ``response.raise_for_status()``.
        """
        call = DependencyCall()
        if not self._enabled:
            yield call
            return
        started = perf_counter()
        ended = "error"
        try:
            yield call
            ended = "ok"
        except (requests.Timeout, TimeoutError):
            ended = "timeout"
            raise
        finally:
            self.observe(call.outcome or ended, perf_counter() - started)


#: The baseline measures exported as ``model_baseline_<measure>``, beside accuracy.
_PERFORMANCE = {
    "balanced_accuracy": "Mean of the recall on defaults and on repayments",
    "default_recall": "Share of the defaulters declined",
    "default_precision": "Share of the declined who defaulted",
    "default_rate": "Share of applicants who defaulted",
}


def _bins(counter: Counter, edges: BinEdges, *labels: str) -> tuple[Counter, ...]:
    """One child per bin of ``edges``, indexed by bin; ``labels`` precede ``bin``."""
    return tuple(counter.labels(*labels, str(index)) for index in range(len(edges.shares)))
