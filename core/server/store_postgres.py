"""PostgreSQL backend: psycopg 3 with a connection pool; migrations applied at start.

Several collector replicas can share one database. Ingestion is one statement per batch:
`INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING id` — the (project, id)
primary key decides which concurrent request stores an event, and RETURNING says which ids this
request stored. Rows go in id order (and trace upserts in trace-id order), so overlapping concurrent
batches take their locks in the same order and cannot deadlock each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from tracewire.server.store import (
    EventRow,
    KeyRecord,
    StoreUnavailable,
    TraceFilter,
    key_from_row,
    parse_bodies,
    rollup,
)

T = TypeVar("T")

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        seq bigserial,
        project text NOT NULL,
        id text NOT NULL,
        trace_id text NOT NULL,
        time bigint NOT NULL,
        body text NOT NULL,
        PRIMARY KEY (project, id)
    );
    CREATE INDEX events_trace ON events (project, trace_id);
    CREATE TABLE traces (
        project text NOT NULL,
        trace_id text NOT NULL,
        start_ns bigint NOT NULL,
        end_ns bigint NOT NULL,
        session_id text,
        user_id text,
        events bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (project, trace_id)
    );
    CREATE INDEX traces_start ON traces (project, start_ns);
    CREATE INDEX traces_session ON traces (project, session_id);
    CREATE TABLE api_keys (
        key_id text PRIMARY KEY,
        project text NOT NULL,
        key_hash text NOT NULL,
        signing_secret text NOT NULL,
        created_at double precision NOT NULL,
        revoked_at double precision
    );
    CREATE TABLE client_loss (
        key_id text NOT NULL,
        project text NOT NULL,
        reason text NOT NULL,
        count bigint NOT NULL,
        PRIMARY KEY (key_id, reason)
    );
    """,
    # Key scopes; keys that existed before get 'ingest' only (see store.LEGACY_SCOPES).
    "ALTER TABLE api_keys ADD COLUMN scopes text NOT NULL DEFAULT 'ingest'",
)

# %b: arrays go in binary format; the text format escapes every quote of every JSON body (slow).
_INSERT = """
INSERT INTO events (project, id, trace_id, time, body)
SELECT %s, * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::text[])
ON CONFLICT (project, id) DO NOTHING
RETURNING id
"""
_UPSERT_TRACES = """
INSERT INTO traces (project, trace_id, start_ns, end_ns, session_id, user_id, events)
SELECT %s, * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::bigint[])
ON CONFLICT (project, trace_id) DO UPDATE SET
    start_ns = least(traces.start_ns, excluded.start_ns),
    end_ns = greatest(traces.end_ns, excluded.end_ns),
    session_id = coalesce(traces.session_id, excluded.session_id),
    user_id = coalesce(traces.user_id, excluded.user_id),
    events = traces.events + excluded.events
"""
_MIGRATION_LOCK = 0x7472_6163_6577  # pg_advisory_xact_lock key: replicas starting together migrate once
_RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


