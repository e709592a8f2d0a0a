"""The otlp sink beside a local one: a receiver that is down holds up nothing local. The local
SQLite copy keeps being written while the otlp lane retries; once the receiver is back, the
lane delivers everything and the counters settle."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import tracewire
from tests.otel.otel_receiver import Phoenix, TcpRelay
from tracewire.engine.stats import balanced
from tracewire.model import attributes as A


def local_count(db: Path, trace_id: str) -> int:
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("select count(*) from events where trace_id = ?", (trace_id,)).fetchone()[0])
        except sqlite3.OperationalError:  # the sink has not created its table yet
            return 0


def test_sqlite_keeps_writing_while_the_receiver_is_down(phoenix: Phoenix, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "local.db"
    relay = TcpRelay(phoenix.http_port)  # refuses connections until up()
    try:
        client = tracewire.init(sink=["sqlite", "otlp"], db=str(db), otlp_endpoint=f"http://127.0.0.1:{relay.port}",
                                otlp_timeout=2, flush_interval=0.01)
        with tracewire.span("agent", "planner") as root:
            for i in range(3):
                client.start_span("llm", "ChatOpenAI", attributes={A.REQUEST_MODEL: "gpt-4o-mini"}).end(
                    output=f"answer {i}", attributes={A.USAGE_INPUT_TOKENS: 10 + i, A.USAGE_OUTPUT_TOKENS: 2})
        # every event reaches the local store although the otlp export keeps failing
        deadline = time.monotonic() + 5
        while local_count(db, root.trace_id) < 8:
            assert time.monotonic() < deadline, (local_count(db, root.trace_id), client.stats())
            time.sleep(0.02)
        while not client.stats()["retries"].get("otlp"):  # the export failed, the lane retries it
            assert time.monotonic() < deadline + 10, client.stats()
            time.sleep(0.02)
        assert not client.flush(0.3)  # the otlp lane has not delivered them: not written yet
        stats = client.stats()
        assert stats["pending"] == 8 and stats["written"] == 0 and balanced(stats), stats
        assert "sqlite" not in stats["retries"]

        relay.up()
        assert client.flush(30)
        stats = client.stats()
        assert stats["written"] == stats["emitted"] == 8 and not stats["dropped"] and stats["pending"] == 0, stats
        spans = phoenix.trace(root.trace_id, 4)
        assert sorted(s["name"] for s in spans) == ["chat gpt-4o-mini"] * 3 + ["invoke_agent planner"]
        assert sorted(s["attributes"][A.USAGE_INPUT_TOKENS] for s in spans if s["name"].startswith("chat")) == [10, 11, 12]
        assert all(s["parent_id"] == root.span_id for s in spans if s["name"].startswith("chat"))
        assert tracewire.shutdown()
    finally:
        relay.close()
    assert local_count(db, root.trace_id) == 8  # stored once, not once per attempt


def test_a_lane_backlog_past_its_bound_is_dropped_and_counted(tmp_path: Path, monkeypatch: Any) -> None:
    """With the receiver gone for good, the lane keeps at most `queue_max_bytes` of backlog: the
    oldest batches are dropped for otlp (counted as otlp:backlog_full) while SQLite has them all."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "local.db"
    relay = TcpRelay(1)  # never up
    client = tracewire.init(sink=["sqlite", "otlp"], db=str(db), otlp_endpoint=f"http://127.0.0.1:{relay.port}",
                            otlp_timeout=1, flush_interval=0.01, queue_max_bytes=64 * 1024)
    with tracewire.span("agent", "flood") as root:
        for i in range(200):
            client.start_span("tool", f"t{i}", input={"text": "x" * 500}).end(output="ok")
            if i % 20 == 19:
                time.sleep(0.05)  # several worker passes, so the lane holds several batches
    deadline = time.monotonic() + 10
    while local_count(db, root.trace_id) < 402:
        assert time.monotonic() < deadline, client.stats()
        time.sleep(0.02)
    stats = client.stats()
    assert stats["dropped"].get("otlp:backlog_full", 0) > 0, stats
    assert balanced(stats), stats
    assert not tracewire.shutdown(timeout=3)  # what the lane still held could not be delivered
    relay.close()
