"""SQLite files shared by processes that may open them at the same moment."""

from __future__ import annotations

import sqlite3
import time


def switch_to_wal(db: sqlite3.Connection, timeout: float) -> None:
    """Put the file in WAL mode (it stays there), waiting up to ``timeout`` for a writer.

    Processes often open a fresh file together. While one holds its write lock to
    create a table, SQLite refuses another's switch at once, without calling the
    busy handler, so the wait the connection's timeout promises happens here.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
