"""Lanes on their own: a remote sink written on its own thread. A part handed to a stopped lane is
settled at once (never left pending), and a backlog past its bound drops its oldest parts."""

from __future__ import annotations

import threading
import time

from tracewire.engine.lanes import BatchOutcome, Lane
from tracewire.model.event import ENVELOPE_BYTES
from tracewire.sinks.base import BaseSink, Batch, Sink, WriteResult


class GatedSink(BaseSink):
    name = "remote"

    def __init__(self) -> None:
        self.open = threading.Event()
        self.written: list[list[str]] = []

    def write(self, batch: Batch) -> WriteResult:
        self.open.wait(10)
        self.written.append(list(batch.lines))
        return WriteResult.success()


def batch(*lines: str) -> Batch:
    return Batch([{"id": line} for line in lines], list(lines))


def lane_for(sink: GatedSink, max_bytes: int, settled: list[BatchOutcome]) -> Lane:
    def write(s: Sink, b: Batch) -> dict[int, str]:
        result = s.write(b)
        return {} if result.ok else dict.fromkeys(range(len(b)), "failed")

    def settle(ps: BatchOutcome) -> None:
        ps.pending -= 1
        if not ps.pending:
            settled.append(ps)

    return Lane(sink, write, settle, max_bytes)


def part(b: Batch) -> BatchOutcome:
    ps = BatchOutcome(len(b))
    ps.pending = 1  # the lane's part only (the worker's share is not modelled here)
    return ps


def test_a_part_handed_to_a_stopped_lane_is_settled_as_lost() -> None:
    settled: list[BatchOutcome] = []
    sink = GatedSink()
    sink.open.set()
    lane = lane_for(sink, 10**6, settled)
    lane.stop(5)
    b = batch("a", "b")
    ps = part(b)
    lane.submit(b, range(2), ps)
    assert settled == [ps] and ps.outcome() == (0, {"remote:stopped": 2})
    assert sink.written == []


def test_backlog_past_its_bound_drops_the_oldest_parts() -> None:
    settled: list[BatchOutcome] = []
    sink = GatedSink()
    per_part = len("x" * 100) + ENVELOPE_BYTES
    lane = lane_for(sink, 2 * per_part, settled)  # room for two queued parts
    parts = [(batch(f"{i}" * 100), part(batch(f"{i}" * 100))) for i in range(5)]
    lane.submit(parts[0][0], range(1), parts[0][1])  # taken by the thread, blocked in write
    for _ in range(500):  # until the thread has taken part 0
        if not lane._queue:
            break
        time.sleep(0.01)
    for b, ps in parts[1:]:
        lane.submit(b, range(1), ps)
    # parts 1 and 2 were pushed out by 3 and 4
    assert [ps.outcome() for ps in settled] == [(0, {"remote:backlog_full": 1})] * 2
    assert settled == [parts[1][1], parts[2][1]]
    sink.open.set()
    lane.stop(5)
    assert sink.written == [["0" * 100], ["3" * 100], ["4" * 100]]
    assert [ps.outcome() for ps in settled[2:]] == [(1, {})] * 3
