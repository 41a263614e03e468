"""The code changes that regressing releases shipped, as they would look in a real diff.

Each function runs on the request path of the release that carries it, and misbehaves the
way its release notes (``app.releases``) say, with no flag involved. A change may add fields
to the response.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

Change = Callable[[Mapping[str, float | None]], dict[str, object]]

AUDIT_CALL_SECONDS = 0.3


DEBT_BAND_WEIGHTS = (1.0, 1.05, 1.1, 1.2, 1.35)


def debt_band_weight(features: Mapping[str, float | None]) -> dict[str, object]:
    """Release 1.2.0: reports a pricing weight per 10-point debt-ratio band.

    The bug: the table stops at the 40-50 % band, so an applicant with a debt ratio of 0.5 or
    more raises IndexError (about one applicant in nine).
    """
    return {"debt_band_weight": DEBT_BAND_WEIGHTS[int((features["debt_ratio"] or 0.0) * 10)]}


def late_payment_audit(features: Mapping[str, float | None]) -> dict[str, object]:
    """Release 1.3.0: a synchronous audit call for applicants with late payments."""
    if (features["late_payments"] or 0) > 0:
        time.sleep(AUDIT_CALL_SECONDS)
    return {}


CHANGES: dict[str, Change] = {
    "1.2.0": debt_band_weight,
    "1.3.0": late_payment_audit,
}
