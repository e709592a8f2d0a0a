"""Stores written by the release before day partitions (tests/server/fixtures, schema version 4) are
upgraded in place on both backends: their data reads back the same, the versions are recorded, and a
second start changes nothing."""

from __future__ import annotations

import glob
import json
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import fresh_pg_database
from tracewire.read.query import TraceQuery
from tracewire.server.backends import open_store
from tracewire.server.store import EventRow, Store, TraceFilter

FIXTURES = Path(__file__).parent / "fixtures"
AA, BB, CC = "aa" * 16, "bb" * 16, "cc" * 16  # the fixture's traces (make_store_fixtures.TRACES)
DAY0 = 1_793_491_200 * 10**9  # 2026-11-01, the first day the fixture's events fall in
ALL_VERSIONS = [1, 2, 3, 4, 5, 6]


@pytest.fixture(params=["sqlite", "postgresql"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(backend, URL) of a copy of the version-4 fixture."""
    if request.param == "sqlite":
        path = tmp_path / "collector.db"
        shutil.copy(FIXTURES / "collector_v4.db", path)
        yield "sqlite", f"sqlite:///{path}"
        return
    dsn, drop = fresh_pg_database(request.getfixturevalue("pg_admin_dsn"))
    psql = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
    try:
        subprocess.run([psql, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(FIXTURES / "collector_v4_pg.sql"), dsn],
                       check=True, capture_output=True)
        yield "postgresql", dsn
    finally:
        drop()


def _query(backend: str, url: str, sql: str) -> list[tuple[Any, ...]]:
    if backend == "sqlite":
        with closing(sqlite3.connect(url[len("sqlite:///"):])) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    import psycopg

    with psycopg.connect(url) as pg:
        return [tuple(r) for r in pg.execute(sql).fetchall()]  # type: ignore[arg-type]


def _schema(backend: str, url: str) -> list[tuple[Any, ...]]:
    if backend == "sqlite":
        return _query(backend, url, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    return _query(backend, url, "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                                " ORDER BY relname")


def _reads_back(store: Store) -> None:
    """What the fixture holds, read through the store as the collector reads it."""
    assert store.trace_ids("demo", TraceFilter(), 10, 0) == [CC, BB, AA]
    assert store.query_trace_ids("demo", TraceFilter(), TraceQuery(text="quokka"), 10, 0) == [BB]
    assert store.query_trace_ids("demo", TraceFilter(), TraceQuery(framework="manual", meta=(("env", "prod"),)),
                                 10, 0) == [CC, BB, AA]
    assert store.trace_ids("demo", TraceFilter(session_id="s0"), 10, 0) == [CC, AA]
    rows = store.rows_of("demo", [CC])[CC]
    assert [i for i, _ in rows] == ["cccccccc-0", "cccccccc-1"]  # both sides of midnight
    assert [json.loads(b)["phase"] for _, b in store.rows_by_id("demo", ["cccccccc-1", "aaaaaaaa-0"])] == [
        "start", "end"]
    assert store.trace_version("demo", AA) == (2, DAY0 + 3_600 * 10**9, DAY0 + 3_720 * 10**9)
    assert [s["name"] for s in store.scores("demo", trace_ids=[AA])] == ["helpful"]
    key = store.get_key("0123456789ab")
    assert key is not None and key.scopes == ("ingest", "read")
    assert store.reported_loss() == [("demo", "queue_full", 3)]
    assert store.count_events("demo") == 6


def test_a_version_4_store_is_upgraded_in_place_and_a_second_start_is_a_no_op(old_store: tuple[str, str]) -> None:
    backend, url = old_store
    assert _query(backend, url, "SELECT version FROM schema_migrations ORDER BY version") == [(1,), (2,), (3,), (4,)]
    store = open_store(url)
    try:
        _reads_back(store)
    finally:
        store.close()
    assert [v for (v,) in _query(backend, url, "SELECT version FROM schema_migrations ORDER BY version")] == ALL_VERSIONS
    schema = _schema(backend, url)
    if backend == "postgresql":
        # one partition per day that had events, of events and of the search text, rows carried over
        assert sorted(n for n, _ in _query(backend, url, "SELECT tableoid::regclass::text, 1 FROM events")) == [
            "events_p20261101"] * 2 + ["events_p20261102"] * 3 + ["events_p20261103"]
        assert _query(backend, url, "SELECT relkind FROM pg_class WHERE relname IN ('events', 'event_text')") == [
            ("p",), ("p",)]
        assert {"event_text_p20261101", "event_text_p20261102", "event_text_p20261103",
                "events_v4"} & {n for n, _ in schema} == {"event_text_p20261101", "event_text_p20261102",
                                                           "event_text_p20261103"}
    store = open_store(url)  # the second start: nothing to do
    try:
        _reads_back(store)
        assert _schema(backend, url) == schema
        # the upgraded store takes new events, on a new day, and knows an old one when it is resent
        old = json.loads(dict(store.rows_of("demo", [AA])[AA])["aaaaaaaa-0"])
        now = time.time_ns()
        new = EventRow("new-1", "dd" * 16, now, None, None, json.dumps({"id": "new-1", "input": "a walrus"}))
        resent = EventRow("aaaaaaaa-0", AA, old["time"], "s0", "u1", json.dumps(old))
        assert store.insert_events("demo", [new, resent]) == {"aaaaaaaa-0"}
        assert store.query_trace_ids("demo", TraceFilter(), TraceQuery(text="walrus"), 10, 0) == ["dd" * 16]
        assert store.count_events("demo") == 7
    finally:
        store.close()
    assert [v for (v,) in _query(backend, url, "SELECT version FROM schema_migrations ORDER BY version")] == ALL_VERSIONS
