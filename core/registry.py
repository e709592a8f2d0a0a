"""Open spans keyed by a framework's own run id, for adapters whose start and end hooks are
separate calls. Bounded: a run whose end never comes (a killed stream, a crashed worker) is
closed as unfinished after `ttl` seconds or when `max_open` is exceeded, never kept forever."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from .client import Span

ABANDONED = {"type": "tracewire.Unfinished", "message": "the framework never reported the end of this run"}


class SpanRegistry:
    def __init__(self, max_open: int = 10_000, ttl: float = 3600.0, *,
                 names: tuple[str, str] = ("max_open", "ttl")) -> None:
        """`names`: what the adapter calls the two settings, for the error a bad value raises."""
        if isinstance(max_open, bool) or not isinstance(max_open, int) or max_open < 1:
            raise ValueError(f"{names[0]} must be a positive int, got {max_open!r}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ValueError(f"{names[1]} must be a positive number of seconds, got {ttl!r}")
        ttl = float(ttl)
        self._spans: OrderedDict[Hashable, tuple[Span, float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_open
        self._ttl = ttl
        self._next_check = 0.0  # no entry can be stale before this (monotonic) time

    def put(self, key: Hashable, span: Span, state: Any = None) -> None:
        """Register `span` (plus any adapter state, e.g. stream buffers) under `key`."""
        now = time.monotonic()
        with self._lock:
            self._spans[key] = (span, now, state)
            if len(self._spans) <= self._max and now < self._next_check:
                return  # the common case: nothing can be due, skip the scan
            expired: list[Span] = []
            while self._spans:
                oldest_key, (old, t0, _) = next(iter(self._spans.items()))
                if len(self._spans) <= self._max and now - t0 < self._ttl:
                    self._next_check = t0 + self._ttl
                    break
                del self._spans[oldest_key]
                expired.append(old)
        for old in expired:
            old.fail(ABANDONED)

    def get(self, key: Hashable) -> Span | None:
        entry = self._spans.get(key)
        return entry[0] if entry else None

    def entry(self, key: Hashable) -> tuple[Span, Any] | None:
        """(span, state) in one lookup, or None."""
        entry = self._spans.get(key)
        return (entry[0], entry[2]) if entry else None

    def state(self, key: Hashable) -> Any:
        entry = self._spans.get(key)
        return entry[2] if entry else None

    def pop(self, key: Hashable) -> tuple[Span, Any] | None:
        with self._lock:
            entry = self._spans.pop(key, None)
        return (entry[0], entry[2]) if entry else None

    def close_all(self) -> None:
        """Close every open span as unfinished (e.g. at uninstrument)."""
        with self._lock:
            spans = [s for s, _, _ in self._spans.values()]
            self._spans.clear()
        for span in spans:
            span.fail(ABANDONED)

    def __len__(self) -> int:
        return len(self._spans)
