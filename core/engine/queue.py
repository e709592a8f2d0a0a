"""The queue between the callers and the worker: admission by events and bytes, the queue-full
policy, adapters' deferred work, and durable commits on the caller's thread.

The accounting that makes `flush()` and `stats()` exact lives here too: every event admitted (or
refused at the door) is `accepted`; it is `completed` once written or dropped; `lost` counts the
completed ones dropped for a reason other than a filter. The hot path (`put`, `defer`) is written
out on purpose: see docs/architecture.md, "The hot path".
"""

from __future__ import annotations

import collections
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

from tracewire.config import Config
from tracewire.engine.lanes import BatchOutcome
from tracewire.engine.span import UNSET
from tracewire.engine.stats import Stats
from tracewire.model import codec
from tracewire.model.codec import Snapshot
from tracewire.model.content import HELD_BYTES
from tracewire.model.event import ENVELOPE_BYTES
from tracewire.pipeline.chain import Pipeline
from tracewire.pipeline.envelope import Queued, envelope, unsnap
from tracewire.sinks.base import Sink

# What one piece of deferred work counts against `queue_max_bytes` unless it says it holds more:
# an envelope and held content of the flat estimate. Work this size is queued without the lock.
DEFER_UNIT = ENVELOPE_BYTES + HELD_BYTES
# Work `defer` queued, as one flat tuple (one object for the garbage collector while it waits, which
# the benchmarks count): (fn, *args), or (HELD, bytes held over DEFER_UNIT, fn, *args). Built as
# `(fn,) + args`: a tuple concatenation, where `(fn, *args)` goes through a temporary list.
Deferred = tuple[Any, ...]
HELD: Any = object()

_snapshot = codec.snapshot
_now = time.monotonic
# How late the worker's commit may be before callers wait for it: half a commit interval, so a
# kill -9 loses at most 1.5 intervals of recording however the OS schedules the worker.
CATCH_UP_SLACK = 0.5
CATCH_UP_WAIT = 1.0  # seconds a caller waits at most for an overdue pass


