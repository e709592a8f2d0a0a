"""Open spans keyed by a framework's own run id, for adapters whose start and end hooks are
separate calls. Bounded: a run whose end never comes (a killed stream, a crashed worker) is
closed as unfinished after `ttl` seconds or when `max_open` is exceeded, never kept forever."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar, cast

ABANDONED = {"type": "tracewire.Unfinished", "message": "the framework never reported the end of this run"}


class _Closable(Protocol):
    def fail(self, error: Any) -> Any: ...


S = TypeVar("S")  # a _Closable, unless the registry is given `on_evict`


class SpanRegistry(Generic[S]):
    """Holds Spans, or an adapter's own per-run objects that close their span with `fail`, or any
    per-run value when `on_evict(key, value)` says how to close what it stands for.

    `get(key)` and `take(key, None)` are the dict's own methods, so a hook's lookup and removal
    cost no Python call; `put` keeps the bounds. Every dict operation is atomic under the GIL:
    no lock on the hooks' path. The lock only keeps two evicting threads from closing the same
    span twice."""

    # slots: a hook touches a few fixed fields, not an instance dict it may find out of the cache
    __slots__ = ("spans", "_born", "_states", "_lock", "max_open", "_ttl", "_next_check", "_on_evict", "get", "take")

    def __init__(self, max_open: int = 10_000, ttl: float = 3600.0, *,
                 names: tuple[str, str] = ("max_open", "ttl"),
                 on_evict: Callable[[Hashable, Any], None] | None = None) -> None:
        """`names`: what the adapter calls the two settings, for the error a bad value raises."""
        if isinstance(max_open, bool) or not isinstance(max_open, int) or max_open < 1:
            raise ValueError(f"{names[0]} must be a positive int, got {max_open!r}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ValueError(f"{names[1]} must be a positive number of seconds, got {ttl!r}")
        # The open spans, oldest first. A hook that cannot afford a Python call inserts here
        # itself, calls `born` when `len(spans) > max_open`, and has `born` called for the key
        # later (its worker's deferred work, say): its age counts from then. `put` does both.
        self.spans: dict[Hashable, S] = {}
        # when each key was born (monotonic), oldest first; `take` leaves its key behind, for the
        # next sweep to drop, so that removal stays one C call
        self._born: dict[Hashable, float] = {}
        self._states: dict[Hashable, Any] = {}
        self._lock = threading.Lock()
        self.max_open = max_open
        self._ttl = float(ttl)
        self._next_check = 0.0  # no entry can be stale before this (monotonic) time
        self._on_evict = on_evict
        self.get: Callable[[Hashable], S | None] = self.spans.get
        self.take: Callable[[Hashable, None], S | None] = self.spans.pop  # take(key, None): the span or None

    def put(self, key: Hashable, span: S, state: Any = None) -> None:
        """Register `span` (plus any adapter state, e.g. stream buffers) under `key`."""
        self.spans.pop(key, None)  # a key put again is the newest
        self.spans[key] = span
        if state is not None:
            self._states[key] = state
        elif self._states:
            self._states.pop(key, None)
        self.born(key)

    def born(self, key: Hashable) -> None:
        """Start `key`'s age now (if it is still open), and enforce the bounds if they may be due."""
        now = time.monotonic()
        spans, born = self.spans, self._born
        if key in spans:
            born.pop(key, None)  # a key put again is the newest
            born[key] = now
        if len(spans) <= self.max_open and now < self._next_check and len(born) <= 2 * len(spans) + 64:
            return  # the common case: nothing can be due, skip the scan
        self._sweep(now)

    def _sweep(self, now: float) -> None:
        expired: list[tuple[Hashable, S]] = []
        spans, born = self.spans, self._born
        with self._lock:
            while len(spans) > self.max_open:  # the oldest inserted first, born or not yet
                try:
                    key = next(iter(spans))
                except (StopIteration, RuntimeError):  # emptied or changed by another thread
                    break
                span = spans.pop(key, None)
                if span is not None:
                    self._states.pop(key, None)
                    expired.append((key, span))
            while born:
                try:
                    key, t0 = next(iter(born.items()))
                except (StopIteration, RuntimeError):
                    break
                if key in spans and now - t0 < self._ttl:
                    self._next_check = t0 + self._ttl
                    break
                born.pop(key, None)
                span = spans.pop(key, None)  # None: ended, only its time was left
                if span is not None:
                    self._states.pop(key, None)
                    expired.append((key, span))
            else:  # nothing left to age: nothing born from now on is stale before now + ttl
                self._next_check = now + self._ttl
            if len(born) > 2 * len(spans) + 64:  # ended runs behind a live old one: drop their times
                for key in [k for k in list(born) if k not in spans]:
                    born.pop(key, None)
        for key, span in expired:
            self._evict(key, span)

    def _evict(self, key: Hashable, span: S) -> None:
        if self._on_evict is not None:
            self._on_evict(key, span)
        else:
            cast(_Closable, span).fail(ABANDONED)

    def state(self, key: Hashable) -> Any:
        return self._states.get(key)

    def pop(self, key: Hashable) -> tuple[S, Any] | None:
        span = self.spans.pop(key, None)
        state = self._states.pop(key, None) if self._states else None
        return None if span is None else (span, state)

    def close_all(self) -> None:
        """Close every open span as unfinished (e.g. at uninstrument), oldest first."""
        spans = self.spans
        while spans:
            try:
                key = next(iter(spans))  # one at a time: hooks may still put
            except (StopIteration, RuntimeError):
                continue
            span = spans.pop(key, None)
            if span is not None:
                self._states.pop(key, None)
                self._evict(key, span)
        self._born.clear()

    def __len__(self) -> int:
        return len(self.spans)
