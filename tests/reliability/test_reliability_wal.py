"""The SDK's SQLite store keeps its write-ahead log bounded while a reader (`tracewire traces`,
`show`, `tail`) is reading it all the time: without a bound, checkpoints never get to restart the
log and the -wal file grows with everything written."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from tracewire.read.local import LocalStore
from tracewire.sinks.base import Batch
from tracewire.sinks.sqlite import SQLiteSink

WAL_BOUND = 64 * 2**20
TARGET = 2 * WAL_BOUND  # written: an unbounded log would pass the bound twice over
MAX_SECONDS = 120.0  # on a busy machine writing the target takes longer; it never stops early


def test_wal_stays_bounded_under_sustained_writes_with_a_concurrent_reader(tmp_path: Path) -> None:
    path = str(tmp_path / "t.db")
    sink = SQLiteSink(path)
    pad = "x" * 900
    n = 0

    def batch(size: int = 500) -> Batch:
        nonlocal n
        events, lines = [], []
        for _ in range(size):
            n += 1
            e = {"id": f"e{n:012d}", "trace_id": f"t{n // 50}", "span_id": f"s{n}", "type": "tool.end",
                 "kind": "tool", "phase": "end", "name": "w", "time": n}
            events.append(e)
            lines.append(f'{{"id":"e{n:012d}","trace_id":"t{n // 50}","time":{n},"pad":"{pad}"}}')
        return Batch(events, lines)

    assert sink.write(batch()).ok
    stop = threading.Event()
    reads = 0
    errors: list[BaseException] = []

    def reader() -> None:  # what `tracewire traces` / `tail -f` do, back to back
        nonlocal reads
        try:
            store = LocalStore(path)
            while not stop.is_set():
                store._conn.execute("SELECT count(*), max(seq_no) FROM events").fetchone()
                store.last_trace_id()
                reads += 1
            store.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    peak = 0
    written = 0
    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    try:
        while written < TARGET and time.monotonic() - t0 < MAX_SECONDS:
            b = batch()
            assert sink.write(b).ok
            written += sum(len(x) for x in b.lines)
            try:
                peak = max(peak, os.path.getsize(path + "-wal"))
            except FileNotFoundError:
                pass
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        sink.close()
    assert not errors, errors
    assert reads > 10, reads
    assert written >= TARGET, written  # else the test proves nothing
    assert peak <= WAL_BOUND, f"-wal peaked at {peak / 2**20:.1f} MiB after {written / 2**20:.0f} MiB written"
