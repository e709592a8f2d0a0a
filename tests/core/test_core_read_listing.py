"""The local store's listing at depth: pages of folded filters, the name filter past the newest traces,
the indexes it asks SQLite through, and a store from an earlier release gaining them in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import tracewire
from tracewire.read.local import LocalStore
from tracewire.read.query import TraceQuery
from tracewire.sinks.sqlite_table import connect

OLDEST = ("needle one", "needle two", "Ünïcode needle")  # older than the first scan chunk of candidates


@pytest.fixture
def db(tmp_path: Path) -> str:
    """260 traces: the three oldest named for OLDEST, every tenth failing, two users."""
    path = str(tmp_path / "deep.db")
    client = tracewire.init(db=path)
    names = [*OLDEST, *(f"turn {i:03d}" for i in range(257))]
    for i, name in enumerate(names):
        with tracewire.session(session_id=f"s-{i % 3}", user_id=f"u-{i % 2}"):
            try:
                with tracewire.span("agent", name), tracewire.span("tool", "lookup"):
                    if i % 10 == 9:
                        raise TimeoutError("lookup timed out")
            except TimeoutError:
                pass
    assert client.flush(10)
    tracewire.shutdown()
    return path


def test_pages_of_folded_filters_and_names_past_the_newest(db: str) -> None:
    store = LocalStore(db)
    try:
        everything = [s["trace_id"] for s in store.list_traces(1000)]
        assert len(everything) == 260
        assert [s["trace_id"] for s in store.list_traces(20, 40)] == everything[40:60]
        assert store.list_traces(0) == [] and store.list_traces(5, 300) == []
        failed = store.list_traces(1000, query=TraceQuery(status="error"))
        assert len(failed) == 26 and all(s["failed"] == "tool lookup" for s in failed)
        page = store.list_traces(5, 10, query=TraceQuery(status="error"))
        assert [s["trace_id"] for s in page] == [s["trace_id"] for s in failed[10:15]]
        ok = store.list_traces(10, 230, query=TraceQuery(status="ok"))
        assert len(ok) == 4 and all(s["status"] == "ok" for s in ok)
        # the newest 200 hold none of them: found by the SQL pre-selection, then checked on the fold
        assert [s["name"] for s in store.list_traces(10, query=TraceQuery(name="NEEDLE"))] == list(reversed(OLDEST))
        assert [s["name"] for s in store.list_traces(10, query=TraceQuery(name="needle t"))] == ["needle two"]
        assert [s["name"] for s in store.list_traces(10, query=TraceQuery(name="üNÏ"))] == ["Ünïcode needle"]
        assert store.list_traces(10, query=TraceQuery(name="lookup")) == []  # a child's name is not the trace's
        assert store.list_traces(10, query=TraceQuery(name="%")) == []  # LIKE's wildcards are literal
        assert len(store.list_traces(1000, query=TraceQuery(user_id="u-1", status="error"))) == 26
    finally:
        store.close()


def test_listing_filters_are_answered_by_indexes(db: str) -> None:
    conn = sqlite3.connect(db)
    try:
        def plan(sql: str) -> str:
            return " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, ("x",) * sql.count("?")))

        listing = plan("SELECT trace_id, MIN(time) AS t FROM events WHERE trace_id IS NOT NULL GROUP BY trace_id")
        assert "COVERING INDEX events_trace_time" in listing
        assert "events_user" in plan("SELECT trace_id FROM events WHERE user_id = ?")
        assert "events_error" in plan("SELECT trace_id FROM events WHERE phase = 'error'")
    finally:
        conn.close()


def test_a_store_from_an_earlier_release_gains_the_indexes_at_open(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE events (seq_no INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, trace_id TEXT,
            span_id TEXT, parent_span_id TEXT, type TEXT, kind TEXT, phase TEXT, name TEXT, session_id TEXT,
            user_id TEXT, time INTEGER, body TEXT NOT NULL);
        CREATE INDEX events_trace ON events(trace_id);
        CREATE INDEX events_session ON events(session_id);
        INSERT INTO events (id, trace_id, phase, user_id, time, body) VALUES ('e1', 't1', 'error', 'ada', 1, '{}');
    """)
    old.close()
    conn = connect(path)
    try:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
        assert indexes == {"events_trace_time", "events_session", "events_user", "events_error"}
        assert conn.execute("SELECT trace_id FROM events WHERE user_id = 'ada' AND phase = 'error'").fetchall() == [("t1",)]
    finally:
        conn.close()
