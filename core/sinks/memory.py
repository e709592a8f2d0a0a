"""In-memory sink for tests and notebooks: keeps decoded events in a list."""

from __future__ import annotations

import threading
from typing import Any

from tracewire.sinks.base import BaseSink, Batch, WriteResult


class MemorySink(BaseSink):
    name = "memory"

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def write(self, batch: Batch) -> WriteResult:
        with self._lock:
            for event in batch.decoded():
                if event["id"] not in self._ids:  # idempotent on event id, like every sink
                    self._ids.add(event["id"])
                    self._events.append(event)
        return WriteResult.success()

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._ids.clear()

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self.clear()


def from_config(config: Any) -> MemorySink:
    return MemorySink()
