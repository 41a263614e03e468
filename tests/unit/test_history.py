"""The deploy history: durable records in SQLite, read back in order."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from obslab.history import DeployHistory, DeployRecord, current_user, deploy_entries, history_file


def _record(version: str, previous: str = "", kind: str = "rolling") -> DeployRecord:
    commit = f"c0ffee{version[-1]}"
    return DeployRecord(version, previous, commit, "m2", 1_700_000_000.5, "ada", kind)


def test_records_come_back_oldest_first_from_a_new_reader(tmp_path: Path) -> None:
    path = tmp_path / "deploys.db"
    written = [_record("1.1.0", "1.0.0"), _record("1.2.0", "1.1.0"), _record("1.1.0", "1.2.0")]
    for entry in written:
        DeployHistory(path).record(entry)

    assert DeployHistory(path).records() == written


def test_a_declared_shift_is_recorded_with_its_deploy(tmp_path: Path) -> None:
    path = tmp_path / "deploys.db"
    declared = DeployRecord(
        "1.4.0", "1.1.0", "c0ffee4", "m3", 1_700_000_000.5, "ada", "rolling", True
    )
    DeployHistory(path).record(declared)
    DeployHistory(path).record(_record("1.1.0", "1.4.0", kind="rollback"))

    assert [r.expected_score_shift for r in DeployHistory(path).records()] == [True, False]
    assert DeployHistory(path).latest("1.4.0") == declared


def test_a_history_from_before_declared_shifts_reads_as_none_declared(tmp_path: Path) -> None:
    path = tmp_path / "deploys.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE deploys (id INTEGER PRIMARY KEY AUTOINCREMENT, version TEXT NOT NULL, "
            "previous_version TEXT NOT NULL, commit_sha TEXT NOT NULL, "
            "model_version TEXT NOT NULL, time REAL NOT NULL, who TEXT NOT NULL, "
            "kind TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO deploys (version, previous_version, commit_sha, model_version, time, "
            "who, kind) VALUES ('1.1.0', '1.0.0', 'c0ffee0', 'm2', 1700000000.5, 'ada', "
            "'rolling')"
        )
    history = DeployHistory(path)
    history.record(_record("1.2.0", "1.1.0"))

    assert history.records() == [_record("1.1.0", "1.0.0"), _record("1.2.0", "1.1.0")]


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deploys.db"
    DeployHistory(path).record(_record("1.1.0"))

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_latest_is_the_newest_record_of_a_version(tmp_path: Path) -> None:
    history = DeployHistory(tmp_path / "deploys.db")
    history.record(_record("1.1.0", "1.0.0"))
    history.record(_record("1.2.0", "1.1.0"))
    history.record(_record("1.1.0", "1.2.0", kind="rollback"))

    assert history.latest("1.1.0") == _record("1.1.0", "1.2.0", kind="rollback")
    assert history.latest("1.4.0") is None


def test_latest_other_than_finds_what_a_model_only_deploy_replaced(tmp_path: Path) -> None:
    history = DeployHistory(tmp_path / "deploys.db")
    before = DeployRecord("1.1.0", "1.0.0", "4f2a9c1", "m2", 1_700_000_000.0, "ada", "rolling")
    model_only = DeployRecord("1.1.0", "1.1.0", "4f2a9c1", "m3", 1_700_000_600.0, "ada", "rolling")
    history.record(before)
    history.record(model_only)

    assert history.latest("1.1.0") == model_only
    assert history.latest("1.1.0", other_than=("4f2a9c1", "m3")) == before
    assert history.latest("1.1.0", other_than=("4f2a9c1", "m2")) == model_only


def test_reading_a_missing_history_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "deploys.db"

    assert DeployHistory(path).records() == []
    assert not path.exists()


def test_a_record_has_a_known_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        _record("1.1.0", kind="hotfix")


def test_who_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("USER", "grace")

    assert current_user() == "grace"


def test_entries_are_read_from_the_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))
    DeployHistory(history_file()).record(_record("1.1.0", "1.0.0"))

    assert history_file() == tmp_path / "deploys.db"
    assert deploy_entries() == [
        {
            "version": "1.1.0",
            "previous_version": "1.0.0",
            "commit": "c0ffee0",
            "model_version": "m2",
            "time": 1_700_000_000.5,
            "who": "ada",
            "kind": "rolling",
            "expected_score_shift": False,
        }
    ]
