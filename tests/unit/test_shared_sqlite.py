"""SQLite files that processes share, opened while a sibling is creating them."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from app.scoring import predictions
from app.scoring.predictions import PredictionStore
from obslab.history import DeployHistory
from obslab.oncall.store import PageStore


@contextmanager
def _sibling_writing(path: Path, release_after: float | None) -> Iterator[None]:
    """Hold a write lock on a fresh file, as an instance creating the table does.

    The sibling commits after ``release_after`` seconds, or never lets go if None.
    """
    sibling = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    sibling.execute("BEGIN IMMEDIATE")
    release = None
    if release_after is not None:
        release = threading.Timer(release_after, sibling.execute, ("COMMIT",))
        release.start()
    try:
        yield
    finally:
        if release is None:
            sibling.execute("ROLLBACK")
        else:
            release.join()
        sibling.close()


def test_an_instance_waits_for_a_sibling_that_holds_the_fresh_file(tmp_path: Path) -> None:
    # SQLite answers the switch to WAL with "database is locked" at once, without its
    # busy handler, so scoring instances starting together failed to boot.
    path = tmp_path / "predictions.db"
    with _sibling_writing(path, release_after=0.2):
        store = PredictionStore(path)

    store.record("p-1", "m2", "approve", 0.1)
    outcome = store.feedback("p-1", defaulted=False)

    assert outcome is not None and outcome.correct
    assert _journal_mode(path) == "wal"


@pytest.mark.parametrize(
    "open_file",
    [lambda path: DeployHistory(path).records(), PageStore],
    ids=["deploy-history", "oncall-pages"],
)
def test_the_labs_other_shared_files_wait_too(
    tmp_path: Path, open_file: Callable[[Path], object]
) -> None:
    path = tmp_path / "shared.db"
    with _sibling_writing(path, release_after=0.2):
        open_file(path)

    assert _journal_mode(path) == "wal"


def _journal_mode(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA journal_mode").fetchone()[0]


def test_a_sibling_that_never_lets_go_gives_sqlites_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(predictions, "_BUSY_TIMEOUT", 0.1)
    path = tmp_path / "predictions.db"
    with (
        _sibling_writing(path, release_after=None),
        pytest.raises(sqlite3.OperationalError, match="locked"),
    ):
        PredictionStore(path)
