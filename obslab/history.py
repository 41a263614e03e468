"""The durable deploy history: every deploy, promote and rollback of the native stack's scoring.

One SQLite file under the state directory, in WAL mode with ``synchronous=FULL``: a deploy that
``obslab deploy`` reported is on disk even if the machine loses power right after, and
``obslab deployments`` can read while a deploy writes. The history outlives ``obslab down``:
it is the record of what ran, not of what runs.
"""

from __future__ import annotations

import getpass
import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

from app.settings import state_dir
from app.sqlite import switch_to_wal

Kind = Literal["rolling", "canary", "promote", "rollback"]
KINDS: tuple[str, ...] = get_args(Kind)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deploys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version TEXT NOT NULL,
    previous_version TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    model_version TEXT NOT NULL,
    time REAL NOT NULL,
    who TEXT NOT NULL,
    kind TEXT NOT NULL,
    expected_score_shift INTEGER NOT NULL DEFAULT 0
)
"""
_COLUMNS = (
    "version, previous_version, commit_sha, model_version, time, who, kind, expected_score_shift"
)


@dataclass(frozen=True)
class DeployRecord:
    """One change of the running release; ``time`` is unix seconds. ``expected_score_shift``
    is the release's own declaration, so a rollback to it restores it as it ran."""

    version: str
    previous_version: str
    commit: str
    model_version: str
    time: float
    who: str
    kind: Kind
    expected_score_shift: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def history_file(root: Path | None = None) -> Path:
    """Where the history of the state directory ``root`` (default ``state_dir()``) lives."""
    return (root or state_dir()) / "deploys.db"


def current_user() -> str:
    """Who is deploying: ``$USER`` (or ``$LOGNAME``), else the account name."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        # A container may run as a uid with no passwd entry and no USER set.
        return "unknown"


class DeployHistory:
    """The history kept in ``path``; the file and its table are created on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, entry: DeployRecord) -> None:
        with closing(self._connect()) as db, db:
            db.execute(
                f"INSERT INTO deploys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.version,
                    entry.previous_version,
                    entry.commit,
                    entry.model_version,
                    entry.time,
                    entry.who,
                    entry.kind,
                    int(entry.expected_score_shift),
                ),
            )

    def records(self) -> list[DeployRecord]:
        """Every record, oldest first."""
        if not self.path.exists():
            return []
        with closing(self._connect()) as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM deploys ORDER BY id").fetchall()
        return [DeployRecord(*row[:-1], expected_score_shift=bool(row[-1])) for row in rows]

    def latest(
        self, version: str, *, other_than: tuple[str, str] | None = None
    ) -> DeployRecord | None:
        """The newest record that put ``version`` in service, if any; with ``other_than``
        (a commit and a model version), the newest that ran ``version`` some other way: what a
        model-only or commit-only deploy of the same version replaced."""
        found = [
            entry
            for entry in self.records()
            if entry.version == version and (entry.commit, entry.model_version) != other_than
        ]
        return found[-1] if found else None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        # WAL is a property of the file; synchronous is one of the connection.
        switch_to_wal(db, timeout=10)
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        _add_expected_score_shift(db)
        return db


def _add_expected_score_shift(db: sqlite3.Connection) -> None:
    """Give a history written before the column existed the column, 0 in every old row: those
    deploys could not declare a shift. Checked again under the write lock, as another process
    may be adding it too."""

    def missing() -> bool:
        columns = {row[1] for row in db.execute("PRAGMA table_info(deploys)")}
        return "expected_score_shift" not in columns

    if not missing():
        return
    with db:
        db.execute("BEGIN IMMEDIATE")
        if missing():
            db.execute(
                "ALTER TABLE deploys ADD COLUMN expected_score_shift INTEGER NOT NULL DEFAULT 0"
            )


def deploy_entries() -> list[dict[str, object]]:
    """The history of the current state directory as JSON objects, oldest first."""
    return [entry.to_json() for entry in DeployHistory(history_file()).records()]
