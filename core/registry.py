"""Open spans keyed by a framework's own run id, for adapters whose start and end hooks are
separate calls. Bounded: a run whose end never comes (a killed stream, a crashed worker) is
closed as unfinished after `ttl` seconds or when `max_open` is exceeded, never kept forever."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar, cast

ABANDONED = {"type": "tracewire.Unfinished", "message": "the framework never reported the end of this run"}


class _Closable(Protocol):
    def fail(self, error: Any) -> Any: ...


S = TypeVar("S")  # a _Closable, unless the registry is given `on_evict`


class SpanRegistry(Generic[S]):
    """Holds Spans, or an adapter's own per-run objects that close their span with `fail`, or any
    per-run value when `on_evict(key, value)` says how to close what it stands for."""

    def __init__(self, max_open: int = 10_000, ttl: float = 3600.0, *,
                 names: tuple[str, str] = ("max_open", "ttl"),
                 on_evict: Callable[[Hashable, Any], None] | None = None) -> None:
        """`names`: what the adapter calls the two settings, for the error a bad value raises."""
        if isinstance(max_open, bool) or not isinstance(max_open, int) or max_open < 1:
            raise ValueError(f"{names[0]} must be a positive int, got {max_open!r}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ValueError(f"{names[1]} must be a positive number of seconds, got {ttl!r}")
        ttl = float(ttl)
        self._spans: OrderedDict[Hashable, tuple[S, float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_open
        self._ttl = ttl
        self._next_check = 0.0  # no entry can be stale before this (monotonic) time
        self._on_evict = on_evict

    @property
    def max_open(self) -> int:
        return self._max

    def put(self, key: Hashable, span: S, state: Any = None) -> None:
        """Register `span` (plus any adapter state, e.g. stream buffers) under `key`."""
        now = time.monotonic()
        spans = self._spans
        # One dict operation, atomic under the GIL: no lock on the hooks' common path. The lock
        # only keeps two evicting threads from closing the same span twice.
        spans[key] = (span, now, state)
        if len(spans) <= self._max and now < self._next_check:
            return  # the common case: nothing can be due, skip the scan
        expired: list[tuple[Hashable, S]] = []
        with self._lock:
            while spans:
                try:
                    oldest_key, (old, t0, _) = next(iter(spans.items()))
                except (StopIteration, RuntimeError):  # emptied or changed by another thread
                    break
                if len(spans) <= self._max and now - t0 < self._ttl:
                    self._next_check = t0 + self._ttl
                    break
                if spans.pop(oldest_key, None) is not None:
                    expired.append((oldest_key, old))
        for old_key, old in expired:
            self._evict(old_key, old)

    def _evict(self, key: Hashable, span: S) -> None:
        if self._on_evict is not None:
            self._on_evict(key, span)
        else:
            cast(_Closable, span).fail(ABANDONED)

    def get(self, key: Hashable) -> S | None:
        entry = self._spans.get(key)
        return entry[0] if entry else None

    def state(self, key: Hashable) -> Any:
        entry = self._spans.get(key)
        return entry[2] if entry else None

    def pop(self, key: Hashable) -> tuple[S, Any] | None:
        entry = self._spans.pop(key, None)  # atomic under the GIL, like `put`'s insert
        return (entry[0], entry[2]) if entry else None

    def take(self, key: Hashable) -> S | None:
        """`pop` for a registry that keeps no state: the span alone."""
        entry = self._spans.pop(key, None)
        return entry[0] if entry else None

    def close_all(self) -> None:
        """Close every open span as unfinished (e.g. at uninstrument)."""
        while True:
            try:
                key, (span, _, _) = self._spans.popitem(last=False)  # one at a time: hooks may still put
            except KeyError:
                return
            self._evict(key, span)

    def __len__(self) -> int:
        return len(self._spans)
