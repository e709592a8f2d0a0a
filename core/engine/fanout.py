"""Fan-out: one prepared batch to every sink, each write retried by the same rules; a remote
sink beside others writes on its own lane (see `lanes`)."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from tracewire.engine.lanes import BatchOutcome, Lane, isolated
from tracewire.engine.queue import EventQueue
from tracewire.engine.stats import Stats
from tracewire.pipeline.processors import utf8_len
from tracewire.sinks.base import Batch, Sink, WriteResult

MAX_ATTEMPTS = 6


class FanOut:
    def __init__(self, sinks: list[Sink], queue: EventQueue, batch_bytes: int, max_bytes: int) -> None:
        self.sinks = sinks
        self._queue = queue
        self._batch_bytes = batch_bytes
        self._max_bytes = max_bytes
        self.lanes: dict[int, Lane] = {}  # id(sink) -> its lane
        self.closed = False  # set at shutdown: retries stop

    @property
    def counters(self) -> Stats:
        return self._queue.counters  # replaced with the queue's state in a forked child

    def start_lanes(self) -> None:
        self.lanes = {id(s): Lane(s, self.write, self._queue.settle, self._max_bytes) for s in isolated(self.sinks)}

    def stop_lanes(self, deadline: float | None) -> None:
        for lane in self.lanes.values():
            lane.stop(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def deliver(self, batch: Batch, spooled: Sequence[int], ps: BatchOutcome) -> None:
        """`spooled`: batch indexes already committed to the spooling sinks (on the caller's thread)."""
        skip = set(spooled)
        for part in self._byte_parts(batch.lines):
            for sink in self.sinks:
                index: Sequence[int] = part
                if skip and sink.spooling:
                    index = [i for i in part if i not in skip]
                    if not index:
                        continue
                sub = batch if len(index) == len(batch) else batch.subset(index)
                lane = self.lanes.get(id(sink))
                if lane is not None:
                    self._queue.add_pending(ps)
                    lane.submit(sub, index, ps)
                else:
                    ps.lose(index, self.write(sink, sub))
            self.counters.batches += 1

    def _byte_parts(self, lines: list[str]) -> list[range]:
        """Split a batch at `batch_bytes` of serialized lines. The queue took the items by
        estimated size (attributes uncounted, the envelope a guess), so only here is the limit
        exact; an event larger than the limit goes alone."""
        limit = self._batch_bytes
        if 4 * sum(map(len, lines)) <= limit:  # at most 4 UTF-8 bytes a character: one part, unmeasured
            return [range(len(lines))]
        parts: list[range] = []
        start = size = 0
        for i, line in enumerate(lines):
            n = utf8_len(line)
            if size + n > limit and i > start:
                parts.append(range(start, i))
                start, size = i, 0
            size += n
        parts.append(range(start, len(lines)))
        return parts

    def write(self, sink: Sink, batch: Batch) -> dict[int, str]:
        """Write with retries; returns {index: reason} of events this sink lost for good."""
        pending = list(range(len(batch)))
        lost: dict[int, str] = {}
        attempt = 0
        name = sink.name
        while pending:
            attempt += 1
            sub = batch if len(pending) == len(batch) else batch.subset(pending)
            try:
                result = sink.write(sub)
            except Exception as exc:  # noqa: BLE001 - a sink bug is a retryable failure
                self.counters.internal_error(f"sink:{name}", exc)
                result = WriteResult.retry_later(f"exception:{type(exc).__name__}")
            if result.ok:
                return lost
            for i in result.failed:
                lost[pending[i]] = f"{name}:{result.reason}"
            if not result.retryable:
                if not result.failed:
                    lost.update((i, f"{name}:{result.reason}") for i in pending)
                return lost
            retry = [pending[i] for i in result.retry] if result.retry else [i for i in pending if i not in lost]
            if attempt >= MAX_ATTEMPTS or self.closed:
                lost.update((i, f"{name}:retries_exhausted") for i in retry)
                return lost
            self.counters.retries[name] += 1
            pending = retry
            delay = result.retry_after if result.retry_after is not None else random.uniform(0, min(2.0, 0.05 * 2**attempt))
            time.sleep(min(delay, 5.0))
        return lost
