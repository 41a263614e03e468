"""Deploys are observable: real rolling and canary deploys under Locust traffic, attributed
(or not) by the alert rules, as the on-call engineer's pages show.

The tests run in order on the session's one stack: a good release, the erroring release and
its rollback, the erroring release as a canary at low traffic, a miscalibrated canary and its
rollback, the same canary with its shift declared, a model-only deploy of that model and its
rollback, errors that began before a deploy, then a dependency that fails after a clean
deploy. The module's fixture puts back the initial release and waits until the alerts have
resolved.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import numpy as np
import pytest
import requests

from app.model.data import customer_history
from loadgen.profile import Profile
from obslab import deploy, faults
from obslab.topology import read_topology

pytestmark = pytest.mark.live

INITIAL = ("1.0.0", "m1")
DEPLOY_ALERTS = ("DeployErrorRegression", "DeployLatencyRegression", "DeployPredictionShift")
# The test profile's deploy `for:` window is 10 s, its Alertmanager group_wait 1 s: an alert
# that has not paged this long after its cause will not.
QUIET_PERIOD = 25.0
STREAM_SIZE = 1000


@contextmanager
def _in_stack(stack) -> Iterator[None]:
    """The deploy commands find the stack through $OBSLAB_HOME."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OBSLAB_HOME", str(stack.home))
        env.delenv("GRAFANA_URL", raising=False)
        yield


def _scoring_release(stack) -> tuple[str, str]:
    release = read_topology(stack.home / "stack.json").releases["scoring"]
    return release.version, release.model_version


def _pages(stack, since: float, alertname: str, status: str = "firing") -> list[dict]:
    """Pages of ``alertname`` the oncall receiver got after ``since`` (unix seconds)."""
    response = requests.get(
        f"{stack.oncall}/pages", params={"alertname": alertname, "status": status}, timeout=5
    )
    response.raise_for_status()
    after = datetime.fromtimestamp(since, UTC)
    return [
        page
        for page in response.json()
        if datetime.fromisoformat(page["received_at"].replace("Z", "+00:00")) > after
    ]


#: Scoring's errors as Prometheus sees them: firing, whether or not a cause holds them back.
SCORING_ERRORS_FIRING = 'ALERTS{alertname="HighErrorRate", job="scoring", alertstate="firing"}'


