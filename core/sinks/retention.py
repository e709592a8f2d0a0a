"""Retention of the local SQLite store: deleting whole traces, with their events and scores, in short
transactions. `tracewire prune` deletes the traces last written to before a cutoff; the `sqlite` sink,
under `max_store_bytes`, the oldest ones until the file's used pages fit again.

A trace goes whole or not at all: its newest event decides, so a trace still being written is never cut
in half. Read-model rows (tracewire.read.index) are above this layer: a caller that can reach them passes
`forget`, run in each batch's transaction; without it (the sink), a store that has a read model gets the
deleted trace ids in PRUNED_TABLE, for the read model to forget when it next catches up.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TRACES_PER_BATCH = 200  # traces per write transaction: a concurrent writer waits for one batch at most
OLDEST_EVENTS_SCANNED = 4000  # events, oldest first, whose traces are the candidates of one cap round

PRUNED_TABLE = "pruned_traces"
Forget = Callable[[sqlite3.Connection, Sequence[str]], None]


@dataclass
class Pruned:
    """What a prune deleted (or, dry, would delete); `bytes_freed` counts pages now free inside the file,
    `partitions` the day partitions a collector's PostgreSQL store dropped."""

    traces: int = 0
    events: int = 0
    scores: int = 0
    bytes_freed: int = 0
    partitions: int = 0

    def add(self, other: Pruned) -> None:
        self.traces += other.traces
        self.events += other.events
        self.scores += other.scores
        self.partitions += other.partitions


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the file's pages in use (free pages are reused by later writes): three cheap PRAGMAs."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * conn.execute("PRAGMA page_size").fetchone()[0])


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _has_scores(conn: sqlite3.Connection) -> bool:
    return _has_table(conn, "scores")


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _count(conn: sqlite3.Connection, trace_ids: Sequence[str]) -> Pruned:
    marks = _marks(len(trace_ids))
    events = conn.execute(f"SELECT COUNT(*) FROM events WHERE trace_id IN ({marks})", list(trace_ids)).fetchone()[0]
    scores = conn.execute(f"SELECT COUNT(*) FROM scores WHERE trace_id IN ({marks})",
                          list(trace_ids)).fetchone()[0] if _has_scores(conn) else 0
    return Pruned(len(trace_ids), int(events), int(scores))


def _delete(conn: sqlite3.Connection, trace_ids: Sequence[str], cutoff_ns: int | None, forget: Forget | None) -> Pruned:
    """One write transaction: the traces among `trace_ids` whose newest event is still before `cutoff_ns`
    (checked again under the lock: one may have been written to since it was picked), deleted whole."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        ids = list(trace_ids)
        if cutoff_ns is not None and ids:
            ids = [t for (t,) in conn.execute(
                f"SELECT trace_id FROM events WHERE trace_id IN ({_marks(len(ids))}) GROUP BY trace_id"
                " HAVING MAX(time) < ?", [*ids, cutoff_ns])]
        done = Pruned()
        if ids:
            marks = _marks(len(ids))
            done.traces = len(ids)
            done.events = conn.execute(f"DELETE FROM events WHERE trace_id IN ({marks})", ids).rowcount
            if _has_scores(conn):
                done.scores = conn.execute(f"DELETE FROM scores WHERE trace_id IN ({marks})", ids).rowcount
            if forget is not None:
                forget(conn, ids)
            elif _has_table(conn, "read_state"):
                conn.execute(f"CREATE TABLE IF NOT EXISTS {PRUNED_TABLE} (trace_id TEXT PRIMARY KEY) WITHOUT ROWID")
                conn.executemany(f"INSERT OR IGNORE INTO {PRUNED_TABLE} (trace_id) VALUES (?)", [(t,) for t in ids])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return done


def prune_older_than(conn: sqlite3.Connection, cutoff_ns: int, *, dry_run: bool = False,
                     forget: Forget | None = None) -> Pruned:
    """Delete every trace whose newest event is older than `cutoff_ns` (unix ns), TRACES_PER_BATCH traces a
    transaction; the traces are walked in id order from the (trace_id, time) index, so memory stays
    bounded whatever the store's size. `conn` is in autocommit mode (as `connect` opens it)."""
    total = Pruned()
    before = used_bytes(conn)
    after_id = ""
    while True:
        found = conn.execute(
            "SELECT trace_id FROM events WHERE trace_id > ? GROUP BY trace_id HAVING MAX(time) < ?"
            " ORDER BY trace_id LIMIT ?", (after_id, cutoff_ns, TRACES_PER_BATCH)).fetchall()
        if not found:
            break
        ids = [t for (t,) in found]
        after_id = ids[-1]
        total.add(_count(conn, ids) if dry_run else _delete(conn, ids, cutoff_ns, forget))
    if not dry_run:
        total.bytes_freed = max(0, before - used_bytes(conn))
    return total


def prune_to_size(conn: sqlite3.Connection, target_bytes: int, *, forget: Forget | None = None) -> Pruned:
    """Delete the oldest traces (by newest event) until the file's used pages are at most `target_bytes`.
    Candidates are the traces of the oldest events (by write order); the trace of the newest event is the
    one being written and is never deleted, even when nothing else is left."""
    total = Pruned()
    before = used_bytes(conn)
    while used_bytes(conn) > target_bytes:
        newest = conn.execute("SELECT trace_id FROM events ORDER BY seq_no DESC LIMIT 1").fetchone()
        candidates = [t for (t,) in conn.execute(
            "SELECT trace_id FROM (SELECT trace_id FROM events ORDER BY seq_no LIMIT ?)"
            " WHERE trace_id IS NOT NULL GROUP BY trace_id", (OLDEST_EVENTS_SCANNED,))
            if newest is None or t != newest[0]]
        if not candidates:
            break
        # oldest last event first: a long trace that began early but is still written to goes last
        ends = dict(conn.execute(f"SELECT trace_id, MAX(time) FROM events WHERE trace_id IN ({_marks(len(candidates))})"
                                 " GROUP BY trace_id", candidates).fetchall())
        candidates.sort(key=lambda t: ends.get(t) or 0)
        progress = False
        for i in range(0, len(candidates), TRACES_PER_BATCH // 10):  # small steps: stop soon after the target
            step = _delete(conn, candidates[i:i + TRACES_PER_BATCH // 10], None, forget)
            total.add(step)
            progress = progress or step.events > 0
            if used_bytes(conn) <= target_bytes:
                break
        if not progress:
            break
    total.bytes_freed = max(0, before - used_bytes(conn))
    return total


def vacuum(conn: sqlite3.Connection) -> int:
    """Rewrite the file without its free pages (exclusive while it runs); returns the bytes it shrank by."""
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    before = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return int((before - conn.execute("PRAGMA page_count").fetchone()[0]) * page)
