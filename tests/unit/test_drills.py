"""Drills: seeding, grading, hiding the truth, and the scoreboard."""

from __future__ import annotations

import stat

import pytest

from obslab import drills, faults
from obslab.errors import ObslabError


def test_same_seed_same_drill_and_seeds_differ():
    assert drills.plan(42) == drills.plan(42)
    assert len({drills.plan(seed).fault for seed in range(50)}) > 3


def test_difficulty_limits_the_pool():
    for seed in range(20):
        assert faults.CATALOGUE[drills.plan(seed, "easy").fault].difficulty == "easy"


def test_schedule_is_seeded():
    assert drills.schedule(7, 5) == drills.schedule(7, 5)
    assert len(drills.schedule(7, 5)) == 5
    with pytest.raises(ObslabError):
        drills.schedule(7, 0)


def test_grading_names_fault_and_target():
    drill = drills.Drill(1, "slow-dependency", "features", 10.0)
    right = drills.grade(drill, 100.0, "slow-dependency", "features", now=160.0)
    assert right.right and right.seconds_to_diagnosis == 60.0
    assert right.explanation == faults.CATALOGUE["slow-dependency"].root_cause
    assert not drills.grade(drill, 100.0, "slow-dependency", "scoring", now=160.0).right
    assert not drills.grade(drill, 100.0, "cpu-hog", None, now=160.0).right


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))
    # The detached injector is not started: the tests inject (or not) themselves.
    monkeypatch.setattr("obslab.drills.subprocess.Popen", lambda *a, **k: None)
    return tmp_path


def concept_drift_seed() -> int:
    return next(s for s in range(1000) if drills.plan(s).fault == "concept-drift")


def test_truth_is_private_and_the_fault_hidden(home):
    seed = concept_drift_seed()
    drills.start(seed, None)
    truth = drills.drill_dir() / "truth.json"
    assert stat.S_IMODE(truth.stat().st_mode) == 0o600
    faults.inject("concept-drift", hidden=True)
    assert not any(entry["active"] for entry in faults.listing())
    with pytest.raises(ObslabError, match="already running"):
        drills.start(seed, None)


def test_wrong_then_right_answer_goes_to_the_scoreboard_and_ends_the_drill(home, monkeypatch):
    from loadgen.profile import Profile

    seed = concept_drift_seed()
    drills.start(seed, None)
    truth = drills._read_truth()
    monkeypatch.setattr("obslab.drills.time.time", lambda: truth["inject_at"] + 30)
    faults.inject("concept-drift", hidden=True)
    assert not drills.answer("data-drift", None, "ada").right
    graded = drills.answer("concept-drift", None, "ada")
    assert graded.right and graded.seconds_to_diagnosis == 30
    assert Profile.load(faults.profile_path()).name == "normal"
    assert [row["right"] for row in drills.scoreboard()] == [0, 1]
    with pytest.raises(ObslabError, match="no drill"):
        drills.reveal("ada")


def test_unknown_fault_name_is_a_typo_not_an_answer(home):
    drills.start(concept_drift_seed(), None)
    with pytest.raises(ObslabError, match="unknown fault"):
        drills.answer("concept-drfit", None, "ada")
    assert drills.scoreboard() == []
