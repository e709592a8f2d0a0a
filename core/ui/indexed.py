"""The local store as the viewer reads it: before a list is read, the read model takes in what was
written since the background indexer's last round (bounded, so a store indexed for the first time
does not hold a page up), and the list says how far behind the model still is."""

from __future__ import annotations

import sqlite3
from typing import Any

from tracewire.read.index import TraceIndex
from tracewire.read.local import LocalStore
from tracewire.read.query import TraceQuery

CATCH_UP_EVENTS = 5000
CATCH_UP_S = 0.25
# What arrived since that catch-up may be missing from the page: a store written without pause is then
# still listed from its read model, not folded from its events on every request.
FRESH_WITHIN = CATCH_UP_EVENTS


class IndexedStore(LocalStore):
    def __init__(self, db: str, index: TraceIndex) -> None:
        super().__init__(db)
        self._index = index
        self._fresh = 0

    def catch_up(self) -> int:
        """Take in what was written since the indexer's last round; return how many events a list may
        then miss: those that arrive meanwhile, or none when the model could not be brought up to date
        (it is then only read if it holds every event)."""
        try:
            left = self._index.catch_up(CATCH_UP_EVENTS, CATCH_UP_S, wait_s=CATCH_UP_S)
        except (sqlite3.Error, OSError):  # not ours to write: the list reads the events
            self._fresh = 0
        else:
            self._fresh = FRESH_WITHIN if left == 0 else 0
        return self._fresh

    def list_traces(self, limit: int = 20, offset: int = 0, session_id: str | None = None,
                    query: TraceQuery | None = None, fresh_within: int = 0) -> list[dict[str, Any]]:
        return super().list_traces(limit, offset, session_id, query, max(fresh_within, self.catch_up()))

    def newer_traces(self, query: TraceQuery, after_ns: int, after_id: str, limit: int) -> list[dict[str, Any]]:
        self.catch_up()
        return super().newer_traces(query, after_ns, after_id, limit)

    def list_notes(self) -> list[str]:
        lag = self.index_lag()
        if lag and lag > self._fresh:
            return [f"Indexing the store: {lag:,} events to go; search, sorts and some filters see only "
                    "the traces indexed so far."]
        return []
