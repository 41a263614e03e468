"""The training baseline that drift is measured against.

For every feature and for the score: the decile edges of the training sample and the share
of that sample in each bin. Ties (integer features such as late_payments) merge edges, so a
feature may have fewer than ten bins and unequal shares; the shares are exported as metrics so
the PSI rules never assume one tenth.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
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
class Baseline:
    model_version: str
    features: dict[str, BinEdges]
    score: BinEdges
    accuracy: float

    def to_json(self) -> dict:
        def bins(b: BinEdges) -> dict:
            return {"edges": list(b.edges), "shares": list(b.shares)}

        return {
            "model_version": self.model_version,
            "accuracy": self.accuracy,
            "score": bins(self.score),
            "features": {name: bins(b) for name, b in self.features.items()},
        }

    @classmethod
    def from_json(cls, doc: dict) -> Baseline:
        def bins(d: dict) -> BinEdges:
            return BinEdges(tuple(d["edges"]), tuple(d["shares"]))

        return cls(
            model_version=doc["model_version"],
            accuracy=float(doc["accuracy"]),
            score=bins(doc["score"]),
            features={name: bins(d) for name, d in doc["features"].items()},
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2))

    @classmethod
    def load(cls, path: Path) -> Baseline:
        return cls.from_json(json.loads(path.read_text()))