class EventQueue:
    def __init__(self, config: Config, pipeline: Pipeline, spool_sinks: list[Sink], all_sinks: int,
                 disabled: bool) -> None:
        self.capture_content = config.capture_content
        self._pipeline = pipeline
        self._batch_size = config.batch_size
        self._batch_bytes = config.batch_bytes
        self._max_events = config.queue_max_events
        self._max_bytes = config.queue_max_bytes
        self._drop_oldest = config.queue_full_policy == "drop_oldest"
        # Sinks with a durable spool (http): committed on the worker every commit_interval, or on
        # the caller's thread when durable=True / when the queue is full under policy `spool`.
        self._spool_sinks = spool_sinks
        self._all_sinks = all_sinks
        self._durable = bool(config.durable) and bool(spool_sinks)
        self._spill = config.queue_full_policy == "spool" and bool(spool_sinks)
        self.defer_inline = disabled or self._durable  # `defer` runs the work right away
        self.watch_commits = bool(spool_sinks) and not self._durable  # see `catch_up`
        self._disabled = disabled
        self.reset()

    def reset(self) -> None:
        """Fresh state: at start, and in a forked child (the parent's events stay the parent's)."""
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.wake = threading.Event()
        self.items: collections.deque[Queued] = collections.deque()
        self.queued_bytes = 0
        self.in_flight = 0
        self.accepted = 0  # events that entered the queue (or were refused at its door)
        self.completed = 0  # of those, how many are finished (written or dropped)
        self.lost = 0  # of those, dropped for a reason other than a filter: flush() reports them
        self.stopping = False
        # Set by the worker after each pass (spooling sinks, not durable): the time past which a
        # caller finding it not run again waits for it (`catch_up`). Infinite: never wait.
        self.overdue_at = float("inf")
        self.passes = 0
        self.waiting = True  # the worker waits for its next pass (read without the lock: a hint)
        self.passed = threading.Condition(threading.Lock())
        # Adapters' deferred work (see `defer`): run on the worker before each drain, in order.
        # Never replaced while the client runs: callers append to it without the lock.
        self.deferred: collections.deque[Deferred] = collections.deque()
        self._deferred_extra = 0  # bytes the sized work holds over `DEFER_UNIT` each
        self.deferred_taken = 0  # work the worker has taken and not finished
        self._deferred_running = 0  # of that, work whose events are not admitted yet (see `snapshot`)
        self.deferred_done = 0
        self._replayed: list[Queued] | None = None  # set while the worker runs deferred work
        self.worker_ident: int | None = None
        self.counters = Stats()

    # ------------------------------------------------------------------ callers' side
    def put(self, ev: Any, input: Any, output: Any, metadata: Any) -> None:
        """The hot path's end: snapshot content, account, append. No I/O, no waiting."""
        try:
            blob: bytes | None = None
            ti = to = tm = None
            texts = False
            size = ENVELOPE_BYTES
            if not self.capture_content:
                input = output = UNSET
            if input is not UNSET or output is not UNSET or metadata:
                if input is UNSET:
                    input = None
                if output is UNSET:
                    output = None
                try:
                    if _snapshot is not None:
                        # JSON text is the cheapest immutable copy, and spares the worker an unpickle.
                        # Written out, not looped: this runs for every event.
                        try:
                            ti = None if input is None else input.text if type(input) is Snapshot else _snapshot(input)
                            to = None if output is None else output.text if type(output) is Snapshot else _snapshot(output)
                            tm = _snapshot(metadata) if metadata else None
                            texts = True
                            size += (len(ti) if ti else 0) + (len(to) if to else 0) + (len(tm) if tm else 0)
                        except Exception:  # noqa: BLE001 - not plain data: pickle it instead
                            ti = to = tm = None
                    if not texts:
                        blob = pickle.dumps((unsnap(input), unsnap(output), metadata or None), 5)
                        size += len(blob)
                except Exception:  # noqa: BLE001 - not picklable: make it safe right here instead
                    env = envelope(ev) if isinstance(ev, tuple) else ev
                    sanitize = self._pipeline.sanitizer.value
                    env["input"], env["output"], env["metadata"] = (
                        sanitize(unsnap(c)) if c is not None else None for c in (input, output, metadata or None)
                    )
                    ev = env
                    size += 512
            item = Queued(ev, blob, size, ti, to, tm)
        except Exception as exc:  # noqa: BLE001 - never break the host
            self.counters.internal_error("enqueue", exc)
            return
        replayed = self._replayed
        if replayed is not None and threading.get_ident() == self.worker_ident:
            replayed.append(item)  # made by deferred work on the worker: admitted all at once
            return
        self.admit(item)

    def admit(self, item: Queued, made: bool = False) -> None:
        """Into the queue, or what the queue-full policy says. `made`: by deferred work, while a
        flush may be waiting for it, so a refusal is a loss that flush() reports."""
        size = item.size
        if self._spool_sinks and (self._durable or (self._spill and (
            len(self.items) >= self._max_events or self.queued_bytes + size > self._max_bytes
        ))) and self._commit_now(item):
            return
        with self.lock:
            st = self.counters
            st.emitted += 1
            self.accepted += 1
            # the bytes of deferred work count too (`pending_bytes`, written out: every event comes here)
            held = self.queued_bytes + len(self.deferred) * DEFER_UNIT + self._deferred_extra
            if len(self.items) >= self._max_events or held + size > self._max_bytes:
                if not self._drop_oldest or not self.items:
                    st.dropped["queue_full"] += 1
                    self.completed += 1
                    self.lost += made
                    return
                while self.items and (len(self.items) >= self._max_events or held + size > self._max_bytes):
                    old = self.items.popleft()
                    self.queued_bytes -= old.size
                    held -= old.size
                    st.dropped["queue_full"] += 1
                    self.completed += 1
                    self.lost += 1  # it was enqueued: a flush waiting for it must say so
            self.items.append(item)
            self.queued_bytes += size
            if len(self.items) == self._batch_size:
                self.wake.set()
        if self.watch_commits and self.overdue_at < _now():
            self.catch_up()

    def defer(self, fn: Callable[..., object], *args: Any, size: int = DEFER_UNIT, force: bool = False) -> bool:
        """Run `fn(*args)` on the worker, in call order, before the next drain: an adapter's
        hooks do there what is too costly on the user's thread, from content already `frozen`
        (or held) and the ids and times the hook decided. `size`: bytes the arguments hold.
        False: refused, the queue is full (counted as one event dropped); `force`: the end of a
        span whose start was admitted, never refused. docs/architecture.md, "Deferred work".
        (`Client.defer` is this method itself: one call less on every hook.)"""
        if self.defer_inline:  # disabled, or durable: the event is committed before the hook returns
            if not self._disabled:
                self._run_deferred((fn,) + args)
            return True
        q = self.deferred
        if size <= DEFER_UNIT and not self._spill:
            # The common case, without the lock: one append, atomic under the GIL. The limits are
            # read racily; two callers racing may each be admitted one item over them. (The bytes
            # are `pending_bytes() + DEFER_UNIT`, written out: every hook comes here.)
            if force or (len(q) < self._max_events and
                         self.queued_bytes + (len(q) + 1) * DEFER_UNIT + self._deferred_extra <= self._max_bytes):
                q.append((fn,) + args)
                if len(q) == self._batch_size:
                    self.wake.set()
                if self.watch_commits and self.overdue_at < _now():
                    self.catch_up()
                return True
            self.count_dropped("queue_full")
            return False
        with self.lock:
            extra = max(0, size - DEFER_UNIT)
            if force or (
                len(q) < self._max_events and self.pending_bytes() + DEFER_UNIT + extra <= self._max_bytes
            ) or (self._spill and len(q) < 2 * self._max_events):  # its events spill when it runs
                q.append((HELD, extra, fn) + args)
                self._deferred_extra += extra
                admitted = True
            else:
                admitted = False
        if not admitted:
            self.count_dropped("queue_full")
            return False
        if len(q) == self._batch_size:
            self.wake.set()
        return True

    def catch_up(self) -> None:
        """The worker's commit is overdue (the OS left it unscheduled, a slow disk): wait for its
        next pass, so what a kill -9 can lose stays bounded by time. Bounded wait: a stuck or dead
        worker never hangs the caller; and never on the worker itself."""
        if threading.get_ident() == self.worker_ident:
            return
        with self.passed:
            seen = self.passes
            self.wake.set()
            self.passed.wait_for(lambda: self.passes != seen, timeout=CATCH_UP_WAIT)

    def pass_done(self, next_at: float, interval: float) -> None:
        """The worker finished a pass and plans the next at `next_at`."""
        with self.passed:
            self.passes += 1
            self.passed.notify_all()
        if self.watch_commits and not self.stopping:
            self.overdue_at = next_at + interval * CATCH_UP_SLACK

    def pressed(self) -> bool:
        """More than half the queue's limits taken: the worker then works without resting (read
        without the lock: a hint)."""
        return bool(len(self.items) * 2 > self._max_events or self.pending_bytes() * 2 > self._max_bytes)

    def pending_bytes(self) -> int:
        """Bytes queued: events, and deferred work (see `DEFER_UNIT`)."""
        return self.queued_bytes + len(self.deferred) * DEFER_UNIT + self._deferred_extra

    def count_dropped(self, reason: str, n: int = 1, lost: bool = True) -> None:
        """Events recorded and dropped at once (an adapter's refused work, say). `lost`: a flush
        waiting meanwhile reports them (not for a filter, nor for a caller-side commit refused)."""
        with self.lock:
            self.counters.emitted += n
            self.counters.dropped[reason] += n
            self.accepted += n
            self.completed += n
            if lost:
                self.lost += n

    def _commit_now(self, item: Queued) -> bool:
        """Prepare and commit one event to the spooling sinks on the caller's thread (durable=True,
        or a full queue under policy `spool`). True when the event is fully accounted for; False
        sends it down the queue (already prepared) — e.g. when the disk refused the write."""
        try:
            if item.line is None:
                done = self._pipeline.line(item, self._pipeline.fast_allowed())
                if done is None:
                    self.count_dropped("filtered", lost=False)
                    return True
                item.event, item.line = done
                item.blob = item.input_json = item.output_json = item.metadata_json = None
            for sink in self._spool_sinks:
                if not sink.commit([item.line]):
                    self.count_dropped(f"{sink.name}:spool_full", lost=False)
                    return True
            item.spooled = True
            if len(self._spool_sinks) < self._all_sinks:
                return False  # the other sinks get it through the queue
            with self.lock:
                self.counters.emitted += 1
                self.counters.written += 1
                self.accepted += 1
                self.completed += 1
            return True
        except OSError:  # e.g. disk full: the worker retries it from the queue
            return False
        except Exception as exc:  # noqa: BLE001 - never break the host
            self.counters.internal_error("commit_now", exc)
            return False

    # ------------------------------------------------------------------ the worker's side
    def _run_deferred(self, work: Deferred) -> None:
        try:
            work[0](*work[1:])
        except Exception as exc:  # noqa: BLE001 - an adapter's deferred work must not stop the worker
            self._deferred_failed(work, exc)

    def _deferred_failed(self, work: Deferred, exc: Exception) -> None:
        self.counters.internal_error(f"deferred:{getattr(work[0], '__qualname__', 'work')}", exc)

    def replay(self, pace: Callable[[], None], most: int) -> int:
        """Run deferred work queued so far, a batch (and at most `most` pieces) at a time: the
        events it records join the queue and are drained before the next batch (short-lived, for
        the garbage collector). `pace()` runs before each piece of work (the worker's `Pacer`).
        How many pieces ran."""
        with self.lock:
            q = self.deferred
            if not q or most <= 0:
                return 0
            # popleft, never a new deque: a caller may be appending to this one right now
            work = [q.popleft() for _ in range(min(len(q), self._batch_size, most))]
            self.deferred_taken = self._deferred_running = len(work)
            for i, w in enumerate(work):
                if w[0] is HELD:
                    self._deferred_extra -= w[1]
                    work[i] = w[2:]
        # The events it makes are collected (see `put`) and admitted under one lock: taking the
        # lock per event here would keep the callers' `defer` waiting on it.
        made: list[Queued] = []
        self._replayed = made
        try:
            for w in work:
                pace()
                try:  # `_run_deferred`, written out: one call less per piece of work
                    w[0](*w[1:])
                except Exception as exc:  # noqa: BLE001 - an adapter's deferred work must not stop the worker
                    self._deferred_failed(w, exc)
        finally:
            self._replayed = None
        over: list[Queued] = []
        with self.cond:
            items = self.items
            n = 0
            held = self.pending_bytes()  # read once (callers append deferred work meanwhile, lock-free)
            added = 0
            for item in made:
                if over or len(items) >= self._max_events or held + added + item.size > self._max_bytes:
                    over.append(item)
                else:
                    items.append(item)
                    added += item.size
                    n += 1
            self.queued_bytes += added
            self.counters.emitted += n
            self.accepted += n
            self._deferred_running = 0  # its events now count for themselves
        for item in over:  # the queue is full: the policy decides, event by event, in order
            self.admit(item, made=True)
        with self.cond:
            self.deferred_done += len(work)
            self.deferred_taken = 0
            self.cond.notify_all()
        return len(work)

    def batch_waiting(self) -> bool:
        """A whole batch is queued (read without the lock: a hint)."""
        return bool(len(self.items) >= self._batch_size or self.queued_bytes >= self._batch_bytes)

    def take(self) -> list[Queued]:
        """The next batch: up to batch_size events and about batch_bytes."""
        items: list[Queued] = []
        with self.lock:
            nbytes = 0
            q = self.items
            if len(q) <= self._batch_size and self.queued_bytes < self._batch_bytes:
                # all of it, as the loop would take it, in one step: every append is under the lock
                items = list(q)
                q.clear()
                nbytes = self.queued_bytes
            else:
                while q and len(items) < self._batch_size and (nbytes < self._batch_bytes or not items):
                    it = q.popleft()
                    nbytes += it.size
                    items.append(it)
            self.queued_bytes -= nbytes
            self.in_flight += len(items)
        return items

    def settle(self, ps: BatchOutcome) -> None:
        """The worker, or a lane, is done with its share of a pass; the last one accounts for it."""
        with self.cond:
            ps.pending -= 1
            if ps.pending:
                return
            written, dropped = ps.outcome()
            st = self.counters
            st.written += written
            for reason, n in dropped.items():
                st.dropped[reason] += n
                if reason != "filtered":
                    self.lost += n
            self.in_flight -= ps.n
            self.completed += ps.n
            self.cond.notify_all()

    def add_pending(self, ps: BatchOutcome) -> None:
        with self.cond:  # `pending` only ever changes under this lock
            ps.pending += 1

    def wait_done(self, deadline: float | None, alive: Callable[[], bool]) -> bool:
        """Until every event accepted before the call is completed, deferred work included: the
        events it records are accepted when it runs, so the target is taken again once the work
        posted before this call has run. False at the deadline or if the worker died."""
        with self.cond:
            deferred = self.deferred_done + self.deferred_taken + len(self.deferred)
            target = self.accepted
            waiting_work = self.deferred_done < deferred
        self.wake.set()
        with self.cond:
            asked = True
            while waiting_work or self.completed < target:
                if waiting_work and self.deferred_done >= deferred:
                    waiting_work = False
                    target = self.accepted
                    continue
                if not alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                if not asked and self.waiting:
                    # its pass ended short of the target: another one. Not while it runs, nor once
                    # the target is met: a wake left set starts a pass that commits the app's next
                    # few events on their own, after the flush has returned
                    self.wake.set()
                asked = False
                self.cond.wait(0.05 if remaining is None else min(remaining, 0.05))
        return True

    def snapshot(self) -> dict[str, Any]:
        """`stats()`. Each piece of deferred work counts as the one event it records (a span's
        start or end), emitted and queued from the moment it is deferred: its event is accepted
        only when the worker runs it, and the caller must not see `emitted 0` meanwhile. (Work
        whose trace is sampled out records nothing: `emitted` then goes back by one.)"""
        with self.lock:
            work = len(self.deferred) + self._deferred_running
            return self.counters.snapshot(len(self.items), self.in_flight, self.pending_bytes(), work)
