"""shutdown() hands sinks whose close takes a `timeout` the time left of its budget; sinks with a
plain close() are closed as before."""

from __future__ import annotations

import threading
import time
from typing import Any

import tracewire
from tracewire.sinks.base import BaseSink, Batch, WriteResult


class PlainSink(BaseSink):
    name = "plain"

    def __init__(self) -> None:
        self.closed = False

    def write(self, batch: Batch) -> WriteResult:
        return WriteResult.success()

    def close(self) -> None:
        self.closed = True


class TimedSink(PlainSink):
    name = "timed"

    def __init__(self, write_delay: float = 0.0) -> None:
        super().__init__()
        self.write_delay = write_delay
        self.timeouts: list[float | None] = []
        self.go = threading.Event()  # the write waits for it: it then starts inside shutdown's budget
        self.go.set()

    def write(self, batch: Batch) -> WriteResult:
        self.go.wait()
        time.sleep(self.write_delay)
        return WriteResult.success()

    def close_within(self, timeout: float | None) -> None:
        self.timeouts.append(timeout)
        self.closed = True


def test_close_gets_the_time_left_of_the_shutdown_budget(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    plain, timed = PlainSink(), TimedSink(write_delay=0.5)
    tracewire.init(sink=[plain, timed], flush_interval=0.01)
    timed.go.clear()
    tracewire.record("log", input="x")
    threading.Timer(0.1, timed.go.set).start()  # shutdown below has begun by then
    assert tracewire.shutdown(timeout=3)
    assert plain.closed and timed.closed
    (left,) = timed.timeouts
    assert left is not None and 0 < left <= 3 - 0.5, left  # the flush's write spent part of it


def test_close_without_budget_gets_none(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    timed = TimedSink()
    tracewire.init(sink=[timed], flush_interval=0.01)
    assert tracewire.shutdown(timeout=None)
    assert timed.timeouts == [None]
