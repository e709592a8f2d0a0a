"""The plans of the read API's queries on a PostgreSQL store of 10,000,000 events (1,000,000 traces over
30 days, generated server-side): each statement a read runs uses an index, never a Seq Scan on events or
traces, and a trace's events are read from the partitions of its time range only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.server.conftest import fresh_pg_database
from tracewire.read.query import TraceQuery
from tracewire.server.partitions import DAY_NS, create_days
from tracewire.server.store import TraceFilter
from tracewire.server.store_postgres import PostgresStore

EVENTS = 10_000_000
TRACES = EVENTS // 10  # 10 events a trace
PROJECT = "big"


def _hex(expr: str) -> str:
    return f"lpad(to_hex({expr}), 32, '0')"


def _generate(dsn: str) -> int:
    """Fill the store; returns the time of event 0. Event g is of trace g / 10, a step apart over 30 days;
    every 10th trace has search text (every 1,000th holds 'walrus') and a framework facet."""
    now = time.time_ns()
    base, step = now - 30 * DAY_NS, 30 * DAY_NS // EVENTS
    with psycopg.connect(dsn, autocommit=True) as c:
        create_days(c, range(base // DAY_NS, now // DAY_NS + 1))
        # The events indexes are built once the rows are in: a sorted build is far quicker than 10M inserts
        # into them. They are recreated from their own definitions, so the plans are of the real schema.
        pk = c.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                       " WHERE conrelid = 'events'::regclass AND contype = 'p'").fetchone()
        indexes = [(name, d.replace(" ON ONLY ", " ON ")) for name, d in c.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = 'events'::regclass AND NOT i.indisprimary")]
        assert pk is not None and indexes
        c.execute(f"ALTER TABLE events DROP CONSTRAINT {pk[0]}")  # type: ignore[arg-type]
        for name, _ in indexes:
            c.execute(f"DROP INDEX {name}")  # type: ignore[arg-type]

    def insert(lo: int, hi: int) -> None:  # two connections: the machine's two cores
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("SET synchronous_commit = off")
            c.execute(f"INSERT INTO events (project, id, trace_id, time, body) SELECT '{PROJECT}', {_hex('g')},"  # type: ignore[arg-type]
                      f" {_hex('g / 10')}, {base} + g * {step}, '{{\"id\": \"x\"}}'"
                      f" FROM generate_series({lo}::bigint, {hi}) g")

    threads = [threading.Thread(target=insert, args=(i * EVENTS // 2, (i + 1) * EVENTS // 2 - 1)) for i in range(2)]
    for t in threads:
        t.start()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f"INSERT INTO traces (project, trace_id, start_ns, end_ns, session_id, user_id, events)"  # type: ignore[arg-type]
                  f" SELECT '{PROJECT}', {_hex('k')}, {base} + k * 10 * {step}, {base} + (k * 10 + 9) * {step},"
                  f" 's' || (k % 5000), 'u' || (k % 500), 10 FROM generate_series(0::bigint, {TRACES - 1}) k")
        c.execute(f"INSERT INTO event_text (project, trace_id, text, time) SELECT '{PROJECT}', {_hex('k')},"  # type: ignore[arg-type]
                  f" 'asked about ' || CASE WHEN k % 1000 = 0 THEN 'walrus ' ELSE 'weather ' END || k,"
                  f" {base} + k * 10 * {step} FROM generate_series(0::bigint, {TRACES - 1}, 10) k")
        c.execute(f"INSERT INTO trace_facets (project, trace_id, facet, value) SELECT '{PROJECT}', {_hex('k')},"  # type: ignore[arg-type]
                  " 'framework', CASE WHEN k % 1000 = 0 THEN 'crewai' ELSE 'langchain' END"
                  f" FROM generate_series(0::bigint, {TRACES - 1}, 10) k")
    for t in threads:
        t.join()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET maintenance_work_mem = '256MB'")
        c.execute(f"ALTER TABLE events ADD CONSTRAINT {pk[0]} {pk[1]}")  # type: ignore[arg-type]
        for _, definition in indexes:
            c.execute(definition)  # type: ignore[arg-type]
        c.execute("ANALYZE")
    return base


class _Recorder:
    """A connection that keeps each statement run through it (and runs it)."""

    def __init__(self, conn: Any, seen: list[tuple[str, Any]]) -> None:
        self._conn, self._seen = conn, seen

    def execute(self, sql: str, args: Any = None) -> Any:
        self._seen.append((sql, args))
        return self._conn.execute(sql, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class RecordingStore(PostgresStore):
    """The PostgreSQL store, keeping the statements its reads run."""

    def __init__(self, dsn: str, **options: Any) -> None:
        self.seen: list[tuple[str, Any]] = []
        super().__init__(dsn, **options)

    def _tx(self, fn: Callable[[Any], Any], attempts: int = 3) -> Any:
        return super()._tx(lambda conn: fn(_Recorder(conn, self.seen)), attempts)


@pytest.fixture(scope="module")
def big(pg_admin_dsn: str) -> Iterator[tuple[RecordingStore, int]]:
    dsn, drop = fresh_pg_database(pg_admin_dsn)
    try:
        PostgresStore(dsn, max_size=1).close()  # the schema, by the store's migrations
        started = time.monotonic()
        base = _generate(dsn)
        print(f"generated {EVENTS:,} events in {time.monotonic() - started:.0f} s")
        store = RecordingStore(dsn, max_size=2)
        try:
            yield store, base
        finally:
            store.close()
    finally:
        drop()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _explain(store: RecordingStore, read: Callable[[], Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Run a read, then EXPLAIN ANALYZE each statement it ran with its own parameters: (sql, plan nodes)."""
    store.seen = []
    read()
    out = []
    with psycopg.connect(store.dsn) as conn:
        for sql, args in store.seen:
            plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, args).fetchone()[0][0]["Plan"]  # type: ignore[index, operator]
            out.append((sql, list(_nodes(plan))))
    return out


