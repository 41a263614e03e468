"""Load a model version with its baseline, training and saving it on first use.

Artifacts live in ``<state>/models/<version>/{model,baseline}.json``. Several instances may
start at once; each writes through a temporary file and an atomic rename, and training is
deterministic, so whichever write lands last is the same bytes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.model.baseline import Baseline
from app.model.train import LinearModel, train
from app.model.versions import MODELS


@dataclass(frozen=True)
class LoadedModel:
    model: LinearModel
    baseline: Baseline

    @property
    def version(self) -> str:
        return self.model.version


class UnknownModelError(LookupError):
    def __init__(self, version: str) -> None:
        known = ", ".join(sorted(MODELS))
        super().__init__(f"unknown model version {version!r}; known: {known}")


def load_model(version: str, models_dir: Path) -> LoadedModel:
    if version not in MODELS:
        raise UnknownModelError(version)
    folder = models_dir / version
    model_path, baseline_path = folder / "model.json", folder / "baseline.json"
    if model_path.exists() and baseline_path.exists():
        baseline = Baseline.load(baseline_path)
        if baseline.performance is not None:
            return LoadedModel(LinearModel.from_json(json.loads(model_path.read_text())), baseline)
    model, baseline = train(MODELS[version])
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomically(model_path, json.dumps(model.to_json(), indent=2))
    _write_atomically(baseline_path, json.dumps(baseline.to_json(), indent=2))
    return LoadedModel(model, baseline)


def trained_baselines(models_dir: Path) -> list[Baseline]:
    """The baselines of every known model trained under ``models_dir``: the models that made
    predictions in this lab, whose feedback may still arrive after they stopped serving."""
    found = []
    for version in sorted(MODELS):
        path = models_dir / version / "baseline.json"
        if path.exists():
            baseline = Baseline.load(path)
            if baseline.performance is not None:
                found.append(baseline)
    return found


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
