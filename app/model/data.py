"""Synthetic credit applicants with a known ground truth.

Every applicant has seven named business features. The true probability of default is a
fixed logistic function of them, so feedback sent later (delayed ground truth) can be drawn
from the same law the model tried to learn, and concept drift can change that law on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The features the applicant sends with a request (a value may be null: missing).
APPLICANT_FEATURES: tuple[str, ...] = (
    "income",
    "age",
    "debt_ratio",
    "loan_amount",
    "employment_years",
)
#: The features the features service looks up from customer history.
HISTORY_FEATURES: tuple[str, ...] = ("credit_utilization", "late_payments")
FEATURES: tuple[str, ...] = APPLICANT_FEATURES + HISTORY_FEATURES


@dataclass(frozen=True)
class FeatureSpec:
    """The valid range of a feature, as the scoring API enforces it."""

    minimum: float
    maximum: float
    integer: bool = False


FEATURE_SPECS: dict[str, FeatureSpec] = {
    "income": FeatureSpec(0, 10_000_000),
    "age": FeatureSpec(18, 120, integer=True),
    "debt_ratio": FeatureSpec(0, 10),
    "loan_amount": FeatureSpec(0, 5_000_000),
    "employment_years": FeatureSpec(0, 80),
    "credit_utilization": FeatureSpec(0, 1.5),
    "late_payments": FeatureSpec(0, 100, integer=True),
}

CUSTOMERS = 10_000
CUSTOMER_SEED = 2024


def sample_applicant_features(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw ``n`` applicants' own features from the population the model was trained on."""
    return {
        "income": np.round(rng.lognormal(mean=10.8, sigma=0.45, size=n), 2),
        "age": np.clip(np.round(rng.normal(42, 12, size=n)), 18, 90),
        "debt_ratio": np.round(rng.beta(2.0, 5.0, size=n), 4),
        "loan_amount": np.round(rng.lognormal(mean=9.6, sigma=0.7, size=n), 2),
        "employment_years": np.round(np.clip(rng.gamma(2.0, 4.0, size=n), 0, 60), 1),
    }


def sample_history_features(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw ``n`` customers' credit history."""
    return {
        "credit_utilization": np.round(rng.beta(2.0, 3.0, size=n), 4),
        "late_payments": rng.poisson(0.8, size=n).astype(float),
    }


def sample_population(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw ``n`` complete applicants (own features and history)."""
    return sample_applicant_features(rng, n) | sample_history_features(rng, n)


def default_probability(
    features: dict[str, np.ndarray], *, concept_drift: bool = False
) -> np.ndarray:
    """The true probability of default, the law the model tries to learn.

    With ``concept_drift`` the world changes while the inputs do not: the base rate rises and
    the old risk ranking turns around, so a model trained on the old law loses accuracy
    although every input distribution looks the same. Only feedback can tell.
    """
    income = np.log(features["income"] + 1.0)
    loan_to_income = features["loan_amount"] / (features["income"] + 1.0)
    logit = (
        -2.3
        - 0.9 * (income - 10.8) / 0.45
        - 0.02 * (features["age"] - 42)
        + 4.0 * (features["debt_ratio"] - 0.29)
        + 2.5 * (features["credit_utilization"] - 0.4)
        + 0.7 * features["late_payments"]
        + 1.5 * (loan_to_income - 0.35)
        - 0.05 * (features["employment_years"] - 8)
    )
    if concept_drift:
        logit = -1.2 - 0.4 * logit
    return 1.0 / (1.0 + np.exp(-logit))


def customer_history(seed: int = CUSTOMER_SEED, n: int = CUSTOMERS) -> dict[str, np.ndarray]:
    """The features service's customer table: ids 1..n and their history features."""
    rng = np.random.default_rng(seed)
    return {"customer_id": np.arange(1, n + 1)} | sample_history_features(rng, n)
