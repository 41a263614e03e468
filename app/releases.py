"""The catalogue of scoring releases.

Some releases are good. Others carry a known regression in their own code or model, so
deploying one reproduces a real bad deploy; no flag pretends to be a deploy. What each
regressing change does lives in ``app.scoring.changes``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Behaviour = Literal["good", "errors", "slow", "miscalibrated"]


@dataclass(frozen=True)
class Release:
    version: str
    model_version: str
    behaviour: Behaviour
    change: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


RELEASES: dict[str, Release] = {
    r.version: r
    for r in (
        Release("1.0.0", "m1", "good", "First release: logistic regression model m1."),
        Release("1.1.0", "m2", "good", "Ships model m2, retrained on a fresh sample."),
        Release(
            "1.1.1", "m2", "good", "Tidies the request logs; behaviour is unchanged from 1.1.0."
        ),
        Release(
            "1.2.0",
            "m2",
            "errors",
            "Adds a debt-ratio band lookup whose table stops at 50 %, "
            "so applicants with a debt ratio of 0.5 or more get a 500.",
        ),
        Release(
            "1.3.0",
            "m2",
            "slow",
            "Adds a synchronous audit call for applicants with late payments, "
            "about 300 ms on that path.",
        ),
        Release(
            "1.4.0",
            "m3",
            "miscalibrated",
            "Ships model m3, trained with balanced class weights: no errors, "
            "but every score shifts up and far more applicants are declined.",
        ),
    )
}

DEFAULT_VERSION = "1.0.0"


class UnknownReleaseError(LookupError):
    def __init__(self, version: str) -> None:
        super().__init__(f"unknown release {version!r}; known: {', '.join(RELEASES)}")


def get(version: str) -> Release:
    try:
        return RELEASES[version]
    except KeyError:
        raise UnknownReleaseError(version) from None
