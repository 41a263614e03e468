"""Predictions kept for delayed feedback, shared by every scoring instance.

One SQLite file in WAL mode: instances behind the load balancer write their own
predictions, and feedback for a prediction may arrive at any instance.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.sqlite import switch_to_wal

_BUSY_TIMEOUT = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT PRIMARY KEY,
    model_version TEXT NOT NULL,
    decision TEXT NOT NULL,
    probability REAL NOT NULL,
    created_at REAL NOT NULL,
    defaulted INTEGER
)
"""


@dataclass(frozen=True)
class Outcome:
    """A prediction settled by its real outcome: what the model said, and when."""

    model_version: str
    correct: bool
    decision: str
    probability: float
    predicted_at: float


class FeedbackConflict(Exception):
    """Feedback for this prediction was already received."""


class PredictionStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._local = threading.local()
        db = self._connection()
        switch_to_wal(db, _BUSY_TIMEOUT)
        with db:
            db.execute(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT, check_same_thread=False)
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def record(self, prediction_id: str, model_version: str, decision: str, p: float) -> None:
        with self._connection() as db:
            db.execute(
                "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, NULL)",
                (prediction_id, model_version, decision, p, time.time()),
            )

    def feedback(self, prediction_id: str, defaulted: bool) -> Outcome | None:
        """Store the real outcome once; None when the prediction is unknown."""
        with self._connection() as db:
            row = db.execute(
                "UPDATE predictions SET defaulted = ? "
                "WHERE prediction_id = ? AND defaulted IS NULL "
                "RETURNING model_version, decision, probability, created_at",
                (int(defaulted), prediction_id),
            ).fetchone()
            if row is None:
                known = db.execute(
                    "SELECT 1 FROM predictions WHERE prediction_id = ?", (prediction_id,)
                ).fetchone()
                if known:
                    raise FeedbackConflict(prediction_id)
                return None
        model_version, decision, probability, created_at = row
        return Outcome(
            model_version, (decision == "decline") == defaulted, decision, probability, created_at
        )

    def ready(self) -> bool:
        try:
            self._connection().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True
