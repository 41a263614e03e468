"""The training baseline that drift is measured against.

For every feature and for the score: the decile edges of the training sample and the share
of that sample in each bin. Ties (integer features such as late_payments) merge edges, so a
feature may have fewer than ten bins and unequal shares; the shares are exported as metrics so
the PSI rules never assume one tenth.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

DECILES = np.linspace(0.1, 0.9, 9)


@dataclass(frozen=True)
class BinEdges:
    """Inner bin edges; bin ``i`` holds values in ``(edges[i-1], edges[i]]``."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]

    @classmethod
    def from_sample(cls, values: np.ndarray) -> BinEdges:
        edges = np.unique(np.quantile(values, DECILES, method="linear"))
        return cls(tuple(float(e) for e in edges), _shares(edges, values))

    def bin_index(self, value: float) -> int:
        return bisect.bisect_left(self.edges, value)

    def shares_of(self, values: np.ndarray) -> tuple[float, ...]:
        """The share of ``values`` in each bin, binned as :meth:`bin_index` does."""
        return _shares(np.asarray(self.edges), values)


def _shares(edges: np.ndarray, values: np.ndarray) -> tuple[float, ...]:
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return tuple(float(c) for c in counts / len(values))


@dataclass(frozen=True)
class Performance:
    """How the model decides on held-out training data, by measures that hold at a 24% default
    rate: plain accuracy would rate approving everyone at 76%.

    ``default_recall``: the defaulters it declines; ``repaid_recall``: the good payers it
    approves; ``default_precision``: the declined who default; ``default_rate``: the share of
    defaulters, which a calibrated model's mean probability matches.
    """

    default_rate: float
    default_recall: float
    repaid_recall: float
    default_precision: float

    @property
    def balanced_accuracy(self) -> float:
        return (self.default_recall + self.repaid_recall) / 2

    @classmethod
    def of(cls, declined: np.ndarray, defaulted: np.ndarray) -> Performance:
        """From each held-out applicant's decision (declined or not) and real outcome."""
        declined, defaulted = np.asarray(declined, bool), np.asarray(defaulted, bool)
        return cls(
            default_rate=float(np.mean(defaulted)),
            default_recall=float(np.mean(declined[defaulted])),
            repaid_recall=float(np.mean(~declined[~defaulted])),
            # A model that declines no one has no precision to speak of.
            default_precision=float(np.mean(defaulted[declined])) if declined.any() else np.nan,
        )


@dataclass(frozen=True)
class Baseline:
    """``performance`` is None for a baseline saved before it was measured: the registry
    trains such a model again, deterministically, to measure it."""

    model_version: str
    features: dict[str, BinEdges]
    score: BinEdges
    accuracy: float
    performance: Performance | None = None

    def to_json(self) -> dict:
        def bins(b: BinEdges) -> dict:
            return {"edges": list(b.edges), "shares": list(b.shares)}

        doc = {
            "model_version": self.model_version,
            "accuracy": self.accuracy,
            "score": bins(self.score),
            "features": {name: bins(b) for name, b in self.features.items()},
        }
        if self.performance is not None:
            doc["performance"] = asdict(self.performance)
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> Baseline:
        def bins(d: dict) -> BinEdges:
            return BinEdges(tuple(d["edges"]), tuple(d["shares"]))

        performance = doc.get("performance")
        return cls(
            model_version=doc["model_version"],
            accuracy=float(doc["accuracy"]),
            score=bins(doc["score"]),
            features={name: bins(d) for name, d in doc["features"].items()},
            performance=Performance(**performance) if performance is not None else None,
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2))

    @classmethod
    def load(cls, path: Path) -> Baseline:
        return cls.from_json(json.loads(path.read_text()))
