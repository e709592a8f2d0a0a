"""The event table of the local SQLite file: its schema, how a connection to it is opened, and
the multi-row INSERT that writes it. The `sqlite` sink writes it, the local reader reads it, and
the collector's SQLite store reuses the INSERT for its own table.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from tracewire._files import prepare_sqlite, private_sqlite_sidecars

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS events (
    seq_no INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    trace_id TEXT,
    span_id TEXT,
    parent_span_id TEXT,
    type TEXT,
    kind TEXT,
    phase TEXT,
    name TEXT,
    session_id TEXT,
    user_id TEXT,
    time INTEGER,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_session ON events(session_id);
"""
# What the readers' listings ask (tracewire.read.local), made at every writable open so a store from an
# earlier release gains them in place. (trace_id, time) answers both a trace's events and the listing's
# start per trace from the index alone; it replaces the plain trace_id index, which would only add
# write cost. The user filter has its own index, and the error filter a partial index of error events.
INDEXES_SQL = """
CREATE INDEX IF NOT EXISTS events_trace_time ON events(trace_id, time);
DROP INDEX IF EXISTS events_trace;
CREATE INDEX IF NOT EXISTS events_user ON events(user_id) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_error ON events(trace_id) WHERE phase = 'error';
"""
INSERT_HEAD = (
    "INSERT OR IGNORE INTO events (id, trace_id, span_id, parent_span_id, type, kind, phase, name,"
    " session_id, user_id, time, body)"
)
_MAX_ROWS_PER_STATEMENT = 128  # a statement binds its rows holding the GIL: keep that short
_MIB = 2**20
AUTOCHECKPOINT_BYTES = 40 * _MIB
# Past this the sink forces a checkpoint that restarts the log (and truncates it on disk). Readers
# (`tracewire traces`, `show`, `tail -f`) reading back to back can keep passive autocheckpoints from
# ever restarting the log, which then grows with everything written.
WAL_FORCE_CHECKPOINT_BYTES = 48 * _MIB


@functools.lru_cache(maxsize=64)
def _statement(head: str, width: int, rows: int) -> str:
    row = "(" + ",".join("?" * width) + ")"
    return f"{head} VALUES {','.join([row] * rows)}"


def insert_rows(conn: sqlite3.Connection, head: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """`head` ("INSERT ... (columns)") for every row, as multi-row statements of power-of-two
    sizes instead of `executemany`. Each statement releases the GIL once around SQLite's work;
    `executemany` releases it per row, and each time takes up to the interpreter's switch interval
    (5 ms) to win it back from an app thread that is busy: under load its writes slow to a crawl.
    One statement of many rows also costs about half the CPU per row of `executemany`."""
    if not rows:
        return
    width = len(rows[0])
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if hasattr(conn, "getlimit") else 999
    most = 1 << (min(_MAX_ROWS_PER_STATEMENT, max(1, limit // width)).bit_length() - 1)
    flat = itertools.chain.from_iterable
    i, n = 0, len(rows)
    while i < n:
        k = min(most, 1 << ((n - i).bit_length() - 1))  # the largest power of two left: few statements, all cached
        conn.execute(_statement(head, width, k), list(flat(rows[i:i + k])))
        i += k


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open (and create) a tracewire SQLite file: WAL so readers never block the writer."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10, check_same_thread=False)
    else:
        prepare_sqlite(path)  # 0600 file in a 0700 folder; SQLite gives -wal/-shm the file's mode
        conn = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
        # 16 KiB pages for a new file (an existing one keeps its own): a ~1 KB event row then
        # shares a page with a dozen others, and a batch dirties fewer pages (-10-15% per row).
        # Only takes effect before the file's first write, so it comes before journal_mode.
        conn.execute("PRAGMA page_size=16384")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: keeps the index pages hot under load
        # Checkpoint every ~40 MiB of WAL instead of 4 MiB: checkpoints (the only fsyncs in WAL
        # mode with synchronous=NORMAL) cost a third of the write throughput at the default.
        # Counted in pages, so the figure follows the file's page size.
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_BYTES // page}")
        # A log that did grow (a reader held it) is cut back to this size when it next restarts.
        conn.execute(f"PRAGMA journal_size_limit={WAL_FORCE_CHECKPOINT_BYTES}")
        conn.executescript(SCHEMA_SQL + INDEXES_SQL)
        private_sqlite_sidecars(path)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


# The INSERT_HEAD columns an event fills, in order; the serialized line follows as the body.
EVENT_COLUMNS = ("id", "trace_id", "span_id", "parent_span_id", "type", "kind", "phase", "name", "session_id",
                 "user_id", "time")


def event_row(event: Mapping[str, Any], line: str) -> tuple[Any, ...]:
    """The INSERT_HEAD columns of one event: its indexed fields, then the serialized line as body."""
    return (event["id"], *(event.get(k) for k in EVENT_COLUMNS[1:]), line)


# -- scores ------------------------------------------------------------------------------------------
# Scores are records of their own (tracewire.model.score), one row per score id: a later write of the
# same id replaces the row when its own time is later (ties: the larger body, so every store settles
# on the same row whatever order the writes came in). Indexed by what reads ask: a trace's, a session's.
SCORES_SQL = """
CREATE TABLE IF NOT EXISTS scores (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    trace_id TEXT,
    span_id TEXT,
    session_id TEXT,
    time INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS scores_trace ON scores(trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS scores_session ON scores(session_id) WHERE session_id IS NOT NULL;
"""
UPSERT_SCORE = (
    "INSERT INTO scores (id, name, trace_id, span_id, session_id, time, body) VALUES (?,?,?,?,?,?,?)"
    " ON CONFLICT (id) DO UPDATE SET name = excluded.name, trace_id = excluded.trace_id,"
    " span_id = excluded.span_id, session_id = excluded.session_id, time = excluded.time, body = excluded.body"
    " WHERE excluded.time > scores.time OR (excluded.time = scores.time AND excluded.body > scores.body)"
)


def score_row(record: Mapping[str, Any], line: str) -> tuple[Any, ...]:
    """The UPSERT_SCORE columns of one score record."""
    return (record["id"], str(record.get("name") or ""), record.get("trace_id"), record.get("span_id"),
            record.get("session_id"), int(record.get("time") or 0), line)


def upsert_scores(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Score rows in (id, time) order: within one batch too, the latest write of an id wins."""
    if rows:
        # made with the first score, in its transaction: a store that never had scores keeps its shape
        for statement in filter(str.strip, SCORES_SQL.split(";")):
            conn.execute(statement)
        ordered: list[tuple[Any, ...]] = sorted(rows, key=lambda r: (r[0], r[5]))
        conn.executemany(UPSERT_SCORE, ordered)
