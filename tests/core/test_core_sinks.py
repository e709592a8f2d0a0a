"""The local sinks as the issue requires them: SQLite idempotent on id, WAL and readable while the
app writes; JSONL appends one envelope a line; the worker's batches respect `batch_bytes` and `batch_size`."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

import tracewire
from tests.core.test_core_cli import _cli
from tracewire.sinks.base import BaseSink, Batch, WriteResult
from tracewire.sinks.sqlite import SQLiteSink

ENVELOPE = {"id", "schema", "type", "kind", "phase", "trace_id", "span_id", "parent_span_id", "session_id",
            "user_id", "name", "framework", "time", "seq", "attributes", "error", "tags", "metadata"}


class Capture(BaseSink):
    """Keeps every batch the worker hands it, as handed."""

    name = "capture"

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    def write(self, batch: Batch) -> WriteResult:
        self.batches.append(Batch(list(batch.events), list(batch.lines)))
        return WriteResult.success()


def _rows(db: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        return [(i, b) for i, b in conn.execute("SELECT id, body FROM events ORDER BY seq_no")]


def _real_batch(n: int) -> Batch:
    """n pipeline-made events (spans and points) in one batch, as the worker builds them."""
    cap = Capture()
    client = tracewire.init(sink=[cap], batch_size=1000, flush_interval=5)  # one batch at flush
    with tracewire.span("agent", "a", input={"q": "x"}):
        for i in range(n - 2):
            tracewire.record("log", name=f"p{i}", input=i)
    assert client.flush(10)
    tracewire.shutdown()
    events = [e for b in cap.batches for e in b.events]
    lines = [line for b in cap.batches for line in b.lines]
    assert len(events) == n
    return Batch(events, lines)


def test_sqlite_sink_stores_a_batch_written_twice_once(tmp_path: Path) -> None:
    batch = _real_batch(10)
    sink = SQLiteSink(str(tmp_path / "idem.db"))
    assert sink.write(batch).ok
    first = _rows(tmp_path / "idem.db")
    assert sink.write(batch).ok  # a retry after a lost acknowledgement
    sink.close()
    rows = _rows(tmp_path / "idem.db")
    assert len(rows) == 10 and rows == first
    assert [i for i, _ in rows] == [e["id"] for e in batch.events]


def test_sqlite_sink_overlapping_batch_adds_only_new_events(tmp_path: Path) -> None:
    batch = _real_batch(10)
    db = tmp_path / "overlap.db"
    sink = SQLiteSink(str(db))
    assert sink.write(batch.subset(range(0, 6))).ok
    assert sink.write(batch.subset(range(3, 10))).ok  # 3..5 again, 6..9 new
    sink.close()
    reopened = SQLiteSink(str(db))  # a later process writing the first half again
    assert reopened.write(batch.subset(range(0, 5))).ok
    reopened.close()
    rows = _rows(db)
    assert [i for i, _ in rows] == [e["id"] for e in batch.events]
    assert [json.loads(b) for _, b in rows] == [json.loads(line) for line in batch.lines]



def test_sqlite_sink_writes_batches_of_every_size_in_order_once(tmp_path: Path) -> None:
    """Batches are split into multi-row statements of power-of-two sizes (see `insert_rows`):
    sizes across those splits store every event once, in batch order, with its columns."""
    batch = _real_batch(650)
    db = tmp_path / "sizes.db"
    sink = SQLiteSink(str(db))
    done = 0
    for size in (1, 2, 3, 127, 128, 129, 0, 255):  # 255 = 128+64+32+16+8+4+2+1 rows
        assert sink.write(batch.subset(range(done, done + size))).ok
        done += size
    assert sink.write(batch.subset(range(0, done))).ok  # all of it again: stored once
    sink.close()
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT id, trace_id, span_id, kind, phase, name, time, body FROM events ORDER BY seq_no")
        got = rows.fetchall()
    want = batch.events[:done]
    assert done == 645
    assert [r[0] for r in got] == [e["id"] for e in want]
    assert [r[1:7] for r in got] == [(e["trace_id"], e["span_id"], e["kind"], e["phase"], e["name"], e["time"])
                                     for e in want]
    assert [r[7] for r in got] == batch.lines[:done]


def test_insert_rows_keeps_within_the_connections_variable_limit(tmp_path: Path) -> None:
    from tracewire.sinks.sqlite_table import insert_rows

    with closing(sqlite3.connect(tmp_path / "limit.db", isolation_level=None)) as conn:
        conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c TEXT)")
        if hasattr(conn, "setlimit"):  # Python 3.11+: a build with a low limit, as old SQLites have
            conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)  # 6 rows of 3 fit: statements of 4
        rows = [(i, f"b{i}", "c" * i) for i in range(1000)]
        insert_rows(conn, "INSERT OR IGNORE INTO t (a, b, c)", rows)
        insert_rows(conn, "INSERT OR IGNORE INTO t (a, b, c)", rows[::7])  # duplicates are ignored
        insert_rows(conn, "INSERT OR IGNORE INTO t (a, b, c)", [])
        assert conn.execute("SELECT a, b, c FROM t ORDER BY a").fetchall() == rows

def _rows_committed(db: Path) -> bool:
    # The file exists (empty) a moment before the sink has set WAL and created the table.
    if not db.exists():
        return False
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return bool(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:
        return False


def test_sqlite_is_wal_and_readable_while_the_app_writes(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    client = tracewire.init(db=str(db), flush_interval=0.01)
    stop = threading.Event()

    def app() -> None:
        i = 0
        while not stop.is_set():
            with tracewire.span("agent", f"run-{i}"):
                tracewire.record("log", name="step", input={"i": i})
            i += 1
            time.sleep(0.002)

    writer = threading.Thread(target=app)
    writer.start()
    try:
        deadline = time.monotonic() + 10
        while not _rows_committed(db) and time.monotonic() < deadline:
            time.sleep(0.01)
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        counts = []
        for _ in range(4):
            time.sleep(0.3)
            counts.append(reader.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            out = _cli("traces", "--limit", "3", db=str(db))  # another process, mid-write
            assert out.returncode == 0 and "locked" not in out.stderr, out.stderr
            assert len(out.stdout.splitlines()) == 5 and " agent run-" in out.stdout  # header, 3 rows, totals
        reader.close()
        assert counts[0] > 0 and all(b > a for a, b in zip(counts, counts[1:], strict=False)), counts
    finally:
        stop.set()
        writer.join(10)
    assert client.flush(10)
    s = client.stats()
    assert not s["internal_errors"] and not s["dropped"] and not s["retries"], s
    tracewire.shutdown()
    assert len(_rows(db)) == s["written"]


def test_jsonl_appends_one_envelope_a_line_across_clients(tmp_path: Path) -> None:
    path = tmp_path / "out" / "events.jsonl"
    tracewire.init(sink="jsonl", jsonl_path=str(path))
    with tracewire.span("tool", "search", input={"q": "first"}) as s:
        s.set_output("line\nbreak")  # a newline in content must not split the line
    tracewire.record("user.input", input="hi")
    assert tracewire.shutdown()
    first = path.read_bytes()
    assert first.count(b"\n") == 3

    tracewire.init(sink="jsonl", jsonl_path=str(path), flush_interval=0.05)  # a second client, same file
    tracewire.record("log", name="second")
    assert tracewire.shutdown()
    data = path.read_bytes()
    assert data.startswith(first) and data.endswith(b"\n")  # appended, not truncated
    events = [json.loads(line) for line in data.decode().splitlines()]
    assert [e["type"] for e in events] == ["tool.start", "tool.end", "user.input", "log"]
    for e in events:
        assert ENVELOPE <= set(e) and e["schema"] == 1, e
    assert events[1]["output"] == "line\nbreak"
    assert len({e["id"] for e in events}) == 4


def _batch_bytes(b: Batch) -> int:
    return sum(len(line.encode("utf-8")) for line in b.lines)


def test_batches_respect_batch_bytes(tmp_path: Path) -> None:
    limit = 10_000
    cap = Capture()
    client = tracewire.init(sink=[cap], batch_bytes=limit, flush_interval=5)  # nothing written before flush
    for i in range(8):
        tracewire.record("log", name=f"c{i}", input="x" * 5600)  # two of them exceed the limit
    for i in range(6):  # attributes count too, not only content
        with tracewire.span("llm", f"a{i}", attributes={"note": "é" * 2000}):  # 2 bytes a char in UTF-8
            pass
    tracewire.record("log", name="huge", input="y" * 30_000)
    for i in range(30):
        tracewire.record("log", name=f"s{i}")
    assert client.flush(10)
    tracewire.shutdown()

    names = [e["name"] for b in cap.batches for e in b.events]
    assert names == [f"c{i}" for i in range(8)] + [f"a{i}" for i in range(6) for _ in "se"] + ["huge"] + [
        f"s{i}" for i in range(30)]  # split into batches, nothing lost or reordered
    assert len(cap.batches) >= 8
    for b in cap.batches:
        assert _batch_bytes(b) <= limit or len(b) == 1, (len(b), _batch_bytes(b))
    huge = next(b for b in cap.batches if any(e["name"] == "huge" for e in b.events))
    assert len(huge) == 1 and _batch_bytes(huge) > limit  # too big for any batch: goes alone
    assert any(len(b) > 1 for b in cap.batches if b.events[0]["name"].startswith("s"))  # small ones share


@pytest.mark.parametrize("queued", [7, 8, 9, 24])
def test_batches_respect_batch_size(queued: int) -> None:
    """A queue that fits in one batch goes whole; a longer one in batches of `batch_size`, in order."""
    cap = Capture()
    client = tracewire.init(sink=[cap], batch_size=8, flush_interval=3600)  # the 8th event wakes the worker
    for i in range(queued):
        tracewire.record("log", name=f"e{i}")
    assert client.flush(10)
    tracewire.shutdown()
    assert [e["name"] for b in cap.batches for e in b.events] == [f"e{i}" for i in range(queued)]
    assert all(len(b) <= 8 for b in cap.batches)
    if queued < 8:
        assert [len(b) for b in cap.batches] == [queued]


def test_a_pass_does_the_work_queued_when_it_began() -> None:
    """What the app defers while the worker's pass runs waits for the next pass (within the
    interval): it is not chased and committed on its own, a few events at a time."""
    cap = Capture()
    client = tracewire.init(sink=[cap], flush_interval=3600)
    started, go = threading.Event(), threading.Event()

    def first() -> None:
        tracewire.record("log", name="a")
        started.set()
        go.wait(5)

    client.defer(first)
    flushed = threading.Thread(target=client.flush, args=(10,))
    flushed.start()
    assert started.wait(5)  # the pass is running `first`
    client.defer(lambda: tracewire.record("log", name="b"))  # deferred meanwhile
    go.set()
    flushed.join(10)
    time.sleep(0.3)
    assert [[e["name"] for e in b.events] for b in cap.batches] == [["a"]]
    assert client.flush(10)
    assert [[e["name"] for e in b.events] for b in cap.batches] == [["a"], ["b"]]
    tracewire.shutdown()


class SlowCapture(Capture):
    def write(self, batch: Batch) -> WriteResult:
        time.sleep(0.2)  # longer than a flush waits between looks
        return super().write(batch)


def test_a_flush_leaves_no_pass_behind() -> None:
    """A flush wakes the worker once: after it returns, the next events wait for the interval
    (or the next flush) and go out together, not one pass each."""
    cap = SlowCapture()
    client = tracewire.init(sink=[cap], flush_interval=3600)
    tracewire.record("log", name="a")
    assert client.flush(10)
    for name in ("b", "c"):
        tracewire.record("log", name=name)
        time.sleep(0.1)
    time.sleep(0.3)
    assert [[e["name"] for e in b.events] for b in cap.batches] == [["a"]]
    assert client.flush(10)
    assert [[e["name"] for e in b.events] for b in cap.batches] == [["a"], ["b", "c"]]
    tracewire.shutdown()
