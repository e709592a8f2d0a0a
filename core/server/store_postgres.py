"""PostgreSQL backend: psycopg 3 with a connection pool; migrations applied at start.

Several collector replicas can share one database. Ingestion is one statement per batch:
`INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING id` — the (project, id, time)
primary key decides which concurrent request stores an event, and RETURNING says which ids this
request stored. Rows go in id order (and trace upserts in trace-id order), so overlapping concurrent
batches take their locks in the same order and cannot deadlock each other.

`events` and `event_text` are partitioned by day (tracewire.server.partitions, which says why the key
holds the time); a batch's missing days are created in a transaction of their own before its insert.

COPY was measured against the unnest statement (1,000 new events of ~560 bytes a batch, PostgreSQL 15 on
loopback, 2 shared cores, median of 20 batches): the unnest statement stores a batch in 50 ms; binary COPY
into a temporary table then `INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING` takes 80 ms (the
temporary table's creation and the second pass over the rows cost more than COPY saves on parsing), so
ingestion keeps the unnest statement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from tracewire.server.partitions import DAY_NS, create_days, day_of, existing_days, partition_migration
from tracewire.server.store import EventRow, StoreUnavailable, rollup
from tracewire.server.store_sql import Migration, SQLScores, SQLStore, migrations, search_rows
from tracewire.sinks.retention import Pruned

T = TypeVar("T")

MIGRATIONS: tuple[Migration, ...] = migrations(
    seq="bigserial", text="text", integer="bigint", real="double precision",
    text_table="CREATE TABLE event_text (project text NOT NULL, trace_id text NOT NULL, text text NOT NULL);\n"
               "    CREATE INDEX event_text_words ON event_text USING gin (to_tsvector('simple', text))",
    events_key=",\n        PRIMARY KEY (project, id)", retention=partition_migration)

# %b: arrays go in binary format; the text format escapes every quote of every JSON body (slow).
_INSERT = """
INSERT INTO events (project, id, trace_id, time, body)
SELECT %s, * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::text[])
ON CONFLICT (project, id, time) DO NOTHING
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
# A trace's events, read from the partitions of its time range only (the bounds come from `traces`).
TRACE_ROWS_SQL = (
    "SELECT trace_id, id, body FROM events WHERE project = %s AND trace_id = ANY(%s)"
    " AND time >= (SELECT min(start_ns) FROM traces WHERE project = %s AND trace_id = ANY(%s))"
    " AND time <= (SELECT max(end_ns) FROM traces WHERE project = %s AND trace_id = ANY(%s)) ORDER BY time, id")
ROWS_BY_ID_SQL = "SELECT id, body FROM events WHERE project = %s AND id = ANY(%s) ORDER BY time, id"
RETENTION_LOCK = 0x7472_6163_6572  # pg_try_advisory_lock key: one replica prunes at a time
PRUNE_TRACES = 1_000  # traces a retention transaction deletes
# The oldest traces that started before the boundary, deleted with what indexes them; (project, trace
# id, events) come back for the rows of theirs in kept partitions and the counts.
_PRUNE_TRACES_SQL = """
WITH doomed AS (
    SELECT project, trace_id FROM traces WHERE start_ns < %s ORDER BY start_ns LIMIT %s FOR UPDATE
)
DELETE FROM traces t USING doomed d WHERE t.project = d.project AND t.trace_id = d.trace_id
RETURNING t.project, t.trace_id, t.events
"""
_PRUNE_DEPENDENTS = (
    "DELETE FROM events e USING unnest(%s::text[], %s::text[]) d (project, trace_id)"
    " WHERE e.project = d.project AND e.trace_id = d.trace_id AND e.time >= %s",
    "DELETE FROM event_text e USING unnest(%s::text[], %s::text[]) d (project, trace_id)"
    " WHERE e.project = d.project AND e.trace_id = d.trace_id AND e.time >= %s",
    "DELETE FROM trace_facets f USING unnest(%s::text[], %s::text[]) d (project, trace_id)"
    " WHERE f.project = d.project AND f.trace_id = d.trace_id",
)
_PRUNE_SCORES = ("DELETE FROM scores s USING unnest(%s::text[], %s::text[]) d (project, trace_id)"
                 " WHERE s.project = d.project AND s.trace_id = d.trace_id")


