"""The services keep serving while their monitoring is gone, and on-call hears of it.

This module runs after the modules that need whole windows: a restarted Prometheus has a gap
in every window, and for as long as a drift window spans it, PSI is computed from a partial
window and may alarm on every feature at once.
"""

from __future__ import annotations

import time

import pytest

from obslab import render
from obslab.stackconfig import load_stack

pytestmark = pytest.mark.live

#: Within this of Prometheus stopping, the dead-man's switch pages: Alertmanager ends the
#: Watchdog four resend delays (the test profile's 1 s evaluation interval) after Prometheus
#: last sent it, and the receiver pages once the Watchdog's timeout (9 s) has passed without
#: one. With Prometheus's default resend delay (1 m), the Watchdog would live on 4 minutes.
DEAD_MANS_BOUND = 45.0


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


def test_a_stopped_rule_evaluation_pages_the_dead_mans_switch(stack):
    """Prometheus gone means no rule is evaluated and no alert can fire: on-call hears of it
    from the receiver's own DeadMansSwitch page, not from silence."""
    assert render.watchdog_timeout_seconds(load_stack().profile("test")) < DEAD_MANS_BOUND
    # The test before restarted Prometheus; a switch it tripped must have recovered first.
    stack.wait_until_switch_armed_and_quiet()
    stopped = time.time()
    stack.stop("prometheus")
    try:
        page = stack.wait_for_page("DeadMansSwitch", since=stopped, timeout=DEAD_MANS_BOUND)
    finally:
        stack.start("prometheus")
    assert page["labels"]["severity"] == "page"
    stack.wait_for_page("DeadMansSwitch", status="resolved", since=stopped, timeout=60)
