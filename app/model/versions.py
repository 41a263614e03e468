"""The catalogue of model versions.

Each version is a training recipe. ``m3`` carries a real, common bug: it was trained with
balanced class weights, which inflates every probability, so it declines far more applicants
while raising no error at all.
"""

from __future__ import annotations

from app.model.train import ModelSpec

MODELS: dict[str, ModelSpec] = {
    spec.version: spec
    for spec in (
        ModelSpec("m1", seed=7, description="Logistic regression on the seven features."),
        ModelSpec("m2", seed=11, description="m1 retrained on a fresh sample; equivalent."),
        ModelSpec(
            "m3",
            seed=11,
            class_weight="balanced",
            description="m2 retrained with balanced class weights: miscalibrated, scores shift up.",
        ),
    )
}
