"""Seeded drills: a hidden fault at a random moment, a student's diagnosis, and a grade.

The seed decides everything (the fault, its moment), so the same seed gives the same drill
in every class. The truth lives in ``<state>/drill/truth.json`` (mode 0600), read only by the
grader; the fault is injected ``hidden``, so the services neither log it nor list it, and the
record behind ``obslab fault list`` never holds it. Results go to a SQLite scoreboard.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.settings import state_dir
from app.sqlite import switch_to_wal
from obslab import faults
from obslab.errors import ObslabError

DIFFICULTIES = ("easy", "medium", "hard")
#: A drill's fault arrives this many seconds after ``drill start``, drawn from the seed.
MIN_DELAY, MAX_DELAY = 5.0, 90.0


@dataclass(frozen=True)
class Drill:
    seed: int
    fault: str
    target: str
    delay_seconds: float


@dataclass(frozen=True)
class Grade:
    right: bool
    seconds_to_diagnosis: float
    truth: str
    target: str
    explanation: str


def plan(seed: int, difficulty: str | None = None) -> Drill:
    """The drill of ``seed``: the same seed (and difficulty) always gives the same drill."""
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise ObslabError(f"difficulty must be one of {', '.join(DIFFICULTIES)}")
    rng = random.Random(seed)
    pool = sorted(
        name
        for name, fault in faults.CATALOGUE.items()
        if difficulty is None or fault.difficulty == difficulty
    )
    name = rng.choice(pool)
    fault = faults.CATALOGUE[name]
    delay = round(rng.uniform(MIN_DELAY, MAX_DELAY), 1)
    return Drill(seed, name, fault.target(fault.params), delay)


def schedule(seed: int, count: int, difficulty: str | None = None) -> list[Drill]:
    """An instructor's seeded series of ``count`` drills."""
    if count < 1:
        raise ObslabError("--count must be at least 1")
    rng = random.Random(seed)
    return [plan(rng.randrange(2**31), difficulty) for _ in range(count)]


def grade(drill: Drill, injected_at: float, answer: str, target: str | None, now: float) -> Grade:
    """Right when the fault is named (and the target, when given, is the fault's)."""
    fault = faults.CATALOGUE[drill.fault]
    right = answer == drill.fault and (target is None or target == drill.target)
    return Grade(
        right=right,
        seconds_to_diagnosis=max(0.0, now - injected_at),
        truth=drill.fault,
        target=drill.target,
        explanation=fault.root_cause,
    )


def drill_dir() -> Path:
    return state_dir() / "drill"


def start(seed: int | None, difficulty: str | None) -> Drill:
    """Plan the drill, keep its truth, and inject its fault hidden after its delay."""
    truth = drill_dir() / "truth.json"
    if truth.exists():
        raise ObslabError("a drill is already running; answer it or `obslab drill reveal`")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    drill = plan(seed, difficulty)
    _write_truth({**asdict(drill), "inject_at": time.time() + drill.delay_seconds})
    # Detached, so the fault still arrives after this command returns.
    subprocess.Popen(
        [sys.executable, "-m", "obslab.drills"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return drill


def answer(fault: str, target: str | None, student: str) -> Grade:
    truth = _read_truth()
    drill = Drill(**{key: truth[key] for key in ("seed", "fault", "target", "delay_seconds")})
    faults.get(fault)  # an unknown name is a typo, not a wrong answer
    result = grade(drill, truth["inject_at"], fault, target, time.time())
    _score(drill, student, fault, target, result)
    if result.right:
        _end(truth)
    return result


def reveal(student: str) -> dict[str, Any]:
    """End the running drill and return its truth; recorded as given up."""
    truth = _read_truth()
    drill = Drill(**{key: truth[key] for key in ("seed", "fault", "target", "delay_seconds")})
    _score(drill, student, None, None, None)
    _end(truth)
    return truth | {"root_cause": faults.CATALOGUE[drill.fault].root_cause}


def scoreboard() -> list[dict[str, Any]]:
    db = _scoreboard()
    rows = db.execute(
        "SELECT student, seed, fault, answer, target, right, seconds, at FROM results ORDER BY at"
    ).fetchall()
    db.close()
    keys = ("student", "seed", "fault", "answer", "target", "right", "seconds", "at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def inject_when_due() -> None:
    """The detached half of ``start``: wait for the drill's moment, then inject, hidden."""
    truth = _read_truth()
    time.sleep(max(0.0, truth["inject_at"] - time.time()))
    current = _read_truth_or_none()
    if current is None or current["seed"] != truth["seed"]:
        return  # revealed before its moment
    faults.inject(truth["fault"], hidden=True)


def _end(truth: dict[str, Any]) -> None:
    (drill_dir() / "truth.json").unlink(missing_ok=True)
    if time.time() < truth["inject_at"]:
        return  # the detached injector sees the truth gone and stands down
    fault = faults.get(truth["fault"])
    if fault.source == "service":
        faults.clear(fault.name)
    else:
        faults.undo_hidden(fault.name)


def _write_truth(truth: dict[str, Any]) -> None:
    path = drill_dir() / "truth.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(truth, file)
    os.replace(partial, path)


def _read_truth_or_none() -> dict[str, Any] | None:
    try:
        return json.loads((drill_dir() / "truth.json").read_text())
    except FileNotFoundError:
        return None


def _read_truth() -> dict[str, Any]:
    truth = _read_truth_or_none()
    if truth is None:
        raise ObslabError("no drill is running; start one with `obslab drill start`")
    return truth


def _scoreboard() -> sqlite3.Connection:
    path = drill_dir() / "scoreboard.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=10)
    # WAL: a class answering at once writes without "database is locked".
    switch_to_wal(db, timeout=10)
    db.execute(
        "CREATE TABLE IF NOT EXISTS results (student TEXT NOT NULL, seed INTEGER NOT NULL, "
        "fault TEXT NOT NULL, answer TEXT, target TEXT, right INTEGER, seconds REAL, "
        "at REAL NOT NULL)"
    )
    return db


def _score(
    drill: Drill, student: str, answer: str | None, target: str | None, result: Grade | None
) -> None:
    db = _scoreboard()
    with db:
        db.execute(
            "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                student,
                drill.seed,
                drill.fault,
                answer,
                target,
                None if result is None else int(result.right),
                None if result is None else result.seconds_to_diagnosis,
                time.time(),
            ),
        )
    db.close()


if __name__ == "__main__":
    inject_when_due()
