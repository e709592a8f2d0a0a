"""Lanes: a remote sink written on a thread of its own, beside the worker.

With several sinks, the worker writes them one after another, retries included. A sink that
talks to a remote service (`isolated = True`, e.g. otlp) would then hold every other sink
hostage while its receiver is down: the local SQLite copy would stop and the queue fill up.
Such a sink gets a lane instead: the worker hands it each batch and moves on; the lane writes it
with the same retry rules. An event counts as written or dropped once every sink has settled it
(a `BatchOutcome`), so `flush()` and `stats()` keep their meaning.

A lane's backlog has a bound of its own, `queue_max_bytes` (so with a lane, memory held for
events is at most twice that setting): past it, its oldest batches are dropped for that sink as
`<sink>:backlog_full`, counted, never silent.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from typing import Any

from tracewire.model.event import ENVELOPE_BYTES
from tracewire.sinks.base import Batch, Sink

BACKLOG_FULL = "backlog_full"
STOPPED = "stopped"


class BatchOutcome:
    """One worker pass over a batch of queued items, settled once the worker and every lane
    that got a part of it are done."""

    __slots__ = ("n", "filtered", "lost", "pending", "failed")

    def __init__(self, n: int) -> None:
        self.n = n  # queued items taken
        self.filtered = 0  # dropped by a processor (not a loss)
        self.lost: dict[int, str] = {}  # batch index -> reason, first sink's reason wins
        self.pending = 1  # the worker's own share; +1 per lane part (changed under the client's lock only)
        self.failed = False  # the worker itself failed on this pass: every item is an internal error

    def outcome(self) -> tuple[int, dict[str, int]]:
        """(written, dropped by reason)."""
        if self.failed:
            return 0, {"internal_error": self.n}
        dropped = dict(collections.Counter(self.lost.values()))
        if self.filtered:
            dropped["filtered"] = self.filtered
        return self.n - self.filtered - len(self.lost), dropped

    def lose(self, index: Sequence[int], lost: dict[int, str]) -> None:
        """Losses a sink reports for `sub` (its indexes relative to `index`)."""
        for i, reason in lost.items():
            self.lost.setdefault(index[i], reason)


class Lane:
    def __init__(
        self, sink: Sink, write: Callable[[Sink, Batch], dict[int, str]], settle: Callable[[BatchOutcome], None],
        max_bytes: int,
    ) -> None:
        self.sink = sink
        self._write = write
        self._settle = settle
        self._max_bytes = max_bytes
        self._queue: collections.deque[tuple[Batch, Sequence[int], BatchOutcome, int]] = collections.deque()
        self._bytes = 0
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"tracewire-lane-{sink.name}", daemon=True)
        self._thread.start()

    def submit(self, sub: Batch, index: Sequence[int], ps: BatchOutcome) -> None:
        """Queue a part of `ps` (whose `pending` already counts it) for this sink."""
        size = sum(map(len, sub.lines)) + ENVELOPE_BYTES * len(sub)
        dropped: list[tuple[Batch, Sequence[int], BatchOutcome, int, str]] = []
        with self._cv:
            if self._stop:  # the thread is gone: settle at once rather than never
                dropped.append((sub, index, ps, size, STOPPED))
            else:
                while self._queue and self._bytes + size > self._max_bytes:
                    old = self._queue.popleft()
                    self._bytes -= old[3]
                    dropped.append((*old, BACKLOG_FULL))
                self._queue.append((sub, index, ps, size))
                self._bytes += size
                self._cv.notify()
        for old_sub, old_index, old_ps, _, why in dropped:
            old_ps.lose(old_index, dict.fromkeys(range(len(old_sub)), f"{self.sink.name}:{why}"))
            self._settle(old_ps)

    def stop(self, timeout: float | None) -> None:
        """End the thread once its backlog is written (or given up), waiting at most `timeout`."""
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stop:
                    self._cv.wait()
                if not self._queue:
                    return
                sub, index, ps, size = self._queue.popleft()
                self._bytes -= size
            try:
                ps.lose(index, self._write(self.sink, sub))
            except Exception:  # noqa: BLE001 - a lane must survive anything; the write counts its errors
                ps.lose(index, dict.fromkeys(range(len(sub)), f"{self.sink.name}:internal_error"))
            self._settle(ps)


def isolated(sinks: Sequence[Any]) -> list[Any]:
    """The sinks that get a lane: remote ones, when another sink is there to be held up."""
    return [s for s in sinks if getattr(s, "isolated", False)] if len(sinks) > 1 else []