class PostgresStore(SQLStore, SQLScores):  # SQLScores: the scores table, alike on both
    backend = "postgresql"
    PARAM = "%s"
    MIGRATIONS = MIGRATIONS
    TEXT_TIME = True
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
        self._days_lock = threading.Lock()
        self._days: set[int] = set()  # days whose partitions this process knows exist
        self._load_days()
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

    # -- partitions -------------------------------------------------------------------------------
    def _load_days(self) -> None:
        days = set(self._tx(existing_days))
        with self._days_lock:
            self._days = days

    def _ensure_days(self, times: Sequence[int]) -> None:
        """Create the partitions of these times' days that this process has not seen yet."""
        missing = {day_of(t) for t in times} - self._days
        if missing:
            self._tx(lambda c: create_days(c, missing))
            with self._days_lock:
                self._days |= missing

    # -- events ---------------------------------------------------------------------------------
    def insert_events(self, project: str, rows: Sequence[EventRow]) -> set[str]:
        if not rows:
            return set()
        self._ensure_days([r.time for r in rows])
        try:
            return self._insert(project, rows)
        except pg_errors.CheckViolation:  # no partition for a row: another replica's retention dropped its day
            self._load_days()
            self._ensure_days([r.time for r in rows])
            return self._insert(project, rows)

    def _insert(self, project: str, rows: Sequence[EventRow]) -> set[str]:
        ordered = sorted(rows, key=lambda r: r.id)
        columns = ([r.id for r in ordered], [r.trace_id for r in ordered], [r.time for r in ordered],
                   [r.body for r in ordered])
        all_search = search_rows(project, ((r.trace_id, r.body, r.time) for r in ordered))  # the usual case: all new

        def tx(conn: psycopg.Connection[Any]) -> set[str]:
            with conn.cursor() as cur:
                cur.execute(_INSERT, (project, *columns))
                stored = {r[0] for r in cur.fetchall()}
                ups = rollup(r for r in ordered if r.id in stored)
                if ups:
                    cur.execute(_UPSERT_TRACES, (project, *(list(col) for col in zip(*ups, strict=True))))
            self._index_events(conn, all_search if len(stored) == len(ordered) else search_rows(
                project, ((r.trace_id, r.body, r.time) for r in ordered if r.id in stored)))
            return {r.id for r in ordered if r.id not in stored}

        return self._tx(tx)

    def _text_match(self, needle: str) -> tuple[str, list[Any]]:
        # The GIN index finds the events holding the phrase's words in a row ('simple': no stemming, no
        # stop words); strpos keeps those holding it as typed.
        if any(c.isalnum() for c in needle):
            return ("to_tsvector('simple', text) @@ phraseto_tsquery('simple', ?) AND project = ? "
                    "AND strpos(text, ?) > 0", [needle])
        return "project = ? AND strpos(text, ?) > 0", []

    def _trace_rows(self, project: str, trace_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        ids = list(trace_ids)
        return self._tx(lambda c: c.execute(TRACE_ROWS_SQL, (project, ids) * 3).fetchall())

    def rows_by_id(self, project: str, event_ids: Sequence[str]) -> list[tuple[str, str]]:
        if not event_ids:
            return []
        rows = self._tx(lambda c: c.execute(ROWS_BY_ID_SQL, (project, list(event_ids))).fetchall())
        return [(event_id, body) for event_id, body in rows]

    # -- retention ----------------------------------------------------------------------------------
    def prune_before(self, cutoff_ns: int, *, dry_run: bool = False) -> Pruned | None:
        """Drop the day partitions that end at or before `cutoff_ns` and delete every trace that started
        before the first day kept, whole: its events and search text in kept partitions, its facets and
        scores, PRUNE_TRACES traces a transaction (never one unbounded DELETE). Traces go before the
        partitions, so no listed trace ever lacks its early events. None when another replica is pruning."""
        boundary = day_of(cutoff_ns) * DAY_NS
        conn: Any
        with self._pool.connection() as conn:
            conn.commit()
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (RETENTION_LOCK,)).fetchone()[0]:
                conn.commit()
                return None
            conn.commit()
            try:
                return self._prune(conn, boundary, dry_run)
            finally:
                conn.rollback()
                conn.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK,))
                conn.commit()

    def _prune(self, conn: Any, boundary: int, dry_run: bool) -> Pruned:
        old = sorted(name for day, names in existing_days(conn).items() if (day + 1) * DAY_NS <= boundary
                     for name in names)
        conn.commit()
        if dry_run:
            traces, events = conn.execute("SELECT count(*), coalesce(sum(events), 0) FROM traces WHERE start_ns < %s",
                                          (boundary,)).fetchone()
            scores = conn.execute("SELECT count(*) FROM scores s JOIN traces t ON t.project = s.project AND"
                                  " t.trace_id = s.trace_id WHERE t.start_ns < %s", (boundary,)).fetchone()[0]
            conn.commit()
            return Pruned(int(traces), int(events), int(scores), partitions=sum(n.startswith("events_") for n in old))
        total = Pruned()
        while True:
            with conn.transaction():
                found = conn.execute(_PRUNE_TRACES_SQL, (boundary, PRUNE_TRACES)).fetchall()
                if not found:
                    break
                projects, trace_ids = [r[0] for r in found], [r[1] for r in found]
                for statement in _PRUNE_DEPENDENTS:
                    conn.execute(statement, (projects, trace_ids, boundary)[:statement.count("%s")])
                total.scores += conn.execute(_PRUNE_SCORES, (projects, trace_ids)).rowcount
                total.traces += len(found)
                total.events += sum(int(r[2]) for r in found)
        for name in old:
            try:
                with conn.transaction():
                    # Dropping a partition locks its parent: ingest queues behind the request meanwhile,
                    # so it waits briefly; a busy day is dropped by the next run (its traces are gone).
                    conn.execute("SET LOCAL lock_timeout = '2s'")
                    conn.execute(f"DROP TABLE IF EXISTS {name}")
            except pg_errors.LockNotAvailable:
                continue
            total.partitions += name.startswith("events_")
        with self._days_lock:
            self._days = {d for d in self._days if d >= day_of(boundary)}
        return total

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
