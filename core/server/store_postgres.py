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

from tracewire.server.store import EventRow, StoreUnavailable, rollup
from tracewire.server.store_sql import SQLScores, SQLStore, migrations, search_rows

T = TypeVar("T")

MIGRATIONS: tuple[str, ...] = migrations(
    seq="bigserial", text="text", integer="bigint", real="double precision",
    text_table="CREATE TABLE event_text (project text NOT NULL, trace_id text NOT NULL, text text NOT NULL);\n"
               "    CREATE INDEX event_text_words ON event_text USING gin (to_tsvector('simple', text))",
    events_key=",\n        PRIMARY KEY (project, id)")

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


class PostgresStore(SQLStore, SQLScores):  # SQLScores: the scores table, alike on both
    backend = "postgresql"
    PARAM = "%s"
    MIGRATIONS = MIGRATIONS
    CLOCK = "CAST(extract(epoch FROM statement_timestamp()) AS double precision)"  # rate limits: one clock

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
        self._start_backfill()

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

    def _read(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        return self._tx(fn)

    _write = _read  # every statement runs in a pooled transaction

    def _migrate(self) -> None:
        def apply(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            self._apply_migrations(conn)

        self._tx(apply)

    # -- events ---------------------------------------------------------------------------------
    def insert_events(self, project: str, rows: Sequence[EventRow]) -> set[str]:
        ordered = sorted(rows, key=lambda r: r.id)
        columns = ([r.id for r in ordered], [r.trace_id for r in ordered], [r.time for r in ordered],
                   [r.body for r in ordered])
        all_search = search_rows(project, ((r.trace_id, r.body) for r in ordered))  # the usual case: all new

        def tx(conn: psycopg.Connection[Any]) -> set[str]:
            with conn.cursor() as cur:
                cur.execute(_INSERT, (project, *columns))
                stored = {r[0] for r in cur.fetchall()}
                ups = rollup(r for r in ordered if r.id in stored)
                if ups:
                    cur.execute(_UPSERT_TRACES, (project, *(list(col) for col in zip(*ups, strict=True))))
            self._index_events(conn, all_search if len(stored) == len(ordered) else search_rows(
                project, ((r.trace_id, r.body) for r in ordered if r.id in stored)))
            return {r.id for r in ordered if r.id not in stored}

        return self._tx(tx) if ordered else set()

    def _text_match(self, needle: str) -> tuple[str, list[Any]]:
        # The GIN index finds the events holding the phrase's words in a row ('simple': no stemming, no
        # stop words); strpos keeps those holding it as typed.
        if any(c.isalnum() for c in needle):
            return ("to_tsvector('simple', text) @@ phraseto_tsquery('simple', ?) AND project = ? "
                    "AND strpos(text, ?) > 0", [needle])
        return "project = ? AND strpos(text, ?) > 0", []

    def _trace_rows(self, project: str, trace_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        return self._tx(lambda c: c.execute(
            "SELECT trace_id, id, body FROM events WHERE project = %s AND trace_id = ANY(%s) ORDER BY time, id",
            (project, list(trace_ids))).fetchall())

    def rows_by_id(self, project: str, event_ids: Sequence[str]) -> list[tuple[str, str]]:
        if not event_ids:
            return []
        rows = self._tx(lambda c: c.execute(
            "SELECT id, body FROM events WHERE project = %s AND id = ANY(%s) ORDER BY time, id",
            (project, list(event_ids))).fetchall())
        return [(event_id, body) for event_id, body in rows]

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

    def close(self) -> None:
        self._stop_backfill()
        with self._ping_lock:
            if self._ping_conn is not None:
                self._ping_conn.close()
                self._ping_conn = None
        self._pool.close()
