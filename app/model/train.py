"""Deterministic training of the credit-default model and its baseline.

A scikit-learn logistic regression on standardised, log-scaled features. Training takes well
under a second. The fitted pipeline is folded into one weight vector and an intercept, so
serving a request is one dot product and the saved model is a small, readable JSON file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from app.model.baseline import Baseline, BinEdges, Performance
from app.model.data import FEATURES, default_probability, sample_population

TRAIN_SIZE = 20_000
HOLDOUT_SIZE = 20_000
DECISION_THRESHOLD = 0.5
#: Features whose scale spans orders of magnitude enter the model as log(1 + x).
LOG_FEATURES = frozenset({"income", "loan_amount"})


@dataclass(frozen=True)
class ModelSpec:
    """How one model version is trained; see ``app.model.versions`` for the catalogue."""

    version: str
    seed: int
    description: str
    class_weight: str | None = None


@dataclass(frozen=True)
class LinearModel:
    """A trained model, folded to ``sigmoid(weights . transform(x) + intercept)``."""

    version: str
    weights: tuple[float, ...]
    intercept: float
    medians: dict[str, float]
    threshold: float = DECISION_THRESHOLD

    def impute(self, features: Mapping[str, float | None]) -> list[float]:
        """The feature vector in model order, with missing values replaced by training medians."""
        return [
            self.medians[name] if features.get(name) is None else float(features[name])
            for name in FEATURES
        ]

    def predict_proba(self, features: Mapping[str, float | None]) -> float:
        # math, not numpy: on one scalar a numpy ufunc costs several times the arithmetic.
        z = self.intercept
        for name, weight, value in zip(FEATURES, self.weights, self.impute(features), strict=True):
            z += weight * (math.log1p(value) if name in LOG_FEATURES else value)
        # Unlike np.exp, math.exp raises on overflow: exponentiate only a non-positive number.
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        odds = math.exp(z)
        return odds / (1.0 + odds)

    def decide(self, probability: float) -> str:
        return "decline" if probability >= self.threshold else "approve"

    def predict_many(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        z = self.intercept + _design(columns) @ np.asarray(self.weights)
        return 1.0 / (1.0 + np.exp(-z))

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "features": list(FEATURES),
            "weights": list(self.weights),
            "intercept": self.intercept,
            "medians": self.medians,
            "threshold": self.threshold,
        }

    @classmethod
    def from_json(cls, doc: dict) -> LinearModel:
        if doc["features"] != list(FEATURES):
            raise ValueError(f"model {doc['version']}: feature order {doc['features']} is stale")
        return cls(
            version=doc["version"],
            weights=tuple(doc["weights"]),
            intercept=float(doc["intercept"]),
            medians={k: float(v) for k, v in doc["medians"].items()},
            threshold=float(doc["threshold"]),
        )


def _design(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.column_stack(
        [np.log1p(columns[n]) if n in LOG_FEATURES else columns[n] for n in FEATURES]
    )


def train(spec: ModelSpec) -> tuple[LinearModel, Baseline]:
    """Train ``spec`` from its seed; the same spec always gives the same model and baseline."""
    rng = np.random.default_rng(spec.seed)
    train_x = sample_population(rng, TRAIN_SIZE)
    train_y = rng.random(TRAIN_SIZE) < default_probability(train_x)

    pipeline = make_pipeline(
        StandardScaler(), LogisticRegression(class_weight=spec.class_weight, max_iter=1000)
    )
    pipeline.fit(_design(train_x), train_y)
    scaler, logistic = pipeline[0], pipeline[-1]
    weights = logistic.coef_[0] / scaler.scale_
    model = LinearModel(
        version=spec.version,
        weights=tuple(float(w) for w in weights),
        intercept=float(logistic.intercept_[0] - weights @ scaler.mean_),
        medians={name: float(np.median(train_x[name])) for name in FEATURES},
    )

    holdout_x = sample_population(rng, HOLDOUT_SIZE)
    holdout_y = rng.random(HOLDOUT_SIZE) < default_probability(holdout_x)
    scores = model.predict_many(holdout_x)
    baseline = Baseline(
        model_version=spec.version,
        features={name: BinEdges.from_sample(holdout_x[name]) for name in FEATURES},
        score=BinEdges.from_sample(scores),
        accuracy=float(np.mean((scores >= model.threshold) == holdout_y)),
        performance=Performance.of(scores >= model.threshold, holdout_y),
    )
    return model, baseline
