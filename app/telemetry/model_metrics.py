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
DEPENDENCY_OUTCOMES = ("ok", "error", "timeout")

#: The ``feature`` label of the score's baseline shares.
SCORE = "score"


class BinEdges(Protocol):
    """Training-decile edges of one variable and the share of training rows in each bin."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]

    def bin_index(self, x: float) -> int: ...


class Baseline(Protocol):
    """What training left behind for monitoring (``app.model.baseline.Baseline``)."""

    model_version: str
    features: Mapping[str, BinEdges]
    score: BinEdges
    accuracy: float


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
        accuracy.labels(version).set(baseline.accuracy)

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


def _bins(counter: Counter, edges: BinEdges, *labels: str) -> tuple[Counter, ...]:
    """One child per bin of ``edges``, indexed by bin; ``labels`` precede ``bin``."""
    return tuple(counter.labels(*labels, str(index)) for index in range(len(edges.shares)))