class PostgresStore:
    backend = "postgresql"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 8, timeout: float = 10.0) -> None:
        self.dsn = dsn
        self._ping_lock = threading.Lock()
        self._ping_conn: psycopg.Connection[Any] | None = None
        self._pool = ConnectionPool(dsn, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
                                    kwargs={"autocommit": False})
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreUnavailable(f"postgresql: cannot connect: {exc}") from exc
        self._migrate()

    def _tx(self, fn: Callable[[psycopg.Connection[Any]], T], attempts: int = 3) -> T:
        for attempt in range(attempts):
            try:
                with self._pool.connection() as conn:  # commits on success, rolls back on error
                    return fn(conn)
            except _RETRYABLE:
                if attempt == attempts - 1:
                    raise StoreUnavailable("postgresql: lock conflict, retry") from None
            except (psycopg.OperationalError, PoolTimeout) as exc:
                raise StoreUnavailable(f"postgresql: {exc}") from exc
        raise AssertionError("unreachable")

    def _migrate(self) -> None:
        def apply(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY)")
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, script in enumerate(MIGRATIONS, start=1):
                if version not in done:
                    conn.execute(script)  # type: ignore[arg-type]  # trusted constant DDL
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))

        self._tx(apply)

    # -- events ---------------------------------------------------------------------------------
    def insert_events(self, project: str, rows: Sequence[EventRow]) -> set[str]:
        ordered = sorted(rows, key=lambda r: r.id)
        columns = ([r.id for r in ordered], [r.trace_id for r in ordered], [r.time for r in ordered],
                   [r.body for r in ordered])

        def tx(conn: psycopg.Connection[Any]) -> set[str]:
            with conn.cursor() as cur:
                cur.execute(_INSERT, (project, *columns))
                stored = {r[0] for r in cur.fetchall()}
                ups = rollup(r for r in ordered if r.id in stored)
                if ups:
                    cur.execute(_UPSERT_TRACES, (project, *(list(col) for col in zip(*ups, strict=True))))
            return {r.id for r in ordered if r.id not in stored}

        return self._tx(tx) if ordered else set()

    def trace_ids(self, project: str, flt: TraceFilter, limit: int, offset: int) -> list[str]:
        where: list[str] = ["project = %s"]
        args: list[Any] = [project]
        for col, op, val in (("start_ns", ">=", flt.start), ("start_ns", "<=", flt.end),
                             ("session_id", "=", flt.session_id), ("user_id", "=", flt.user_id)):
            if val is not None:
                where.append(f"{col} {op} %s")
                args.append(val)
        sql = (f"SELECT trace_id FROM traces WHERE {' AND '.join(where)}"
               " ORDER BY start_ns DESC, trace_id DESC LIMIT %s OFFSET %s")
        return self._tx(lambda c: [r[0] for r in c.execute(sql, (*args, limit, offset))])  # type: ignore[arg-type]

    def rows_of(self, project: str, trace_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {t: [] for t in trace_ids}
        if not trace_ids:
            return out
        rows = self._tx(lambda c: c.execute(
            "SELECT trace_id, id, body FROM events WHERE project = %s AND trace_id = ANY(%s) ORDER BY time, id",
            (project, list(trace_ids))).fetchall())
        for trace_id, event_id, body in rows:
            out[trace_id].append((event_id, body))
        return out

    def events_of(self, project: str, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        return {t: parse_bodies(rows) for t, rows in self.rows_of(project, trace_ids).items()}

    def rows_by_id(self, project: str, event_ids: Sequence[str]) -> list[tuple[str, str]]:
        if not event_ids:
            return []
        rows = self._tx(lambda c: c.execute(
            "SELECT id, body FROM events WHERE project = %s AND id = ANY(%s) ORDER BY time, id",
            (project, list(event_ids))).fetchall())
        return [(event_id, body) for event_id, body in rows]

    def trace_version(self, project: str, trace_id: str) -> tuple[int, int, int] | None:
        row = self._tx(lambda c: c.execute(
            "SELECT events, start_ns, end_ns FROM traces WHERE project = %s AND trace_id = %s",
            (project, trace_id)).fetchone())
        return (int(row[0]), int(row[1]), int(row[2])) if row else None

    def count_events(self, project: str | None = None) -> int:
        if project is None:
            return int(self._tx(lambda c: c.execute("SELECT count(*) FROM events").fetchone())[0])  # type: ignore[index]
        return int(self._tx(lambda c: c.execute(
            "SELECT count(*) FROM events WHERE project = %s", (project,)).fetchone())[0])  # type: ignore[index]

    def record_loss(self, key_id: str, project: str, loss: dict[str, int]) -> None:
        def tx(conn: psycopg.Connection[Any]) -> None:
            conn.execute("DELETE FROM client_loss WHERE key_id = %s", (key_id,))
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO client_loss (key_id, project, reason, count) VALUES (%s,%s,%s,%s)",
                                [(key_id, project, r, n) for r, n in loss.items()])

        self._tx(tx)

    def reported_loss(self) -> list[tuple[str, str, int]]:
        rows = self._tx(lambda c: c.execute(
            "SELECT project, reason, sum(count) FROM client_loss GROUP BY project, reason ORDER BY project, reason"
        ).fetchall())
        return [(p, r, int(n)) for p, r, n in rows]

    def ping(self) -> None:
        """A round trip on a connection of its own: a pool busy with ingestion must not delay health checks."""
        with self._ping_lock:
            try:
                if self._ping_conn is None or self._ping_conn.closed:
                    self._ping_conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=2,
                                                      options="-c statement_timeout=2000")
                self._ping_conn.execute("SELECT 1").fetchone()
            except psycopg.Error as exc:
                if self._ping_conn is not None:
                    self._ping_conn.close()
                    self._ping_conn = None
                raise StoreUnavailable(f"postgresql: {exc}") from exc

    # -- keys -------------------------------------------------------------------------------------
    def create_key(self, record: KeyRecord) -> None:
        self._tx(lambda c: c.execute(
            "INSERT INTO api_keys (key_id, project, key_hash, signing_secret, created_at, revoked_at, scopes)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s)",
            (record.key_id, record.project, record.key_hash, record.signing_secret, record.created_at,
             record.revoked_at, ",".join(record.scopes))))

    def get_key(self, key_id: str) -> KeyRecord | None:
        row = self._tx(lambda c: c.execute(
            "SELECT key_id, project, key_hash, signing_secret, created_at, revoked_at, scopes FROM api_keys"
            " WHERE key_id = %s", (key_id,)).fetchone())
        return key_from_row(row) if row else None

    def list_keys(self) -> list[KeyRecord]:
        rows = self._tx(lambda c: c.execute(
            "SELECT key_id, project, key_hash, signing_secret, created_at, revoked_at, scopes FROM api_keys"
            " ORDER BY created_at").fetchall())
        return [key_from_row(r) for r in rows]

    def revoke_key(self, key_id: str, when: float) -> bool:
        return self._tx(lambda c: c.execute(
            "UPDATE api_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL",
            (when, key_id)).rowcount == 1)

    def close(self) -> None:
        with self._ping_lock:
            if self._ping_conn is not None:
                self._ping_conn.close()
                self._ping_conn = None
        self._pool.close()
