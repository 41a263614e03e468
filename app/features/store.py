"""The customer-history store behind the features service: SQLite, seeded once."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from pathlib import Path

from app.model.data import HISTORY_FEATURES, customer_history

_COLUMNS = ", ".join(HISTORY_FEATURES)


def seed(path: Path) -> None:
    """Create the customer table at ``path`` unless it exists; atomic, so racing starts agree."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    table = customer_history()
    with sqlite3.connect(tmp) as db:
        db.execute(
            f"CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, "
            f"{', '.join(f'{c} REAL' for c in HISTORY_FEATURES)})"
        )
        rows = zip(*(table[c].tolist() for c in ("customer_id", *HISTORY_FEATURES)), strict=True)
        db.executemany(
            f"INSERT INTO customers VALUES (?, {', '.join('?' * len(HISTORY_FEATURES))})", rows
        )
    os.replace(tmp, path)


class CustomerStore:
    """Read-only lookups, one connection per thread (gunicorn gthread workers)."""

    def __init__(self, path: Path) -> None:
        self._uri = f"file:{path}?mode=ro"
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
        return db

    def features(self, customer_id: int) -> dict[str, float] | None:
        # SQLite integers are 64-bit: a larger id cannot be a customer (and cannot be bound).
        if not 0 <= customer_id < 2**63:
            return None
        row = (
            self._connection()
            .execute(f"SELECT {_COLUMNS} FROM customers WHERE customer_id = ?", (customer_id,))
            .fetchone()
        )
        return None if row is None else dict(zip(HISTORY_FEATURES, row, strict=True))

    def ready(self) -> bool:
        try:
            self._connection().execute("SELECT 1 FROM customers LIMIT 1").fetchone()
        except sqlite3.Error:
            return False
        return True