def _assert_indexed(plans: list[tuple[str, list[dict[str, Any]]]]) -> None:
    assert plans
    for sql, nodes in plans:
        scans = [(n["Node Type"], n.get("Relation Name", "")) for n in nodes if "Scan" in n["Node Type"]]
        seq = [rel for kind, rel in scans if kind == "Seq Scan" and (rel == "traces" or rel.startswith("events"))]
        assert not seq, f"Seq Scan on {seq}: {sql}"
        assert any("Index" in kind for kind, _ in scans), f"no index used: {sql} {scans}"


READS: dict[str, Callable[[PostgresStore, int], Any]] = {
    "list newest": lambda s, b: s.trace_ids(PROJECT, TraceFilter(), 50, 0),
    "list oldest": lambda s, b: s.query_trace_ids(PROJECT, TraceFilter(), TraceQuery(sort="start", descending=False),
                                                  50, 0),
    "list a time range": lambda s, b: s.trace_ids(PROJECT, TraceFilter(start=b + 10 * DAY_NS, end=b + 11 * DAY_NS),
                                                  50, 100),
    "list a session": lambda s, b: s.trace_ids(PROJECT, TraceFilter(session_id="s42"), 50, 0),
    "list a user": lambda s, b: s.trace_ids(PROJECT, TraceFilter(user_id="u7"), 50, 0),
    "list a framework": lambda s, b: s.query_trace_ids(PROJECT, TraceFilter(), TraceQuery(framework="crewai"), 50, 0),
    "search a phrase": lambda s, b: s.query_trace_ids(PROJECT, TraceFilter(), TraceQuery(text="about walrus"), 50, 0),
    "trace by id": lambda s, b: s.rows_of(PROJECT, [f"{123_456:032x}"]),
    "trace version": lambda s, b: s.trace_version(PROJECT, f"{123_456:032x}"),
    "id prefix": lambda s, b: s.match_trace_ids(PROJECT, f"{123_456:032x}"[:28]),
    "short id": lambda s, b: s.short_trace_id(PROJECT, f"{123_456:032x}"),
    "events by id": lambda s, b: s.rows_by_id(PROJECT, [f"{1_234_567:032x}", f"{7_654_321:032x}"]),
    "sessions": lambda s, b: s.session_ids(PROJECT, "u7", None, None, 20),
}


@pytest.mark.parametrize("read", list(READS))
def test_each_read_uses_an_index_and_no_seq_scan(big: tuple[RecordingStore, int], read: str) -> None:
    store, base = big
    _assert_indexed(_explain(store, lambda: READS[read](store, base)))


def test_the_reads_answer_from_the_generated_store(big: tuple[RecordingStore, int]) -> None:
    store, _ = big
    assert store.count_events(PROJECT) == EVENTS
    assert len(store.rows_of(PROJECT, [f"{123_456:032x}"])[f"{123_456:032x}"]) == 10
    assert len(store.query_trace_ids(PROJECT, TraceFilter(), TraceQuery(text="about walrus"), 2000, 0)) == TRACES // 1000


def test_a_trace_is_read_from_the_partitions_of_its_time_range_only(big: tuple[RecordingStore, int]) -> None:
    store, _ = big
    plans = _explain(store, lambda: store.rows_of(PROJECT, [f"{123_456:032x}"]))
    (sql, nodes), = [(sql, nodes) for sql, nodes in plans if "FROM events" in sql]
    partitions = {n["Relation Name"] for n in nodes if n.get("Relation Name", "").startswith("events_p")}
    run = {n["Relation Name"] for n in nodes if n.get("Relation Name", "").startswith("events_p")
           and n.get("Actual Loops", 0) > 0}
    assert len(partitions) >= 30 or any(n.get("Subplans Removed") for n in nodes)  # the store has ~31 days
    assert 1 <= len(run) <= 2, run  # the trace's day (and the next, were it to cross midnight)
