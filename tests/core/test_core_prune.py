"""Retention of the local store: `tracewire prune --older-than` deletes whole old traces with their events,
scores and read-model rows, in batches and bounded memory; `max_store_bytes` keeps a store written
continuously under its cap."""

from __future__ import annotations

import contextvars
import datetime as dt
import gc
import resource
import sqlite3
import time
import tracemalloc
from contextlib import closing
from pathlib import Path

import pytest

import tracewire
from tests.core.test_core_cli import _cli
from tracewire.config import Config, ConfigError
from tracewire.read.index import TraceIndex, forget, forget_pruned
from tracewire.read.local import LocalStore
from tracewire.read.query import TraceQuery
from tracewire.sinks.retention import prune_older_than, used_bytes
from tracewire.sinks.sqlite_table import INSERT_HEAD, connect


def _count(db: str, sql: str, *args: object) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def _old_and_open(db: str) -> tuple[list[str], str, str, int]:
    """Two finished traces (one scored) before a cutoff, a finished and a half-written trace after it."""
    tracewire.init(db=db, flush_interval=0.01)
    old = []
    for word in ("zebrafish", "quokka"):
        with tracewire.span("agent", f"old-{word}", input={"q": word}) as s:
            tracewire.record("log", name="step", input=word)
        old.append(s.trace_id)
    tracewire.score("helpful", 1.0, trace_id=old[0])
    assert tracewire.flush(10)
    time.sleep(0.01)
    cutoff = time.time_ns()
    time.sleep(0.01)
    with tracewire.span("agent", "new-done", input={"q": "pelican"}) as s:
        pass
    done = s.trace_id
    # still running when the store is pruned (no end event), in a context of its own so that it is not
    # the parent of what later tests record
    running = contextvars.copy_context()
    opened = running.run(tracewire.span("agent", "new-open", input={"q": "heron"}).__enter__)
    running.run(tracewire.record, "log", name="step", input="heron")
    assert tracewire.flush(10)
    tracewire.shutdown()
    return old, done, opened.trace_id, cutoff


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).isoformat()


