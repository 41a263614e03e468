"""The services keep serving while their monitoring is gone.

This module runs last in the live suite: a restarted Prometheus has a gap in every window,
and for as long as a drift window spans it, PSI is computed from a partial window and may
alarm on every feature at once.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.live


def test_services_keep_serving_while_prometheus_and_alertmanager_are_down(stack):
    # Both are pull- or push-only peers of the services: nothing on the request path waits
    # for them, so losing them must cost no request.
    for backend in ("prometheus", "alertmanager"):
        stack.stop(backend)
    try:
        answers = [stack.predict().status_code for _ in range(200)]
    finally:
        for backend in ("alertmanager", "prometheus"):
            stack.start(backend)
    assert answers == [200] * 200
    stack.wait_for_query('up{job="scoring"} == 1')
