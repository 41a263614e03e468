"""The live suite's stack: the real native stack, profile ``test``, on ports shifted by 20000,
with Locust traffic at ``LOAD_RATE``.

One stack serves the whole session (it takes seconds to start). It runs in a temporary
``OBSLAB_HOME``, so it never touches a user's ``.obslab`` or their running ``make up``.
Mark tests that use it with ``pytest.mark.live``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from loadgen.profile import Profile
from obslab import stack as native
from obslab.oncall.client import fetch_pages
from obslab.processes import port_in_use

#: Shift every port so the live stack runs beside a user's `make up`. Another live session
#: already on that shift moves this one up by steps of 1000 (or set OBSLAB_TEST_PORT_OFFSET).
BASE_PORT_OFFSET = 20000


def _free_port_offset() -> int:
    if "OBSLAB_TEST_PORT_OFFSET" in os.environ:
        return int(os.environ["OBSLAB_TEST_PORT_OFFSET"])
    for offset in range(BASE_PORT_OFFSET, BASE_PORT_OFFSET + 10_000, 1000):
        front_doors = (8000, 8001, 8002, 8100, 8101, 8200, 8201, 9090, 9093)
        if not any(port_in_use(port + offset) for port in front_doors):
            return offset
    raise RuntimeError("no free port offset for the live stack between 20000 and 29000")


PORT_OFFSET = _free_port_offset()
#: Requests a second of background traffic: enough for rate() windows of a few seconds.
LOAD_RATE = 20.0
#: A valid /predict body for one of the stack's seeded customers.
APPLICANT = {
    "customer_id": 42,
    "income": 61_000.0,
    "age": 35,
    "debt_ratio": 0.2,
    "loan_amount": 9_000.0,
    "employment_years": 4.0,
}


@dataclass(frozen=True)
class LiveStack:
    """URLs of the running stack and helpers to poll it."""

    home: Path
    urls: Mapping[str, str]
    port_offset: int = PORT_OFFSET

    @property
    def scoring(self) -> str:
        return self.urls["scoring"]

    @property
    def features(self) -> str:
        return self.urls["features"]

    @property
    def oncall(self) -> str:
        return self.urls["oncall"]

    @property
    def prometheus(self) -> str:
        return self.urls["prometheus"]

    @property
    def alertmanager(self) -> str:
        return self.urls["alertmanager"]

    @property
    def admin_token(self) -> str:
        return (self.home / "admin.token").read_text()

    def predict(self, timeout: float = 5) -> requests.Response:
        """Score ``APPLICANT`` through the load balancer."""
        return requests.post(f"{self.scoring}/predict", json=APPLICANT, timeout=timeout)

    def query(self, promql: str) -> list[dict]:
        """The result of an instant query: a list of ``{"metric": ..., "value": [t, "v"]}``."""
        response = requests.get(
            f"{self.prometheus}/api/v1/query", params={"query": promql}, timeout=5
        )
        response.raise_for_status()
        return response.json()["data"]["result"]

    def wait_for_query(self, promql: str, timeout: float = 30) -> list[dict]:
        """Poll ``promql`` until it returns at least one series; return them."""
        return _poll(lambda: self.query(promql), f"no result for {promql!r}", timeout)

    def wait_for_exemplars(self, selector: str, timeout: float = 30) -> list[dict]:
        """Poll until Prometheus holds exemplars of ``selector`` from the last minute."""

        def recent() -> list[dict]:
            end = time.time()
            response = requests.get(
                f"{self.prometheus}/api/v1/query_exemplars",
                params={"query": selector, "start": end - 60, "end": end},
                timeout=5,
            )
            response.raise_for_status()
            return [e for series in response.json()["data"] for e in series["exemplars"]]

        return _poll(recent, f"no exemplar of {selector!r} reached Prometheus", timeout)

    def wait_for_page(
        self,
        alertname: str,
        *,
        status: str = "firing",
        labels: Mapping[str, str] | None = None,
        timeout: float = 60,
        since: float | None = None,
    ) -> dict:
        """Poll the oncall receiver until a page of ``alertname`` with ``labels`` arrives
        (received at or after the unix time ``since``, when given)."""

        def matching() -> list[dict]:
            return [
                page
                for page in fetch_pages(self.oncall, alertname=alertname, status=status)
                if all(page["labels"].get(k) == v for k, v in (labels or {}).items())
                and (since is None or _unix(page["received_at"]) >= since)
            ]

        wanted = f"{status} page {alertname} {dict(labels or {})}"
        return _poll(matching, f"no {wanted} at {self.oncall}", timeout)[0]

    def dead_mans_switch(self) -> dict[str, float]:
        """The oncall receiver's dead-man's switch, as its ``/metrics`` shows it
        (``oncall_watchdog_*`` and ``oncall_dead_mans_switch_*``)."""
        response = requests.get(f"{self.oncall}/metrics", timeout=5)
        response.raise_for_status()
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name.startswith(("oncall_watchdog_", "oncall_dead_mans_switch_"))
        }

    def wait_until_switch_armed_and_quiet(self, timeout: float = 60) -> dict[str, float]:
        """Poll until a Watchdog has arrived and DeadMansSwitch is not firing: only then does
        a silence that follows mean the break a test makes."""

        def armed_and_quiet() -> list[dict[str, float]]:
            gauges = self.dead_mans_switch()
            armed = gauges["oncall_watchdog_last_seen_timestamp_seconds"] > 0
            return [gauges] if armed and gauges["oncall_dead_mans_switch_firing"] == 0 else []

        return _poll(armed_and_quiet, "the dead-man's switch is not armed and quiet", timeout)[0]

    def environment(self) -> contextlib.AbstractContextManager[None]:
        """``OBSLAB_HOME`` and ``OBSLAB_PORT_OFFSET`` of this stack, for code that drives it
        as the CLI would (deploy, faults, load profiles)."""
        return _stack_environment(self.home)

    def stop(self, service: str) -> None:
        """Stop every process of ``service`` (e.g. both features instances)."""
        with _stack_environment(self.home):
            native.stop_service(service)

    def start(self, service: str) -> None:
        """Start ``service``'s processes again and wait until they are healthy."""
        with _stack_environment(self.home):
            native.start_service(service)


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _poll(fetch: Callable[[], list], failure: str, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while True:
        found = fetch()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{failure} within {timeout:.0f}s")
        time.sleep(0.5)


@contextlib.contextmanager
def _stack_environment(home: Path) -> Iterator[None]:
    """The runner reads its state directory and ports from the environment; set them only
    around its calls, so the other tests of the session see the environment they expect."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OBSLAB_HOME", str(home))
        env.setenv("OBSLAB_PORT_OFFSET", str(PORT_OFFSET))
        yield


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    home = tmp_path_factory.mktemp("obslab-home")
    try:
        Profile(rate=LOAD_RATE).save(home / "load" / "profile.json")
        with _stack_environment(home):
            urls = native.up("test", load=True)
        yield LiveStack(home, urls)
    finally:
        with _stack_environment(home):
            native.down()


#: The live modules share one stack, so their order matters: deploys leave the stack inside
#: their attribution window for minutes, when any regression would rightly be blamed on them;
#: so the modules that deploy run last.
#: Restarting Prometheus leaves a gap in every window, so that module runs after all the rest.
MODULE_ORDER = (
    "test_lab",
    "test_dashboards",
    "test_analytics",
    "test_alerting",
    "test_faults",
    "test_deploy",
    "test_backends",
    "test_oncall",
    "test_tutorial",
    "test_edge",  # stops scoring's instances behind nginx: last
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("live") is None:
            return -1  # the other suites keep their place, before the live one
        name = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)

    items.sort(key=rank)