def test_prune_deletes_exactly_the_old_traces_with_scores_and_read_model_rows(tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    old, done, opened, cutoff = _old_and_open(db)
    old_events = _count(db, f"SELECT COUNT(*) FROM events WHERE trace_id IN ({','.join('?' * len(old))})", *old)
    total = _count(db, "SELECT COUNT(*) FROM events")
    assert old_events == 6 and _count(db, "SELECT COUNT(*) FROM scores") == 1
    ix = TraceIndex(db)
    assert ix.catch_up(10_000) == 0
    ix.stop()
    with closing(LocalStore(db)) as store:
        assert len(store.query_traces(TraceQuery(text="zebrafish"))) == 1

    dry = _cli("prune", "--older-than", _iso(cutoff), "--dry-run", db=db)
    assert dry.returncode == 0, dry.stderr
    assert "would delete 2 traces, 6 events, 1 score " in dry.stdout
    assert _count(db, "SELECT COUNT(*) FROM events") == total  # a dry run changes nothing
    assert _count(db, "SELECT COUNT(*) FROM trace_summaries") == 4

    out = _cli("prune", "--older-than", _iso(cutoff), db=db)
    assert out.returncode == 0, out.stderr
    assert "deleted 2 traces, 6 events, 1 score " in out.stdout
    assert "freed " in out.stdout and "--vacuum" in out.stdout
    assert _count(db, "SELECT COUNT(*) FROM events") == total - old_events
    assert _count(db, "SELECT COUNT(DISTINCT trace_id) FROM events") == 2
    assert _count(db, "SELECT COUNT(*) FROM scores") == 0
    assert _count(db, "SELECT COUNT(*) FROM trace_summaries") == 2
    assert _count(db, f"SELECT COUNT(*) FROM trace_facets WHERE trace_id IN ({','.join('?' * len(old))})", *old) == 0
    assert _count(db, "SELECT COUNT(*) FROM trace_text") == 2
    with closing(LocalStore(db)) as store:
        assert store.query_traces(TraceQuery(text="zebrafish")) == []
        assert {r["trace_id"] for r in store.query_traces(TraceQuery(), limit=10)} == {done, opened}
    listing = _cli("traces", "--full-ids", db=db)
    assert all(t not in listing.stdout for t in old) and opened in listing.stdout and done in listing.stdout

    again = _cli("prune", "--older-than", _iso(cutoff), "--vacuum", db=db)
    assert "deleted 0 traces, 0 events, 0 scores" in again.stdout and "VACUUM shrank the file" in again.stdout


def test_prune_keeps_a_trace_whose_newest_event_is_recent(tmp_path: Path) -> None:
    """A trace that began before the cutoff but was written to after it is kept whole."""
    db = str(tmp_path / "long.db")
    tracewire.init(db=db, flush_interval=0.01)
    with tracewire.span("agent", "long") as s:
        tracewire.record("log", name="early")
        assert tracewire.flush(10)
        time.sleep(0.01)
        cutoff = time.time_ns()
        time.sleep(0.01)
        tracewire.record("log", name="late")
    tracewire.shutdown()
    with closing(connect(db)) as conn:
        assert prune_older_than(conn, cutoff, forget=forget).traces == 0
    assert _count(db, "SELECT COUNT(*) FROM events WHERE trace_id = ?", s.trace_id) == 4


def test_prune_rejects_a_bad_duration_and_a_missing_store(tmp_path: Path) -> None:
    bad = _cli("prune", "--older-than", "soon", db=str(tmp_path / "x.db"))
    assert bad.returncode == 2 and "--older-than" in bad.stderr
    missing = _cli("prune", "--older-than", "30d", db=str(tmp_path / "none.db"))
    assert missing.returncode == 1 and "no store" in missing.stderr
    assert not (tmp_path / "none.db").exists()


def test_prune_of_1m_events_runs_in_bounded_memory(tmp_path: Path) -> None:
    db = str(tmp_path / "big.db")
    old_ns = time.time_ns() - 40 * 86400 * 10**9
    with closing(connect(db)) as conn:  # 100k traces of 10 events, made by SQLite itself (quicker than rows from here)
        conn.execute(
            f"{INSERT_HEAD} WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 999999)"
            " SELECT printf('%032x-%d', x / 10, x % 10), printf('%032x', x / 10), printf('%016x', x % 10), NULL, 'log',"
            " 'log', 'point', 'step', NULL, NULL, ? + (x / 10) * 1000 + x % 10, json_object('id',"
            " printf('%032x-%d', x / 10, x % 10), 'trace_id', printf('%032x', x / 10), 'input', ?) FROM n",
            (old_ns, "x" * 60))
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    with closing(connect(db)) as conn:
        done = prune_older_than(conn, time.time_ns() - 30 * 86400 * 10**9, forget=forget)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert (done.traces, done.events, done.scores) == (100_000, 1_000_000, 0)
    assert done.bytes_freed > 1_000_000 * 60
    assert _count(db, "SELECT COUNT(*) FROM events") == 0
    assert peak < 2 * 2**20, peak  # Python objects: one batch of trace ids at a time
    assert rss_growth_kib < 96 * 1024, rss_growth_kib  # SQLite's page cache is capped at 64 MiB


def test_max_store_bytes_keeps_a_store_under_its_cap_and_counts_what_it_deleted(tmp_path: Path) -> None:
    db = str(tmp_path / "capped.db")
    cap = 2 * 2**20
    client = tracewire.init(db=db, max_store_bytes=cap, batch_size=64, flush_interval=0.01)
    for n in range(400):
        with tracewire.span("agent", f"run-{n}", input={"q": "y" * 2000}):
            tracewire.record("log", name="step", input="z" * 2000)
        if n % 50 == 49:
            assert client.flush(10)
            if n == 49:  # a viewer indexed the store early on: its rows of deleted traces must go too
                ix = TraceIndex(db)
                ix.catch_up(100_000)
    assert client.flush(10)
    stats = client.stats()
    store = stats["store"]["sqlite"]
    tracewire.shutdown()
    with closing(connect(db)) as conn:
        used = used_bytes(conn)
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        left = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        whole = conn.execute("SELECT COUNT(*) FROM (SELECT trace_id FROM events GROUP BY trace_id HAVING COUNT(*) != 3)"
                             ).fetchone()[0]
    assert store["pruned_events"] > 0 and store["pruned_traces"] * 3 == store["pruned_events"]
    assert left + store["pruned_events"] == 1200  # every event written, then some deleted
    assert whole == 0  # traces were deleted whole
    # checked every 1/16 of the cap written: between two checks the store outgrows the cap by that at most
    assert used <= cap + cap // 16 + 4 * page, used
    assert stats["written"] == 1200 and not any(stats["dropped"].values())  # deleting is not dropping
    assert store["max_store_bytes"] == cap
    # the viewer catching up afterwards forgets the deleted traces the sink noted
    with closing(connect(db)) as conn:
        noted = conn.execute("SELECT COUNT(*) FROM pruned_traces").fetchone()[0]
    assert noted > 0
    assert ix.catch_up(100_000) == 0
    ix.stop()
    with closing(connect(db)) as conn:
        assert forget_pruned(conn) == 0  # nothing left: the catch-up did it
        summaries = {t for (t,) in conn.execute("SELECT trace_id FROM trace_summaries")}
        assert summaries == {t for (t,) in conn.execute("SELECT DISTINCT trace_id FROM events")}
        assert conn.execute("SELECT COUNT(*) FROM trace_text").fetchone()[0] == len(summaries)


def test_max_store_bytes_rejects_a_bad_value_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="max_store_bytes"):
        Config.resolve({"max_store_bytes": "lots"})
    with pytest.raises(ConfigError, match="TRACEWIRE_MAX_STORE_BYTES"):
        Config.resolve({}, {"TRACEWIRE_MAX_STORE_BYTES": "10"})
    assert Config.resolve({}, {"TRACEWIRE_MAX_STORE_BYTES": str(2**30)}).max_store_bytes == 2**30
    assert Config.resolve({}, {}).max_store_bytes is None
