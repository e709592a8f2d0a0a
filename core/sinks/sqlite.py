"""The default sink: an embedded SQLite file (WAL, idempotent on event id).

The table itself (schema, connection, INSERT) is `sqlite_table`; this module is the sink that
writes batches to it and keeps its write-ahead log bounded.
"""

from __future__ import annotations

import logging
import operator
import os
import sqlite3
import time
from typing import Any

from tracewire.model.score import SCORE_SCHEMA, is_score
from tracewire.sinks.base import BaseSink, Batch, WriteResult
from tracewire.sinks.retention import prune_to_size, used_bytes
from tracewire.sinks.sqlite_table import (
    EVENT_COLUMNS,
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
# The size cap is looked at every so often, not per batch: after this many seconds, or after a
# sixteenth of the cap has been written, whichever comes first. It then prunes down to 90% of the cap,
# so that it prunes in rounds rather than a trace at every check.
CAP_CHECK_INTERVAL_S = 5.0
CAP_TARGET = 0.9

log = logging.getLogger("tracewire")
_columns = operator.itemgetter(*EVENT_COLUMNS)


class SQLiteSink(BaseSink):
    name = "sqlite"

    def __init__(self, path: str, max_bytes: int | None = None) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._wal = path + "-wal"
        self._next_forced_checkpoint = 0.0
        self.max_bytes = max_bytes
        self._written_since_check = 0
        self._next_cap_check = 0.0
        self.pruned_events = 0
        self.pruned_traces = 0

    def write(self, batch: Batch) -> WriteResult:
        rows: list[tuple[Any, ...]] = []
        scores: list[tuple[Any, ...]] = []  # their own table, upserted by id
        row = rows.append
        for e, line in zip(batch.events, batch.lines, strict=True):
            if e.get("schema") == SCORE_SCHEMA and is_score(e):  # one lookup for the common event
                scores.append(score_row(e, line))
                continue
            try:
                row(_columns(e) + (line,))  # `event_row` in one C call: an envelope has every column
            except KeyError:  # a user's processor took one out
                row(event_row(e, line))
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
        if self.max_bytes is not None:
            self._written_since_check += sum(map(len, batch.lines))
            self._bound_size(self._conn, self.max_bytes)
        return WriteResult.success()

    def _bound_size(self, conn: sqlite3.Connection, cap: int) -> None:
        """Under `max_store_bytes`: past the cap, delete the oldest whole traces down to CAP_TARGET of it."""
        now = time.monotonic()
        if now < self._next_cap_check and self._written_since_check < cap // 16:
            return
        self._next_cap_check = now + CAP_CHECK_INTERVAL_S
        self._written_since_check = 0
        try:
            if used_bytes(conn) <= cap:
                return
            pruned = prune_to_size(conn, int(cap * CAP_TARGET))
        except sqlite3.Error as exc:  # busy: the next check tries again; the batch itself is written
            log.debug("tracewire: store size check failed: %s", exc)
            return
        if pruned.events and not self.pruned_events:
            log.warning("tracewire: the store %s reached max_store_bytes=%d; deleting its oldest traces "
                        "(counted in stats()[\"store\"])", self.path, cap)
        self.pruned_events += pruned.events
        self.pruned_traces += pruned.traces

    def store_stats(self) -> dict[str, Any]:
        """What the size cap deleted. Pruned events were written, so they are not
        part of `emitted == written + dropped + pending`. Nothing without a cap."""
        if self.max_bytes is None:
            return {}
        return {"max_store_bytes": self.max_bytes, "pruned_events": self.pruned_events,
                "pruned_traces": self.pruned_traces}

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
    return SQLiteSink(config.db, config.max_store_bytes)
