"""The default sink: an embedded SQLite file (WAL, idempotent on event id).

The table itself (schema, connection, INSERT) is `sqlite_table`; this module is the sink that
writes batches to it and keeps its write-ahead log bounded.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from tracewire.model.score import is_score
from tracewire.sinks.base import BaseSink, Batch, WriteResult
from tracewire.sinks.sqlite_table import (
    INSERT_HEAD,
    WAL_FORCE_CHECKPOINT_BYTES,
    connect,
    event_row,
    insert_rows,
    score_row,
    upsert_scores,
)

_FORCED_CHECKPOINT_WAIT_MS = 2000  # how long the forced checkpoint waits for readers to move on
_FORCED_CHECKPOINT_RETRY_S = 0.25


class SQLiteSink(BaseSink):
    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._wal = path + "-wal"
        self._next_forced_checkpoint = 0.0

    def write(self, batch: Batch) -> WriteResult:
        pairs = list(zip(batch.events, batch.lines, strict=True))
        scores = [score_row(e, line) for e, line in pairs if is_score(e)]  # their own table, upserted by id
        if scores:
            pairs = [(e, line) for e, line in pairs if not is_score(e)]
        rows = [event_row(e, line) for e, line in pairs]
        try:
            if self._conn is None:
                self._conn = connect(self.path)
            with self._conn:  # one transaction per batch
                self._conn.execute("BEGIN")
                insert_rows(self._conn, INSERT_HEAD, rows)
                upsert_scores(self._conn, scores)
        except sqlite3.Error as exc:
            self._conn = None
            return WriteResult.retry_later(f"sqlite:{type(exc).__name__}")
        self._bound_wal(self._conn)
        return WriteResult.success()

    def _bound_wal(self, conn: sqlite3.Connection) -> None:
        """Keep the -wal file near the autocheckpoint size however busy the readers are: past
        WAL_FORCE_CHECKPOINT_BYTES, checkpoint in TRUNCATE mode, which waits (briefly) for readers
        to move to the newest snapshot, then starts the log over from an empty file."""
        try:
            if os.stat(self._wal).st_size <= WAL_FORCE_CHECKPOINT_BYTES:
                return
        except OSError:
            return
        now = time.monotonic()
        if now < self._next_forced_checkpoint:
            return
        try:
            conn.execute(f"PRAGMA busy_timeout={_FORCED_CHECKPOINT_WAIT_MS}")
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            conn.execute("PRAGMA busy_timeout=10000")
        except sqlite3.Error:
            busy = 1
        if busy:  # a reader kept its snapshot the whole time: writing goes on, and we try again soon
            self._next_forced_checkpoint = now + _FORCED_CHECKPOINT_RETRY_S

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def after_fork(self) -> None:
        self._conn = None  # the parent's connection; never use it in the child


def from_config(config: Any) -> SQLiteSink:
    return SQLiteSink(config.db)
