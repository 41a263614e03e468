"""Traffic profiles: how the load generator's applicants differ from the training population.

The active profile and request rate live in a small JSON file in the state directory; the
running Locust users re-read it when it changes, so ``obslab load profile …`` and
``obslab load rate …`` take effect without a restart.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from app.model.data import APPLICANT_FEATURES, FEATURE_SPECS, sample_applicant_features

PROFILES = ("normal", "drift", "unit-change", "missing", "concept-drift")
DEFAULT_RATE = 10.0
#: The share of accepted predictions whose real outcome the load reports on /feedback, and
#: how many seconds after the prediction, per stack profile (``OBSLAB_FEEDBACK_SHARE`` and
#: ``OBSLAB_FEEDBACK_DELAY`` override them in the locustfile).
DEFAULT_FEEDBACK_SHARE = 0.5
DEFAULT_FEEDBACK_DELAY = {"test": 2.0, "demo": 10.0}
Row = dict[str, float | None]


class ProfileError(ValueError):
    """A profile or rate that cannot be applied; the message says which argument and why."""


@dataclass(frozen=True)
class Profile:
    name: str = "normal"
    feature: str | None = None
    amount: float = 0.0
    rate: float = DEFAULT_RATE

    @classmethod
    def parse(cls, words: list[str], *, rate: float = DEFAULT_RATE) -> Profile:
        """``normal`` | ``drift FEATURE SHIFT`` | ``unit-change FEATURE FACTOR`` |
        ``missing FEATURE RATE`` | ``concept-drift``."""
        if not words or words[0] not in PROFILES:
            raise ProfileError(f"profile must be one of {', '.join(PROFILES)}")
        name, args = words[0], words[1:]
        if name in ("normal", "concept-drift"):
            if args:
                raise ProfileError(f"profile {name} takes no arguments")
            return cls(name, rate=rate)
        if len(args) != 2:
            raise ProfileError(f"profile {name} takes FEATURE and a number")
        feature, raw = args
        if feature not in APPLICANT_FEATURES:
            raise ProfileError(
                f"feature must be one the applicant sends: {', '.join(APPLICANT_FEATURES)}"
            )
        try:
            amount = float(raw)
        except ValueError:
            raise ProfileError(f"{raw!r} is not a number") from None
        if not np.isfinite(amount):
            raise ProfileError(f"{raw!r} is not a finite number")
        if name == "missing" and not 0 <= amount <= 1:
            raise ProfileError("missing RATE must be between 0 and 1")
        if name == "unit-change" and amount <= 0:
            raise ProfileError("unit-change FACTOR must be positive")
        return cls(name, feature, amount, rate)

    def with_rate(self, rate: float) -> Profile:
        if not 0 < rate <= 1000:
            raise ProfileError("rate must be between 0 and 1000 requests a second")
        return replace(self, rate=rate)

    def describe(self) -> str:
        detail = f" {self.feature} {self.amount:g}" if self.feature else ""
        return f"{self.name}{detail} at {self.rate:g} req/s"

    @property
    def concept_drift(self) -> bool:
        return self.name == "concept-drift"

    def applicants(self, rng: np.random.Generator, n: int) -> list[tuple[Row, Row]]:
        """Draw ``n`` applicants as (what is sent, what is true), within the API's ranges.

        A drifted population really is different, so both agree; a unit change or a missing
        value corrupts only what is sent, and the truth still decides the outcome.
        """
        truth = sample_applicant_features(rng, n)
        if self.name == "drift":
            truth[self.feature] = truth[self.feature] + self.amount * training_sd()[self.feature]
        truth = {name: _within_spec(name, values) for name, values in truth.items()}
        sent = dict(truth)
        if self.name == "unit-change":
            sent[self.feature] = _within_spec(self.feature, truth[self.feature] * self.amount)
        rows = [
            (
                {name: float(sent[name][i]) for name in APPLICANT_FEATURES},
                {name: float(truth[name][i]) for name in APPLICANT_FEATURES},
            )
            for i in range(n)
        ]
        if self.name == "missing":
            for (row, _), gone in zip(rows, rng.random(n) < self.amount, strict=True):
                if gone:
                    row[self.feature] = None
        return rows

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Profile:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return cls()


def _within_spec(name: str, values: np.ndarray) -> np.ndarray:
    spec = FEATURE_SPECS[name]
    values = np.clip(values, spec.minimum, spec.maximum)
    return np.round(values) if spec.integer else values


@functools.cache
def training_sd() -> dict[str, float]:
    """Each applicant feature's standard deviation in the training population."""
    sample = sample_applicant_features(np.random.default_rng(0), 50_000)
    return {name: float(np.std(values)) for name, values in sample.items()}
