"""SQLite backend (WAL): one writer at a time behind a lock, readers on their own connections.

Ingestion runs in `BEGIN IMMEDIATE`, so the write lock is held for the whole check-and-insert even
when several collector processes share the file; `INSERT OR IGNORE` + rowcount gives each event
its own accepted/duplicate outcome.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .. import _json
from .store import EventRow, KeyRecord, StoreUnavailable, TraceFilter, rollup

T = TypeVar("T")

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        project TEXT NOT NULL,
        id TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        parent_span_id TEXT,
        type TEXT NOT NULL,
        kind TEXT,
        phase TEXT,
        name TEXT,
        session_id TEXT,
        user_id TEXT,
        time INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (project, id)
    ) WITHOUT ROWID;
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
)

_INSERT = (
    "INSERT OR IGNORE INTO events (project, id, trace_id, span_id, parent_span_id, type, kind, phase, name,"
    " session_id, user_id, time, body) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_UPSERT_TRACE = (
    "INSERT INTO traces (project, trace_id, start_ns, end_ns, session_id, user_id, events) VALUES (?,?,?,?,?,?,?)"
    " ON CONFLICT (project, trace_id) DO UPDATE SET start_ns = min(start_ns, excluded.start_ns),"
    " end_ns = max(end_ns, excluded.end_ns), session_id = coalesce(session_id, excluded.session_id),"
    " user_id = coalesce(user_id, excluded.user_id), events = events + excluded.events"
)


class SQLiteStore:
    backend = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.dirname(os.path.abspath(path)):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._migrate()

    # -- connections --------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
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
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
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

    # -- events ---------------------------------------------------------------------------------
    def insert_events(self, project: str, rows: Sequence[EventRow]) -> set[str]:
        def tx(conn: sqlite3.Connection) -> set[str]:
            cur = conn.cursor()
            stored: list[EventRow] = []
            for r in rows:
                cur.execute(_INSERT, (project, *r))
                if cur.rowcount == 1:
                    stored.append(r)
            cur.executemany(_UPSERT_TRACE, [(project, *t) for t in rollup(stored)])
            return {r.id for r in stored}

        return self._write(tx)

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

    def events_of(self, project: str, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {t: [] for t in trace_ids}
        if not trace_ids:
            return out
        marks = ",".join("?" * len(trace_ids))
        sql = f"SELECT trace_id, body FROM events WHERE project = ? AND trace_id IN ({marks}) ORDER BY time, id"
        for trace_id, body in self._run(lambda c: c.execute(sql, (project, *trace_ids)).fetchall()):
            out[trace_id].append(_json.loads(body))
        return out

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
            "INSERT INTO api_keys (key_id, project, key_hash, signing_secret, created_at, revoked_at)"
            " VALUES (?,?,?,?,?,?)",
            (record.key_id, record.project, record.key_hash, record.signing_secret, record.created_at,
             record.revoked_at)))

    def get_key(self, key_id: str) -> KeyRecord | None:
        row = self._run(lambda c: c.execute(
            "SELECT key_id, project, key_hash, signing_secret, created_at, revoked_at FROM api_keys"
            " WHERE key_id = ?", (key_id,)).fetchone())
        return KeyRecord(*row) if row else None

    def list_keys(self) -> list[KeyRecord]:
        rows = self._run(lambda c: c.execute(
            "SELECT key_id, project, key_hash, signing_secret, created_at, revoked_at FROM api_keys"
            " ORDER BY created_at").fetchall())
        return [KeyRecord(*r) for r in rows]

    def revoke_key(self, key_id: str, when: float) -> bool:
        return self._write(lambda c: c.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (when, key_id)).rowcount == 1)

    def close(self) -> None:
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()
