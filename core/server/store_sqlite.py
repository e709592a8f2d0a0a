"""SQLite backend (WAL): one writer at a time behind a lock, readers on their own connections.

Ingestion runs in `BEGIN IMMEDIATE`, so the write lock is held for the whole check-and-insert even
when several collector processes share the file; `INSERT OR IGNORE` + rowcount gives each event
its own accepted/duplicate outcome.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's own busy timeout still serializes writers
    fcntl = None  # type: ignore[assignment]

from tracewire._files import prepare_sqlite, private_sqlite_sidecars
from tracewire.read.index import fts_phrase
from tracewire.server.store import EventRow, StoreUnavailable, rollup
from tracewire.server.store_sql import Migration, SQLScores, SQLStore, migrations, search_rows
from tracewire.sinks.retention import TRACES_PER_BATCH, Pruned
from tracewire.sinks.sqlite_table import insert_rows

T = TypeVar("T")

# The WAL is checkpointed and truncated whenever it passes this size (see SQLiteStore._after_commit).
WAL_TRUNCATE_BYTES = 16 * 1024 * 1024
WAL_CHECKPOINT_WAIT_S = 2.0  # how long a truncating checkpoint waits for readers still on old pages

# seq (the rowid) stays the primary key, in arrival order; (project, id) gets a unique index.
MIGRATIONS: tuple[Migration, ...] = migrations(
    seq="INTEGER PRIMARY KEY", text="TEXT", integer="INTEGER", real="REAL",
    text_table="CREATE VIRTUAL TABLE event_text USING fts5(project UNINDEXED, trace_id UNINDEXED, text, "
               "tokenize = 'unicode61 remove_diacritics 0')",
    events_index="\n    CREATE UNIQUE INDEX events_id ON events (project, id);",
    # retention: traces by age across projects, and a deleted trace's facets
    retention="CREATE INDEX traces_end ON traces (end_ns); CREATE INDEX trace_facets_trace ON trace_facets (project, trace_id)")
TEXT_ROWS_PER_STEP = 5_000  # full-text rows one retention transaction looks at (FTS5 has no trace_id index)
_INSERT_HEAD = "INSERT OR IGNORE INTO events (project, id, trace_id, time, body)"
_UPSERT_TRACE = (
    "INSERT INTO traces (project, trace_id, start_ns, end_ns, session_id, user_id, events) VALUES (?,?,?,?,?,?,?)"
    " ON CONFLICT (project, trace_id) DO UPDATE SET start_ns = min(start_ns, excluded.start_ns),"
    " end_ns = max(end_ns, excluded.end_ns), session_id = coalesce(session_id, excluded.session_id),"
    " user_id = coalesce(user_id, excluded.user_id), events = events + excluded.events"
)


@contextlib.contextmanager
def _file_lock(fd: int) -> Iterator[None]:
    if fd < 0:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class SQLiteStore(SQLStore, SQLScores):  # SQLScores: the scores table, alike on both
    backend = "sqlite"
    MIGRATIONS = MIGRATIONS
    CLOCK = "((julianday('now') - 2440587.5) * 86400.0)"  # rate limits: unix seconds, to the millisecond

    def __init__(self, path: str) -> None:
        self.path = path
        prepare_sqlite(path)  # it holds signing secrets: 0600 file in a 0700 folder
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._ckpt_conn: sqlite3.Connection | None = None  # used only under the write locks
        self._ckpt_lock = threading.Lock()  # one checkpoint at a time in this process
        self._writes_since_idle_check = 0
        # Collector processes sharing the file (`serve --workers N`) queue on this lock instead of
        # polling SQLite's busy handler, which sleeps up to 100 ms between attempts.
        self._lock_fd = os.open(path + "-writer.lock", os.O_RDWR | os.O_CREAT, 0o600) if fcntl else -1
        self._migrate()
        private_sqlite_sidecars(path)
        self._start_backfill()

    # -- connections --------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the store checkpoints itself (see _after_commit)
            conn.execute(f"PRAGMA journal_size_limit={WAL_TRUNCATE_BYTES}")
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._conn())
        except sqlite3.OperationalError as exc:  # locked/busy/disk I/O: the client retries later
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    _read = _run  # a read is one statement on this thread's connection (WAL: it never waits for the writer)

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def tx(conn: sqlite3.Connection) -> T:
            with self._write_lock, _file_lock(self._lock_fd):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                self._after_commit()
                return out

        return self._run(tx)

    def _migrate(self) -> None:
        self._write(self._apply_migrations)

    # -- WAL bound ----------------------------------------------------------------------------------
    # A PASSIVE checkpoint copies pages but never restarts the WAL while writes keep coming, so under
    # steady ingest the file grows without end. Once it passes WAL_TRUNCATE_BYTES, the writer that
    # just committed (still holding the write lock, so no other writer can append meanwhile) runs a
    # TRUNCATE checkpoint: the WAL goes back to zero bytes and the next writers wait for that briefly.
    # The WAL thus stays under the threshold plus one transaction. A background thread copies pages
    # ahead of time (PASSIVE, cheap for writers) and empties the WAL once ingest goes quiet.
    def _wal_bytes(self) -> int:
        try:
            return os.stat(self.path + "-wal").st_size
        except OSError:
            return 0

    def _truncate_wal(self) -> bool:
        """TRUNCATE checkpoint; the caller holds the write locks. False when readers kept it from finishing."""
        conn = self._ckpt_conn
        if conn is None:
            conn = self._ckpt_conn = sqlite3.connect(self.path, timeout=WAL_CHECKPOINT_WAIT_S, isolation_level=None,
                                                     check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(WAL_CHECKPOINT_WAIT_S * 1000)}")
        try:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error:
            return False
        return not busy

    def _after_commit(self) -> None:
        if self._wal_bytes() > WAL_TRUNCATE_BYTES:
            with self._ckpt_lock:  # a PASSIVE pass in progress would make the TRUNCATE give up at once
                self._truncate_wal()
            self._writes_since_idle_check = 0
        self._writes_since_idle_check += 1

    def _checkpoint_loop(self, interval: float = 0.5) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            while not self._closed.wait(interval):
                try:
                    if self._writes_since_idle_check == 0 and self._wal_bytes() > 0:
                        # quiet since the last look: empty the WAL (waits for the write lock, never for long)
                        with self._write_lock, _file_lock(self._lock_fd), self._ckpt_lock:
                            self._truncate_wal()
                    elif self._ckpt_lock.acquire(blocking=False):
                        try:
                            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        finally:
                            self._ckpt_lock.release()
                    self._writes_since_idle_check = 0
                except sqlite3.Error:
                    pass
        finally:
            conn.close()

    # -- events ---------------------------------------------------------------------------------
    def insert_events(self, project: str, rows: Sequence[EventRow]) -> set[str]:
        if self._checkpointer is None:
            with self._conns_lock:
                if self._checkpointer is None:
                    self._checkpointer = threading.Thread(target=self._checkpoint_loop, daemon=True,
                                                          name="tracewire-sqlite-checkpoint")
                    self._checkpointer.start()

        params = [(project, r.id, r.trace_id, r.time, r.body) for r in rows]  # built before taking the lock
        all_traces = [(project, *t) for t in rollup(rows)]
        all_search = search_rows(project, ((r.trace_id, r.body, r.time) for r in rows))

        def tx(conn: sqlite3.Connection) -> set[str]:
            # Under the write lock new rows get seq > the current max: that tells which rows this call
            # stored when some were duplicates (the usual case, all new, needs no second look).
            before_seq = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            before = conn.total_changes
            insert_rows(conn, _INSERT_HEAD, params)
            if conn.total_changes - before == len(rows):
                conn.executemany(_UPSERT_TRACE, all_traces)
                self._index_events(conn, all_search)
                return set()
            new = {i for (i,) in conn.execute("SELECT id FROM events WHERE seq > ?", (before_seq,))}
            conn.executemany(_UPSERT_TRACE, [(project, *t) for t in rollup(r for r in rows if r.id in new)])
            self._index_events(conn, search_rows(project, ((r.trace_id, r.body, r.time) for r in rows if r.id in new)))
            return {r.id for r in rows if r.id not in new}

        return self._write(tx) if rows else set()

    def _text_match(self, needle: str) -> tuple[str, list[Any]]:
        # FTS5 finds the events holding the phrase's words in a row; instr keeps those holding it as typed.
        if any(c.isalnum() for c in needle):
            return "event_text MATCH ? AND project = ? AND instr(text, ?) > 0", [fts_phrase(needle) or ""]
        return "project = ? AND instr(text, ?) > 0", []

    def _trace_rows(self, project: str, trace_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        marks = ",".join("?" * len(trace_ids))
        sql = f"SELECT trace_id, id, body FROM events WHERE project = ? AND trace_id IN ({marks}) ORDER BY time, id"
        return self._run(lambda c: c.execute(sql, (project, *trace_ids)).fetchall())

    def rows_by_id(self, project: str, event_ids: Sequence[str]) -> list[tuple[str, str]]:
        def fetch(c: sqlite3.Connection) -> list[tuple[int, str, str]]:
            found: list[tuple[int, str, str]] = []
            for i in range(0, len(event_ids), 5000):  # within SQLite's bound-variable limit
                chunk = event_ids[i:i + 5000]
                sql = f"SELECT time, id, body FROM events WHERE project = ? AND id IN ({','.join('?' * len(chunk))})"
                found += c.execute(sql, (project, *chunk)).fetchall()
            return found

        out = self._run(fetch)
        out.sort(key=lambda r: (r[0], r[1]))
        return [(event_id, body) for _, event_id, body in out]

    # -- retention ----------------------------------------------------------------------------------
    def prune_before(self, cutoff_ns: int, *, dry_run: bool = False) -> Pruned:
        """Delete whole traces whose newest event is older than `cutoff_ns`, with their events, scores,
        facets and search text, TRACES_PER_BATCH traces a write transaction (ingest waits for one batch
        at most). A trace still written to after the cutoff is kept whole."""
        if dry_run:
            def count(c: sqlite3.Connection) -> Pruned:
                traces, events = c.execute("SELECT count(*), coalesce(sum(events), 0) FROM traces WHERE end_ns < ?",
                                           (cutoff_ns,)).fetchone()
                scores = c.execute("SELECT count(*) FROM scores s JOIN traces t ON t.project = s.project AND"
                                   " t.trace_id = s.trace_id WHERE t.end_ns < ?", (cutoff_ns,)).fetchone()[0]
                return Pruned(int(traces), int(events), int(scores))

            return self._run(count)

        def batch(c: sqlite3.Connection) -> Pruned:
            c.execute("CREATE TEMP TABLE IF NOT EXISTS pruned (project TEXT, trace_id TEXT)")
            found = c.execute("SELECT project, trace_id, events FROM traces WHERE end_ns < ? LIMIT ?",
                              (cutoff_ns, TRACES_PER_BATCH)).fetchall()
            pairs = [(p, t) for p, t, _ in found]
            done = Pruned(len(found), 0)
            done.events = c.executemany("DELETE FROM events WHERE project = ? AND trace_id = ?", pairs).rowcount
            done.scores = c.executemany("DELETE FROM scores WHERE project = ? AND trace_id = ?", pairs).rowcount
            c.executemany("DELETE FROM trace_facets WHERE project = ? AND trace_id = ?", pairs)
            c.executemany("DELETE FROM traces WHERE project = ? AND trace_id = ?", pairs)
            c.executemany("INSERT INTO temp.pruned (project, trace_id) VALUES (?, ?)", pairs)
            return done

        total = Pruned()
        self._run(lambda c: c.execute("DROP TABLE IF EXISTS temp.pruned"))
        while (step := self._write(batch)).traces:
            total.add(step)
        if total.traces:
            self._forget_text()
        return total

    def _forget_text(self) -> None:
        """Delete the search text of the traces just pruned (temp.pruned on this thread's connection). FTS5
        cannot look rows up by trace id, so this walks the table by rowid, a bounded range a transaction;
        until then a leftover text matches nothing: searches only return traces still in `traces`."""
        top = self._run(lambda c: c.execute("SELECT coalesce(max(rowid), 0) FROM event_text").fetchone()[0])
        def step(low: int) -> Callable[[sqlite3.Connection], object]:
            return lambda c: c.execute("DELETE FROM event_text WHERE rowid > ? AND rowid <= ? AND (project, trace_id)"
                                       " IN (SELECT project, trace_id FROM temp.pruned)", (low, low + TEXT_ROWS_PER_STEP))

        for low in range(0, top, TEXT_ROWS_PER_STEP):
            self._write(step(low))
        self._run(lambda c: c.execute("DROP TABLE IF EXISTS temp.pruned"))

    def ping(self) -> None:
        self._run(lambda c: c.execute("SELECT 1").fetchone())

    def close(self) -> None:
        self._stop_backfill()
        self._closed.set()
        if self._checkpointer is not None:
            self._checkpointer.join(5)
        try:
            self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass
        if self._ckpt_conn is not None:
            self._ckpt_conn.close()
            self._ckpt_conn = None
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
