"""The collector's retention: `tracewire serve --retention 30d` deletes what is older than the window,
at start and then hourly, on a thread of its own (`tracewire prune --collector-db` does it once).

What goes is decided by the store (its `prune_before`): on PostgreSQL, whole day partitions that end
before the cutoff, and every trace that started before the first day kept (the rest of such a trace, in
kept partitions, goes with it: a trace is never shown without its beginning); replicas take turns
through an advisory lock. On SQLite, whole traces whose newest event is older than the cutoff. Both
delete in bounded transactions, never one unbounded DELETE.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from tracewire.read.formats import parse_when
from tracewire.sinks.retention import Pruned

INTERVAL_S = 3600.0  # between two retention runs
log = logging.getLogger("tracewire.retention")


class Prunable(Protocol):
    def prune_before(self, cutoff_ns: int, *, dry_run: bool = False) -> Pruned | None: ...


def parse_window(text: str) -> int:
    """`--retention` as nanoseconds: an age such as 30d, 12h or 2w (ValueError names the option)."""
    try:
        ns = parse_when(text, now_ns=0)  # an age comes back as 0 minus the age
    except ValueError:
        ns = 0
    if ns >= 0:
        raise ValueError(f"--retention: {text!r} is not a window: use an age such as 30d, 12h or 2w")
    return -ns


def describe(done: Pruned) -> str:
    """The counts as `tracewire prune` and the log print them."""
    return ", ".join(f"{n:,} {what}{'' if n == 1 else 's'}" for n, what in (
        (done.traces, "trace"), (done.events, "event"), (done.scores, "score"), (done.partitions, "partition")))


class RetentionThread:
    """Prunes `store` of what is older than `window_ns` now and every `interval` seconds until stopped.
    A failed run (database away, a lock not granted in time) is logged and tried again at the next."""

    def __init__(self, store: Prunable, window_ns: int, *, interval: float = INTERVAL_S,
                 on_pruned: Callable[[Pruned], None] | None = None) -> None:
        self.store, self.window_ns, self.interval, self.on_pruned = store, window_ns, interval, on_pruned
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="tracewire-retention")

    def start(self) -> None:
        self._thread.start()

    def run_once(self) -> Pruned | None:
        done = self.store.prune_before(time.time_ns() - self.window_ns)
        if done is None:
            log.info("retention: another collector is pruning")
            return None
        log.info("retention: deleted %s", describe(done))
        if self.on_pruned is not None:
            self.on_pruned(done)
        return done

    def _loop(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the collector keeps serving; the next run tries again
                log.exception("retention: run failed")
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
