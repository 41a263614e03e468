"""Pages kept in SQLite, so a notification acknowledged to Alertmanager survives a crash.

WAL with ``synchronous=FULL`` makes every commit durable before the webhook answers 200.
Each operation opens its own connection: gunicorn's gthread worker serves requests from
several threads, and a connection per call needs no locking of ours; SQLite's own lock
(with a busy timeout) serialises the writers.

A page is a ``page`` or a ``ticket`` by its ``severity`` label, kept in a column of its own so
the two lists are read apart. The Watchdog's last arrival lives in the same file, so the
dead-man's switch keeps its memory across restarts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import orjson

from app.sqlite import switch_to_wal
from obslab.oncall.payload import Alert, format_timestamp

Kind = Literal["page", "ticket"]
KINDS: tuple[Kind, ...] = ("page", "ticket")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    id            INTEGER PRIMARY KEY,
    alertname     TEXT NOT NULL,
    status        TEXT NOT NULL,
    severity      TEXT NOT NULL DEFAULT '',  -- its label: page, ticket or none
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
CREATE TABLE IF NOT EXISTS watchdog (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    last_seen_at TEXT NOT NULL
);
"""

# Added after the first release: a database written before gains it on open.
_SEVERITY_COLUMN = """
ALTER TABLE pages ADD COLUMN severity TEXT NOT NULL DEFAULT '';
UPDATE pages SET severity = coalesce(json_extract(labels, '$.severity'), '');
"""
_LATER_INDEXES = """
CREATE INDEX IF NOT EXISTS pages_by_severity ON pages (severity);
CREATE INDEX IF NOT EXISTS pages_by_episode ON pages (fingerprint, starts_at);
"""

# ON CONFLICT DO NOTHING rather than INSERT OR IGNORE: it ignores only the redelivery, and
# would still fail loudly on any other constraint.
_INSERT = """
INSERT INTO pages (alertname, status, severity, labels, annotations, starts_at, ends_at,
                   generator_url, fingerprint, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (fingerprint, status, starts_at, ends_at) DO NOTHING
"""

# ``ended``: a resolve of the same episode (fingerprint and start) is stored too.
_SELECT = """
SELECT status, labels, annotations, starts_at, ends_at, generator_url, fingerprint, received_at,
       status = 'resolved' OR EXISTS (
           SELECT 1 FROM pages AS later
           WHERE later.fingerprint = pages.fingerprint AND later.starts_at = pages.starts_at
             AND later.status = 'resolved'
       )
FROM pages
"""


def kind_of(severity: str | None) -> Kind:
    """``page`` for ``severity="page"``; anything else waits in the queue, as Alertmanager
    routes an alert without a severity to the ticket receiver."""
    return "page" if severity == "page" else "ticket"


@dataclass(frozen=True, slots=True)
class Page(Alert):
    """An alert notification as the on-call engineer received it; ``ended`` once a resolve
    of its episode is stored (a resolved notification is ended itself)."""

    received_at: str
    ended: bool = False

    @property
    def kind(self) -> Kind:
        return kind_of(self.labels.get("severity"))

    def as_dict(self) -> dict[str, object]:
        fields = asdict(self)
        del fields["ended"]
        return {"alertname": self.alertname, "kind": self.kind, **fields}


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
            columns = {row[1] for row in connection.execute("PRAGMA table_info(pages)")}
            if "severity" not in columns:
                connection.executescript(f"BEGIN IMMEDIATE; {_SEVERITY_COLUMN} COMMIT;")
            connection.executescript(_LATER_INDEXES)

    def add(self, alerts: Sequence[Alert], *, now: datetime | None = None) -> list[Alert]:
        """Store the alerts in one transaction; return those not stored before."""
        received_at = format_timestamp(now or datetime.now(UTC))
        with self._transaction() as connection:
            return [alert for alert in alerts if _insert(connection, alert, received_at)]

    def pages(
        self,
        *,
        alertname: str | None = None,
        status: str | None = None,
        kind: Kind | None = None,
    ) -> list[Page]:
        """Stored pages, newest first, optionally only one alert name, status and/or kind."""
        clauses, parameters = [], []
        if alertname is not None:
            clauses.append("alertname = ?")
            parameters.append(alertname)
        if status is not None:
            clauses.append("status = ?")
            parameters.append(status)
        if kind is not None:
            clauses.append("severity = 'page'" if kind == "page" else "severity != 'page'")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as connection:
            rows = connection.execute(f"{_SELECT} {where} ORDER BY id DESC", parameters)
            return [_page(row) for row in rows]

    def open_episodes(self, alertname: str, fingerprint: str) -> list[Page]:
        """The firing pages of ``fingerprint`` whose episode has no resolve stored."""
        return [
            page
            for page in self.pages(alertname=alertname, status="firing")
            if page.fingerprint == fingerprint and not page.ended
        ]

    def watchdog_last_seen(self) -> datetime | None:
        """When the Watchdog last arrived, if it ever did."""
        with self._connect() as connection:
            row = connection.execute("SELECT last_seen_at FROM watchdog").fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    def watchdog_seen(self, moment: datetime) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO watchdog (id, last_seen_at) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                (format_timestamp(moment),),
            )

    def check(self) -> None:
        """Raise ``sqlite3.Error`` unless the table can be read."""
        with self._connect() as connection:
            connection.execute("SELECT 1 FROM pages LIMIT 1").fetchall()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as connection, connection:
            connection.execute("BEGIN IMMEDIATE")
            yield connection

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
            alert.labels.get("severity", ""),
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


def _page(row: tuple) -> Page:
    status, labels, annotations, starts_at, ends_at, generator_url, fingerprint, received, ended = (
        row
    )
    return Page(
        status=status,
        labels=orjson.loads(labels),
        annotations=orjson.loads(annotations),
        starts_at=starts_at,
        ends_at=ends_at or None,
        generator_url=generator_url,
        fingerprint=fingerprint,
        received_at=received,
        ended=bool(ended),
    )
