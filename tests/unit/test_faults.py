"""Fault state in a service (expiry, rates, workers) and the CLI's catalogue."""

from __future__ import annotations

import time

import pytest

from app.errors import RequestError
from app.faults import (
    SERVICE_FAULTS,
    FaultState,
    before_features_lookup,
    before_predict,
    burn_cpu,
)
from obslab import faults
from obslab.errors import ObslabError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_fault_expires_by_itself():
    clock = Clock()
    state = FaultState("scoring", clock=clock)
    state.inject("error-burst", {"rate": 1}, duration=30)
    assert state.armed and state.get("error-burst") is not None
    clock.now += 31
    assert state.get("error-burst") is None
    assert not state.armed


def test_error_burst_fails_at_its_rate():
    draws = iter([0.1, 0.9])
    state = FaultState("scoring", chance=lambda: next(draws))
    state.inject("error-burst", {"rate": 0.5})
    with pytest.raises(RequestError) as failed:
        before_predict(state)
    assert failed.value.status == 500
    before_predict(state)  # 0.9 is above the rate: this request passes


def test_slow_dependency_waits(monkeypatch):
    slept = []
    monkeypatch.setattr("app.faults.time.sleep", slept.append)
    state = FaultState("features")
    state.inject("slow-dependency", {"delay_ms": 1500})
    before_features_lookup(state)
    assert slept == [1.5]


def test_a_service_only_takes_its_own_faults():
    with pytest.raises(RequestError) as refused:
        FaultState("features").inject("memory-leak")
    assert refused.value.status == 404


def test_clear_ends_the_worker_of_a_background_fault(monkeypatch):
    state = FaultState("scoring")
    fault = state.inject("memory-leak", {"mb_per_second": 0.1})
    assert state.is_current(fault)
    state.clear()
    assert not state.is_current(fault) and not state.armed


def test_burn_cpu_spends_the_threads_own_cpu_time():
    before = time.thread_time()
    burn_cpu(0.02)
    assert time.thread_time() - before >= 0.02


def test_every_service_fault_is_in_the_catalogue_with_alerts():
    assert set(SERVICE_FAULTS) <= set(faults.CATALOGUE)
    for fault in faults.CATALOGUE.values():
        assert fault.alerts, fault.name
        assert fault.root_cause and fault.signals, fault.name


def test_catalogue_params_are_typed_like_their_defaults():
    fault = faults.get("data-drift")
    assert fault.resolve({"shift": "3", "feature": "age"}) == {"feature": "age", "shift": 3.0}
    with pytest.raises(ObslabError, match="no parameter 'speed'"):
        fault.resolve({"speed": "1"})
    with pytest.raises(ObslabError, match="not a number"):
        fault.resolve({"shift": "far"})


def test_listing_without_a_stack_shows_the_catalogue_inactive(tmp_path, monkeypatch):
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))
    entries = faults.listing()
    assert [entry["name"] for entry in entries] == list(faults.CATALOGUE)
    assert all(not entry["active"] for entry in entries)
    assert entries[0]["params"] == {"delay_ms": 2500, "rate": 1.0}


def test_load_fault_writes_the_profile_and_clear_restores_it(tmp_path, monkeypatch):
    from loadgen.profile import Profile

    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))
    Profile(rate=7.0).save(faults.profile_path())
    faults.inject("missing-features", {"rate": "0.3"})
    assert Profile.load(faults.profile_path()) == Profile("missing", "employment_years", 0.3, 7.0)
    assert {e["name"] for e in faults.listing() if e["active"]} == {"missing-features"}
    faults.clear("missing-features")
    assert Profile.load(faults.profile_path()) == Profile(rate=7.0)
    assert not any(e["active"] for e in faults.listing())


def test_a_load_fault_names_its_traffic_profile():
    from loadgen.profile import Profile

    params = faults.get("unit-change").resolve({"factor": "0.01"})
    assert faults.traffic("unit-change", params, rate=5.0) == Profile(
        "unit-change", "income", 0.01, 5.0
    )
    shifted = faults.get("data-drift").resolve({"feature": "age"})
    assert faults.traffic("data-drift", shifted, rate=5.0) == Profile("drift", "age", 2.0, 5.0)


def test_a_traffic_profile_the_load_refuses_names_the_fault():
    params = faults.get("unit-change").resolve({"factor": "-1"})
    with pytest.raises(ObslabError, match=r"fault unit-change: .*FACTOR must be positive"):
        faults.traffic("unit-change", params, rate=5.0)


def test_hidden_load_fault_is_not_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))
    faults.inject("concept-drift", hidden=True)
    assert not any(e["active"] for e in faults.listing())


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600)])
def test_durations(text, seconds):
    assert faults.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "0", "-5m", "2d"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ObslabError):
        faults.parse_duration(text)
