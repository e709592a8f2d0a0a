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
from tracewire.server.store import (
    EventRow,
    KeyRecord,
    StoreUnavailable,
    TraceFilter,
    key_from_row,
    parse_bodies,
    rollup,
)
from tracewire.sinks.sqlite_table import insert_rows

T = TypeVar("T")

# The WAL is checkpointed and truncated whenever it passes this size (see SQLiteStore._after_commit).
WAL_TRUNCATE_BYTES = 16 * 1024 * 1024
WAL_CHECKPOINT_WAIT_S = 2.0  # how long a truncating checkpoint waits for readers still on old pages

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        project TEXT NOT NULL,
        id TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        time INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE UNIQUE INDEX events_id ON events(project, id);
    CREATE INDEX events_trace ON events(project, trace_id);
    CREATE TABLE traces (
        project TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER NOT NULL,
        session_id TEXT,
        user_id TEXT,
        events INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project, trace_id)
    );
    CREATE INDEX traces_start ON traces(project, start_ns);
    CREATE INDEX traces_session ON traces(project, session_id);
    CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        signing_secret TEXT NOT NULL,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE TABLE client_loss (
        key_id TEXT NOT NULL,
        project TEXT NOT NULL,
        reason TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (key_id, reason)
    );
    """,
    # Key scopes; keys that existed before get 'ingest' only (see store.LEGACY_SCOPES).
    "ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'ingest'",
)

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


class SQLiteStore:
    backend = "sqlite"

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
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, script in enumerate(MIGRATIONS, start=1):
                if version not in done:
                    for stmt in filter(str.strip, script.split(";")):
                        conn.execute(stmt)
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))

        self._write(apply)

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

        def tx(conn: sqlite3.Connection) -> set[str]:
            # Under the write lock new rows get seq > the current max: that tells which rows this call
            # stored when some were duplicates (the usual case, all new, needs no second look).
            before_seq = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            before = conn.total_changes
            insert_rows(conn, _INSERT_HEAD, params)
            if conn.total_changes - before == len(rows):
                conn.executemany(_UPSERT_TRACE, all_traces)
                return set()
            new = {i for (i,) in conn.execute("SELECT id FROM events WHERE seq > ?", (before_seq,))}
            conn.executemany(_UPSERT_TRACE, [(project, *t) for t in rollup(r for r in rows if r.id in new)])
            return {r.id for r in rows if r.id not in new}

        return self._write(tx) if rows else set()

    def trace_ids(self, project: str, flt: TraceFilter, limit: int, offset: int) -> list[str]:
        where: list[str] = ["project = ?"]
        args: list[Any] = [project]
        for col, op, val in (("start_ns", ">=", flt.start), ("start_ns", "<=", flt.end),
                             ("session_id", "=", flt.session_id), ("user_id", "=", flt.user_id)):
            if val is not None:
                where.append(f"{col} {op} ?")
                args.append(val)
        sql = (f"SELECT trace_id FROM traces WHERE {' AND '.join(where)}"
               " ORDER BY start_ns DESC, trace_id DESC LIMIT ? OFFSET ?")
        return self._run(lambda c: [r[0] for r in c.execute(sql, (*args, limit, offset))])

    def rows_of(self, project: str, trace_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {t: [] for t in trace_ids}
        if not trace_ids:
            return out
        marks = ",".join("?" * len(trace_ids))
        sql = f"SELECT trace_id, id, body FROM events WHERE project = ? AND trace_id IN ({marks}) ORDER BY time, id"
        for trace_id, event_id, body in self._run(lambda c: c.execute(sql, (project, *trace_ids)).fetchall()):
            out[trace_id].append((event_id, body))
        return out

    def events_of(self, project: str, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        return {t: parse_bodies(rows) for t, rows in self.rows_of(project, trace_ids).items()}

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

    def trace_version(self, project: str, trace_id: str) -> tuple[int, int, int] | None:
        row = self._run(lambda c: c.execute("SELECT events, start_ns, end_ns FROM traces WHERE project = ? AND trace_id = ?",
                                            (project, trace_id)).fetchone())
        return (int(row[0]), int(row[1]), int(row[2])) if row else None

    def count_events(self, project: str | None = None) -> int:
        if project is None:
            return int(self._run(lambda c: c.execute("SELECT count(*) FROM events").fetchone()[0]))
        return int(self._run(lambda c: c.execute("SELECT count(*) FROM events WHERE project = ?", (project,)).fetchone()[0]))

    def record_loss(self, key_id: str, project: str, loss: dict[str, int]) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM client_loss WHERE key_id = ?", (key_id,))
            conn.executemany("INSERT INTO client_loss (key_id, project, reason, count) VALUES (?,?,?,?)",
                             [(key_id, project, r, n) for r, n in loss.items()])

        self._write(tx)

    def reported_loss(self) -> list[tuple[str, str, int]]:
        sql = "SELECT project, reason, sum(count) FROM client_loss GROUP BY project, reason ORDER BY project, reason"
        return self._run(lambda c: [(p, r, int(n)) for p, r, n in c.execute(sql)])

    def ping(self) -> None:
        self._run(lambda c: c.execute("SELECT 1").fetchone())

    # -- keys -------------------------------------------------------------------------------------
    def create_key(self, record: KeyRecord) -> None:
        self._write(lambda c: c.execute(
            "INSERT INTO api_keys (key_id, project, key_hash, signing_secret, created_at, revoked_at, scopes)"
            " VALUES (?,?,?,?,?,?,?)",
            (record.key_id, record.project, record.key_hash, record.signing_secret, record.created_at,
             record.revoked_at, ",".join(record.scopes))))

    def get_key(self, key_id: str) -> KeyRecord | None:
        row = self._run(lambda c: c.execute(
            "SELECT key_id, project, key_hash, signing_secret, created_at, revoked_at, scopes FROM api_keys"
            " WHERE key_id = ?", (key_id,)).fetchone())
        return key_from_row(row) if row else None

    def list_keys(self) -> list[KeyRecord]:
        rows = self._run(lambda c: c.execute(
            "SELECT key_id, project, key_hash, signing_secret, created_at, revoked_at, scopes FROM api_keys"
            " ORDER BY created_at").fetchall())
        return [key_from_row(r) for r in rows]

    def revoke_key(self, key_id: str, when: float) -> bool:
        return self._write(lambda c: c.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (when, key_id)).rowcount == 1)

    def close(self) -> None:
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
