"""Retention of a collector's store: `tracewire serve --retention` (at start, then hourly) and `tracewire
prune --collector-db`. PostgreSQL drops whole day partitions and every trace that started before the first
day kept; SQLite deletes whole traces whose newest event is older than the window. Kept traces read the
same (list, fetch, search) and the counts are reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from collector_harness import Collector, start_collector

from tests.server.conftest import fresh_pg_database
from tracewire.read.query import TraceQuery
from tracewire.server.backends import open_store
from tracewire.server.partitions import DAY_NS, existing_days
from tracewire.server.store import EventRow, ScoreRow, Store, TraceFilter

WINDOW_NS = 30 * DAY_NS


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path}/collector.db"
        return
    url, drop = fresh_pg_database(request.getfixturevalue("pg_admin_dsn"))
    try:
        yield "postgresql", url
    finally:
        drop()


def _event(trace_id: str, n: int, time_ns: int, word: str) -> EventRow:
    event_id = f"{trace_id[:6]}-{n}"
    body = {"id": event_id, "schema": 1, "type": "agent.start" if n == 0 else "agent.end", "kind": "agent",
            "phase": "start" if n == 0 else "end", "trace_id": trace_id, "span_id": f"{trace_id[:6]}-span",
            "parent_span_id": None, "session_id": None, "user_id": None, "name": f"run-{word}",
            "framework": "manual", "time": time_ns, "seq": n + 1, "attributes": {}, "input": {"q": f"the {word}"}}
    return EventRow(event_id, trace_id, time_ns, None, None, json.dumps(body))


def _fill(store: Store, project: str) -> dict[str, str]:
    """Three traces: one whole days before the window; one that starts the day before the first day kept
    and ends inside the window (cut by the boundary); a recent one. The old and the recent are scored."""
    now = time.time_ns()
    boundary = (now - WINDOW_NS) // DAY_NS * DAY_NS  # the first day PostgreSQL keeps
    ids = {"old": uuid.uuid4().hex, "cut": uuid.uuid4().hex, "recent": uuid.uuid4().hex}
    rows = [_event(ids["old"], 0, boundary - 10 * DAY_NS, "pelican"),
            _event(ids["old"], 1, boundary - 10 * DAY_NS + 10**9, "pelican"),
            _event(ids["cut"], 0, boundary - 60 * 10**9, "quokka"),
            _event(ids["cut"], 1, now - 29 * DAY_NS, "quokka"),
            _event(ids["recent"], 0, now - DAY_NS, "zebrafish"),
            _event(ids["recent"], 1, now - DAY_NS + 10**9, "zebrafish")]
    assert store.insert_events(project, rows) == set()
    store.upsert_scores(project, [
        ScoreRow(f"score-{what}", "helpful", ids[what], None, None, now, json.dumps(
            {"id": f"score-{what}", "name": "helpful", "value": 1.0, "trace_id": ids[what], "time": now}))
        for what in ("old", "recent")])
    return ids


def _expected(backend: str) -> tuple[set[str], str]:
    """The traces that go, and the counts line."""
    if backend == "postgresql":  # the cut trace goes whole: it started before the first day kept
        return {"old", "cut"}, "2 traces, 4 events, 1 score, 2 partitions"
    return {"old"}, "1 trace, 2 events, 1 score, 0 partitions"


def _ids(collector: Collector, key: Any, **params: Any) -> list[str]:
    r = collector.get("/v1/traces", key, limit=100, **params)
    assert r.status_code == 200, r.text
    return [t["trace_id"] for t in r.json()["traces"]]


def test_serve_retention_deletes_what_is_older_than_the_window(db: tuple[str, str], tmp_path: Path) -> None:
    backend, url = db
    store = open_store(url)
    try:
        project = f"p-{uuid.uuid4().hex[:8]}"
        ids = _fill(store, project)
        days_before = len(existing_days_of(store))
    finally:
        store.close()
    gone, counts = _expected(backend)
    collector = start_collector(backend, url, tmp_path, "--retention", "30d", "--log-level", "info")
    try:
        key = collector.new_key(project)
        deadline = time.monotonic() + 30
        while "retention: deleted" not in collector.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"retention: deleted {counts}" in collector.log.read_text()
        metrics = collector.get("/metrics").text
        assert f'tracewire_retention_deleted_total{{what="traces"}} {len(gone)}' in metrics
        assert f'tracewire_retention_deleted_total{{what="events"}} {2 * len(gone)}' in metrics

        kept = [ids[w] for w in ("recent", "cut", "old") if w not in gone]
        assert _ids(collector, key) == kept  # newest first
        for what, trace_id in ids.items():
            r = collector.get(f"/v1/traces/{trace_id}", key)
            if what in gone:
                assert r.status_code == 404, r.text
            else:
                assert r.status_code == 200 and len(r.json()["events"]) == 2, r.text
        assert _ids(collector, key, q="zebrafish") == [ids["recent"]]
        assert _ids(collector, key, q="pelican") == []
        assert _ids(collector, key, q="quokka") == ([] if "cut" in gone else [ids["cut"]])
        assert [s["trace_id"] for s in collector.store.scores(project)] == [ids["recent"]]
        assert collector.store.count_events(project) == 6 - 2 * len(gone)
        if backend == "postgresql":
            assert len(existing_days_of(collector.store)) == days_before - 2
    finally:
        collector.close()


def existing_days_of(store: Any) -> dict[int, list[str]]:
    """The day partitions of a PostgreSQL store (none on SQLite)."""
    if getattr(store, "backend", "") != "postgresql":
        return {}
    return dict(store._tx(existing_days))


def _prune(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracewire.cli", "prune", *args], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "TRACEWIRE_COLLECTOR_DB"}, timeout=120)


def test_prune_collector_db_counts_then_deletes(db: tuple[str, str]) -> None:
    backend, url = db
    store = open_store(url)
    try:
        project = "demo"
        ids = _fill(store, project)
        gone, counts = _expected(backend)
        dry = _prune("--collector-db", url, "--older-than", "30d", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.startswith(f"would delete {counts} older than ")
        assert store.count_events(project) == 6  # a dry run changes nothing
        out = _prune("--collector-db", url, "--older-than", "30d")
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(f"deleted {counts} older than ")
        assert store.trace_ids(project, TraceFilter(), 10, 0) == [ids[w] for w in ("recent", "cut") if w not in gone]
        again = _prune("--collector-db", url, "--older-than", "30d")
        assert again.stdout.startswith("deleted 0 traces, 0 events, 0 scores, 0 partitions")
    finally:
        store.close()


def test_prune_collector_db_refuses_bad_options(tmp_path: Path) -> None:
    missing = _prune("--collector-db", f"sqlite:///{tmp_path}/none.db", "--older-than", "30d")
    assert missing.returncode == 1 and "no collector store" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    both = _prune("--collector-db", "sqlite:///x.db", "--db", "y.db", "--older-than", "30d")
    assert both.returncode == 2 and "--collector-db: not with --db" in both.stderr
    bad = _prune("--collector-db", "host=x dbname=y", "--older-than", "30d")
    assert bad.returncode == 2 and "--collector-db takes a URL" in bad.stderr


def test_serve_refuses_a_retention_that_is_not_an_age(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "tracewire.server.cli", "serve", "--db",
                          f"sqlite:///{tmp_path}/c.db", "--retention", "2026-01-01"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--retention" in out.stderr and "30d" in out.stderr


@pytest.fixture
def pg_url(pg_admin_dsn: str) -> Iterator[str]:
    url, drop = fresh_pg_database(pg_admin_dsn)
    try:
        yield url
    finally:
        drop()


def test_replicas_take_turns_and_one_writes_into_a_day_another_dropped(pg_url: str) -> None:
    """Two stores on one database, as two replicas: while one holds the retention lock the other skips
    its run; a day one replica dropped is created again when the other, which still thinks it exists,
    stores an event of that day; concurrent first writes of a new day create it once."""
    import psycopg

    from tracewire.server.store_postgres import RETENTION_LOCK

    a, b = open_store(pg_url), open_store(pg_url)
    try:
        ids = _fill(a, "demo")
        with psycopg.connect(pg_url, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK,))
            assert b.prune_before(time.time_ns() - WINDOW_NS) is None
            busy = _prune("--collector-db", pg_url, "--older-than", "30d")
            assert busy.returncode == 1 and "another collector is pruning" in busy.stderr
            holder.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK,))
        done = b.prune_before(time.time_ns() - WINDOW_NS)
        assert done is not None and (done.traces, done.partitions) == (2, 2)

        late = _event(ids["old"], 5, (time.time_ns() - 40 * DAY_NS), "pelican")  # a's cache still has its day
        assert a.insert_events("demo", [late]) == set()
        assert [i for i, _ in a.rows_of("demo", [ids["old"]])[ids["old"]]] == [late.id]

        future = time.time_ns() + 3 * DAY_NS  # a day neither has seen, written by both at once
        errors: list[BaseException] = []

        def write(store: Store, n: int) -> None:
            try:
                store.insert_events("demo", [_event(uuid.uuid4().hex, n, future + n, "heron")])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate((a, b, a, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(a.query_trace_ids("demo", TraceFilter(), TraceQuery(text="heron"), 10, 0)) == 4
    finally:
        a.close()
        b.close()
