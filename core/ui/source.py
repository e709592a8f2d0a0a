"""What the viewer's pages read, whichever store holds the traces: the local SQLite store
(`tracewire.read.local.LocalStore` has these methods) or one project of the collector's store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from tracewire.read.query import Totals, TraceQuery
from tracewire.read.stats import Dashboard


class ReadSource(Protocol):
    def list_traces(self, limit: int = 20, offset: int = 0, session_id: str | None = None,
                    query: TraceQuery | None = None) -> list[dict[str, Any]]:
        """Trace summaries (TraceSummary fields, `short_id` filled), newest first, matching `query`
        (or the session); `offset` skips that many matches."""
        ...

    def newer_traces(self, query: TraceQuery, after_ns: int, after_id: str, limit: int) -> list[dict[str, Any]]:
        """Traces matching `query` that started after (after_ns, after_id), newest first: the rows a
        live list adds at its top."""
        ...

    def list_notes(self) -> list[str]:
        """What a list page must say about how complete its answer is (an index still catching up)."""
        ...

    def resolve(self, given: str) -> str:
        """The one trace id `given` names, whole or as a unique prefix; IdNotFound, AmbiguousId, ValueError."""
        ...

    def trace_events(self, trace_id: str) -> list[dict[str, Any]]:
        """The trace's events in time order (empty for an unknown trace)."""
        ...

    def sessions(self, limit: int = 20) -> list[tuple[str, Totals]]:
        """Sessions most recently active first, each with the roll-up of its traces."""
        ...

    def scores(self, *, trace_ids: Sequence[str] | None = None, session_id: str | None = None,
               name: str | None = None) -> list[dict[str, Any]]:
        """Scores as dicts (tracewire.model.score.FIELDS), oldest first: of these traces and their spans,
        a session's own, of one name."""
        ...

    def dashboard(self, since_ns: int, until_ns: int) -> Dashboard:
        ...

    def experiments_db(self) -> str | None:
        """The SQLite file holding this store's experiment runs; None where there is none to read (the
        collector's store: experiments are kept in the local store of the machine that ran them)."""
        ...

    def close(self) -> None:
        ...
