"""Pages kept in SQLite, so a notification acknowledged to Alertmanager survives a crash.

WAL with ``synchronous=FULL`` makes every commit durable before the webhook answers 200.
Each operation opens its own connection: gunicorn's gthread worker serves requests from
several threads, and a connection per call needs no locking of ours; SQLite's own lock
(with a busy timeout) serialises the writers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from app.sqlite import switch_to_wal
from obslab.oncall.payload import Alert, format_timestamp

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    id            INTEGER PRIMARY KEY,
    alertname     TEXT NOT NULL,
    status        TEXT NOT NULL,
    labels        TEXT NOT NULL,  -- JSON object
    annotations   TEXT NOT NULL,  -- JSON object
    starts_at     TEXT NOT NULL,
    ends_at       TEXT NOT NULL,  -- '' while firing: NULLs would never collide in UNIQUE
    generator_url TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    UNIQUE (fingerprint, status, starts_at, ends_at)
);
CREATE INDEX IF NOT EXISTS pages_by_alertname ON pages (alertname);
"""

# ON CONFLICT DO NOTHING rather than INSERT OR IGNORE: it ignores only the redelivery, and
# would still fail loudly on any other constraint.
_INSERT = """
INSERT INTO pages (alertname, status, labels, annotations, starts_at, ends_at,
                   generator_url, fingerprint, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (fingerprint, status, starts_at, ends_at) DO NOTHING
"""

_SELECT = """
SELECT status, labels, annotations, starts_at, ends_at, generator_url, fingerprint, received_at
FROM pages
"""


@dataclass(frozen=True, slots=True)
class Page(Alert):
    """An alert notification as the on-call engineer received it."""

    received_at: str

    def as_dict(self) -> dict[str, object]:
        return {"alertname": self.alertname, **asdict(self)}


class PageStore:
    """The ``pages`` table in one SQLite file; creates the file and its folder if needed."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            # The journal mode is a property of the file, so setting it once is enough.
            switch_to_wal(connection, self._busy_timeout)
            connection.executescript(_SCHEMA)

    def add(self, alerts: Sequence[Alert]) -> list[Alert]:
        """Store the alerts in one transaction; return those not stored before."""
        received_at = format_timestamp(datetime.now(UTC))
        with self._connect() as connection, connection:
            connection.execute("BEGIN IMMEDIATE")
            return [alert for alert in alerts if _insert(connection, alert, received_at)]

    def pages(self, *, alertname: str | None = None, status: str | None = None) -> list[Page]:
        """Stored pages, newest first, optionally only one alert name and/or status."""
        clauses, parameters = [], []
        if alertname is not None:
            clauses.append("alertname = ?")
            parameters.append(alertname)
        if status is not None:
            clauses.append("status = ?")
            parameters.append(status)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as connection:
            rows = connection.execute(f"{_SELECT} {where} ORDER BY id DESC", parameters)
            return [_page(row) for row in rows]

    def check(self) -> None:
        """Raise ``sqlite3.Error`` unless the table can be read."""
        with self._connect() as connection:
            connection.execute("SELECT 1 FROM pages LIMIT 1").fetchall()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: transactions are begun explicitly, where they are meant.
        connection = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        with closing(connection):
            connection.execute("PRAGMA synchronous = FULL")
            yield connection


def _insert(connection: sqlite3.Connection, alert: Alert, received_at: str) -> bool:
    cursor = connection.execute(
        _INSERT,
        (
            alert.alertname,
            alert.status,
            orjson.dumps(alert.labels, option=orjson.OPT_SORT_KEYS).decode(),
            orjson.dumps(alert.annotations, option=orjson.OPT_SORT_KEYS).decode(),
            alert.starts_at,
            alert.ends_at or "",
            alert.generator_url,
            alert.fingerprint,
            received_at,
        ),
    )
    return cursor.rowcount == 1


def _page(row: tuple[str, ...]) -> Page:
    status, labels, annotations, starts_at, ends_at, generator_url, fingerprint, received = row
    return Page(
        status=status,
        labels=orjson.loads(labels),
        annotations=orjson.loads(annotations),
        starts_at=starts_at,
        ends_at=ends_at or None,
        generator_url=generator_url,
        fingerprint=fingerprint,
        received_at=received,
    )