def _wait_for_page(
    stack, since: float, alertname: str, status: str = "firing", timeout: float = 90, **labels
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for page in _pages(stack, since, alertname, status):
            if all(page["labels"].get(key) == value for key, value in labels.items()):
                return page
        time.sleep(0.5)
    pytest.fail(f"no {status} page {alertname} {labels} since the deploy within {timeout:.0f}s")


def _deploy_pages(stack, since: float) -> list[dict]:
    return [page for name in DEPLOY_ALERTS for page in _pages(stack, since, name)]


def _wait_until_quiet(stack, alertnames: str, timeout: float = 120) -> None:
    """Wait until no alert matching the regex ``alertnames`` is pending or firing."""
    deadline = time.monotonic() + timeout
    while stack.query(f'ALERTS{{alertname=~"{alertnames}"}}'):
        if time.monotonic() > deadline:
            pytest.fail(f"alerts {alertnames} still active after {timeout:.0f}s")
        time.sleep(1)


@pytest.fixture(scope="module", autouse=True)
def initial_release(stack) -> Iterator[None]:
    """Leave the stack as the session found it: features up, no canary, the initial release."""
    try:
        yield
    finally:
        stack.start("features")
        with _in_stack(stack):
            scoring = read_topology(stack.home / "stack.json")
            if len({i.release for i in scoring.instances_of("scoring")}) > 1:
                deploy.rollback()
            if _scoring_release(stack) != INITIAL:
                deploy.deploy(INITIAL[0], model=INITIAL[1])
        _wait_until_quiet(stack, "|".join((*DEPLOY_ALERTS, "HighErrorRate", "DependencyFailing")))


class _Stream:
    """A steady stream of real predictions through nginx, counting every answer.

    Its applicants are drawn from the training population, like Locust's: a stream of one
    applicant would make the score distribution a point mass that vanishes when the stream
    stops, and DeployPredictionShift would rightly see the traffic change beside the deploy.

    Each request opens its own connection: on every reload nginx's old workers close their
    idle client connections, and a client that reuses one at that instant sees it closed
    before nginx read the request (HTTP's idle-close race, which clients retry). What this
    counts is whether nginx and the instances answer every request they receive.
    """

    def __init__(self, scoring: str, seed: int = 0) -> None:
        self._url = f"{scoring}/predict"
        rng = np.random.default_rng(seed)
        customers = rng.integers(1, len(customer_history()["customer_id"]) + 1, size=STREAM_SIZE)
        self._bodies = [
            {"customer_id": int(customer), **sent}
            for customer, (sent, _) in zip(
                customers, Profile().applicants(rng, STREAM_SIZE), strict=True
            )
        ]
        self.answers: collections.Counter[object] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        for body in itertools.cycle(self._bodies):
            if self._stop.is_set():
                return
            try:
                response = requests.post(self._url, json=body, timeout=10)
                self.answers[response.status_code] += 1
            except requests.RequestException as exc:
                self.answers[type(exc).__name__] += 1
            time.sleep(0.02)


def test_a_good_release_rolls_out_without_a_dropped_request_or_a_page(stack) -> None:
    since = time.time()
    with _in_stack(stack), _Stream(stack.scoring) as stream:
        record = deploy.deploy("1.1.0")

    assert record is not None and (record.version, record.previous_version) == ("1.1.0", "1.0.0")
    assert set(stream.answers) == {200}, stream.answers
    assert stream.answers[200] > 20
    build = stack.wait_for_query('app_build_info{job="scoring", version="1.1.0"}')
    assert {series["metric"]["previous_version"] for series in build} == {"1.0.0"}
    # The old instances left Prometheus's targets; their series go stale at its next scrape.
    deadline = time.monotonic() + 15
    while stack.query('app_build_info{job="scoring", version="1.0.0"}'):
        assert time.monotonic() < deadline, "the replaced version is still scraped"
        time.sleep(0.5)
    time.sleep(QUIET_PERIOD)
    assert _deploy_pages(stack, since) == []


def test_an_erroring_release_is_blamed_and_its_rollback_resolves(stack) -> None:
    since = time.time()
    with _in_stack(stack):
        deploy.deploy("1.2.0")
    page = _wait_for_page(
        stack, since, "DeployErrorRegression", version="1.2.0", previous_version="1.1.0"
    )
    assert page["labels"]["commit"] == deploy.default_commit("1.2.0")

    with _in_stack(stack):
        record = deploy.rollback()

    assert (record.version, record.previous_version, record.kind) == ("1.1.0", "1.2.0", "rollback")
    _wait_for_page(
        stack, since, "DeployErrorRegression", "resolved", version="1.2.0", previous_version="1.1.0"
    )
    # The rollback resolves the deploy alert at once, but the errors stay in HighErrorRate's
    # window a little longer (it may only fire now): the next test must not inherit its page.
    _wait_until_quiet(stack, "HighErrorRate|ErrorBudgetBurn")


@contextmanager
def _load_rate(stack, rate: float) -> Iterator[None]:
    """Locust's request rate, for the block: it re-reads its profile when the file changes."""
    path = stack.home / "load" / "profile.json"
    before = Profile.load(path)
    before.with_rate(rate).save(path)
    try:
        yield
    finally:
        before.save(path)


def test_an_erroring_canary_at_low_traffic_is_blamed_and_the_old_release_is_not(stack) -> None:
    """1.2.0 as a 10 % canary at 5 requests/s: half a prediction a second reaches it, and it
    fails the one in nine with a debt ratio of 0.5 or more. No rate gate holds it back: its
    first hundred or so requests are evidence enough beyond chance (about two minutes; at
    2 requests/s it would take longer than the test profile's six-minute onset window).
    Removing the canary resolves it."""
    since = time.time()
    with _load_rate(stack, 5.0):
        with _in_stack(stack):
            deploy.deploy("1.2.0", canary=10)
        try:
            _wait_for_page(stack, since, "DeployErrorRegression", timeout=300, version="1.2.0")
            blamed = {page["labels"]["version"] for page in _deploy_pages(stack, since)}
            assert blamed == {"1.2.0"}
        finally:
            with _in_stack(stack):
                deploy.rollback()
    assert _scoring_release(stack) == ("1.1.0", "m2")
    _wait_for_page(stack, since, "DeployErrorRegression", "resolved", version="1.2.0")
    _wait_until_quiet(stack, "HighErrorRate|ErrorBudgetBurn")


def test_a_miscalibrated_canary_shifts_predictions_and_raises_no_error(stack) -> None:
    since = time.time()
    with _in_stack(stack):
        deploy.deploy("1.4.0", canary=50)
    try:
        _wait_for_page(
            stack,
            since,
            "DeployPredictionShift",
            version="1.4.0",
            previous_version="1.1.0",
            model_version="m3",
        )
        assert _pages(stack, since, "DeployErrorRegression") == []
        assert _pages(stack, since, "HighErrorRate") == []
    finally:
        # Even when an assertion failed: the next test deploys, which a live canary refuses.
        with _in_stack(stack):
            deploy.rollback()

    assert _scoring_release(stack) == ("1.1.0", "m2")
    _wait_for_page(stack, since, "DeployPredictionShift", "resolved", version="1.4.0")


def test_a_canary_that_declares_its_shift_opens_a_ticket_not_a_page(stack) -> None:
    """`obslab deploy 1.4.0 --canary 50 --expect-shift`: the same miscalibrated model, its
    shift now declared intended. The release is judged again and convicted as before, but
    on-call gets a ticket that says the shift is intended, and no page."""
    since = time.time()
    with _in_stack(stack):
        deploy.deploy("1.4.0", canary=50, expect_shift=True)
    try:
        ticket = _wait_for_page(
            stack, since, "DeployPredictionShift", version="1.4.0", severity="ticket"
        )
        assert "intended" in ticket["annotations"]["summary"]
        severities = {page["labels"]["severity"] for page in _deploy_pages(stack, since)}
        assert severities == {"ticket"}
    finally:
        with _in_stack(stack):
            deploy.rollback()

    _wait_for_page(
        stack, since, "DeployPredictionShift", "resolved", version="1.4.0", severity="ticket"
    )


def test_a_model_only_deploy_of_the_miscalibrated_model_is_blamed_by_name(stack) -> None:
    """`obslab deploy 1.1.0 --model m3`: the code stays, the model changes. The scores carry
    the release, so the page names m3 from the deploy's first scrapes; deploying m2 again
    resolves it (`deploy rollback` goes back to a version, and here the version stayed)."""
    since = time.time()
    with _in_stack(stack):
        deploy.deploy("1.1.0", model="m3")
    try:
        page = _wait_for_page(
            stack,
            since,
            "DeployPredictionShift",
            version="1.1.0",
            previous_version="1.1.0",
            model_version="m3",
        )
        assert page["labels"]["severity"] == "page"
        assert _pages(stack, since, "DeployErrorRegression") == []
    finally:
        with _in_stack(stack):
            deploy.deploy("1.1.0", model="m2")

    assert _scoring_release(stack) == ("1.1.0", "m2")
    _wait_for_page(stack, since, "DeployPredictionShift", "resolved", model_version="m3")


def test_errors_that_began_before_a_deploy_are_not_blamed_on_it(stack) -> None:
    since = time.time()
    # Without features, scoring answers every prediction with a 503: a cause that is no deploy.
    stack.stop("features")
    try:
        # Features down is the cause that pages; scoring's errors fire, held back under it.
        _wait_for_page(stack, since, "TargetDown", job="features", severity="page")
        stack.wait_for_query(SCORING_ERRORS_FIRING)
        deployed = time.time()
        with _in_stack(stack):
            deploy.deploy(INITIAL[0], model=INITIAL[1])
        time.sleep(QUIET_PERIOD)
        # The errors began after the previous test's rollback too, within its attribution
        # window, so that deploy may rightly be paged about; the new one must not be.
        blamed = [
            page
            for page in _deploy_pages(stack, deployed)
            if page["labels"]["version"] == INITIAL[0]
        ]
        assert blamed == []
        assert stack.query('ALERTS{alertname="HighErrorRate", job="scoring"}')
    finally:
        stack.start("features")
    _wait_until_quiet(stack, "HighErrorRate|TargetDown|DependencyFailing")


def test_a_dependency_failure_after_a_clean_deploy_is_not_blamed_on_it(stack) -> None:
    """A good release that no earlier test deployed (so it is judged, not taken for a
    rollback), then features refuses every lookup: scoring's errors rise on the new release
    only, but the failing dependency explains them. DependencyFailing pages, and holds back
    scoring's HighErrorRate; no deploy alert fires."""
    _wait_until_quiet(stack, "HighErrorRate|DependencyFailing")
    since = time.time()
    with _in_stack(stack):
        record = deploy.deploy("1.0.0", model="m2")
    assert record is not None and record.model_version == "m2"
    # The release serves cleanly for a while first, as a good deploy does before trouble.
    time.sleep(QUIET_PERIOD)
    failed = time.time()
    with stack.environment():
        faults.inject("dependency-down", duration=300)
    try:
        _wait_for_page(stack, failed, "DependencyFailing", job="scoring")
        # The failing dependency explains scoring's errors: they fire, held back under it.
        stack.wait_for_query(SCORING_ERRORS_FIRING)
        time.sleep(QUIET_PERIOD)
        assert _deploy_pages(stack, since) == []
    finally:
        with stack.environment():
            faults.clear("dependency-down")
    _wait_for_page(stack, failed, "DependencyFailing", "resolved", job="scoring")
