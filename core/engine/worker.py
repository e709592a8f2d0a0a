"""The worker thread: deferred work, then batches through the pipeline to the sinks, every
`flush_interval` or as soon as a batch is full."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from tracewire.engine.fanout import FanOut
from tracewire.engine.lanes import BatchOutcome
from tracewire.engine.pace import Pacer
from tracewire.engine.queue import EventQueue
from tracewire.model.event import Event
from tracewire.pipeline.chain import Pipeline
from tracewire.sinks.base import Batch


@dataclass(eq=False)
class Worker:
    _queue: EventQueue
    _pipeline: Pipeline
    _fanout: FanOut
    _interval: float  # flush_interval (or commit_interval, with a spooling sink)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._pace = Pacer(self._queue.pressed)  # the GIL in short slices (see `pace`)

    def start(self) -> None:
        self._fanout.start_lanes()
        self._thread = threading.Thread(target=self._run, name="tracewire-worker", daemon=True)
        self._thread.start()

    @property
    def ident(self) -> int | None:
        """The worker thread's id (its CPU clock: `time.pthread_getcpuclockid`); None before start."""
        return None if self._thread is None else self._thread.ident

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float) -> bool:
        """Wait for the loop to end (after `queue.stopping`); True once it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive()

    def _run(self) -> None:
        q = self._queue
        q.worker_ident = threading.get_ident()
        next_at = time.monotonic() + self._interval
        while True:
            q.waiting = True
            q.wake.wait(0.0 if q.stopping else max(0.0, next_at - time.monotonic()))
            q.waiting = False
            q.wake.clear()
            started = time.monotonic()
            self._pace.start()
            # A pass does the work queued when it began (and the events that work makes), then
            # ends: what the app records meanwhile waits for the next pass, within the interval,
            # instead of being chased and committed a few events at a time while the app runs.
            left = len(q.deferred)
            while True:
                ran = q.replay(self._pace, left)  # deferred work first, a batch at a time
                left -= ran
                drained = self._drain_once()
                if (left <= 0 or not ran) and not (drained and q.batch_waiting()):
                    break
            # Start the next pass early by this pass's duration: an event queued just after this
            # pass took its batch is then written within one interval of being recorded (the
            # interval is what bounds a kill -9's loss), not one interval plus the write.
            took = time.monotonic() - started
            next_at = max(time.monotonic(), started + self._interval - took)
            q.pass_done(next_at, self._interval)
            with q.lock:
                if q.stopping and not q.items and not q.deferred:
                    q.overdue_at = float("inf")
                    return

    def _drain_once(self) -> bool:
        items = self._queue.take()
        if not items:
            return False
        ps = BatchOutcome(len(items))
        try:
            events: list[Event] = []
            lines: list[str] = []
            spooled: list[int] = []  # batch indexes already committed to the spooling sinks
            pipeline = self._pipeline
            fast_line = pipeline.fast_line if pipeline.fast_allowed() else None
            pace = self._pace
            for item in items:
                pace()
                if item.line is not None:  # prepared on the caller's thread
                    if item.spooled:
                        spooled.append(len(lines))
                    events.append(item.event)
                    lines.append(item.line)
                    continue
                # the common event in one call (`fast_line`), else the processors' walk
                done = (fast_line and fast_line(item)) or pipeline.line(item, False)
                if done is None:
                    ps.filtered += 1
                    continue
                events.append(done[0])
                lines.append(done[1])
            self._fanout.deliver(Batch(events, lines), spooled, ps)
        except Exception as exc:  # noqa: BLE001 - the worker must survive anything
            self._queue.counters.internal_error("worker", exc)
            ps.failed = True
        self._queue.settle(ps)
        return True
