"""The trace list's rows: which traces match the filters (one query on the store's indexes), then
each listed trace folded into its summary, plus the span that failed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tracewire.read.fold import SpanView, summarize, tree
from tracewire.read.local import LocalStore

STATUSES = ("ok", "error")


@dataclass(frozen=True)
class Filters:
    """The list's query string: every filter is optional; `name` is a substring of the root span's name."""

    session: str = ""
    user: str = ""
    status: str = ""  # "", "ok" (no span failed) or "error"
    name: str = ""

    @classmethod
    def from_query(cls, query: dict[str, list[str]]) -> Filters:
        def one(key: str) -> str:
            return (query.get(key) or [""])[0].strip()

        status = one("status")
        return cls(one("session"), one("user"), status if status in STATUSES else "", one("name"))

    def as_query(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class ViewerStore(LocalStore):
    """The local store with what the list needs beyond `LocalStore.list_traces`: user, status and name filters."""

    def trace_ids(self, filters: Filters, limit: int, offset: int = 0) -> list[str]:
        """Matching trace ids, newest start first."""
        conds: list[str] = []
        args: list[Any] = []
        if filters.session:
            conds.append("trace_id IN (SELECT trace_id FROM events WHERE session_id = ?)")
            args.append(filters.session)
        if filters.user:
            conds.append("trace_id IN (SELECT trace_id FROM events WHERE user_id = ?)")
            args.append(filters.user)
        if filters.name:
            conds.append("trace_id IN (SELECT trace_id FROM events WHERE phase = 'start' AND parent_span_id IS NULL"
                         " AND name LIKE ? ESCAPE '\\')")
            args.append(_like(filters.name))
        if filters.status:
            conds.append(("trace_id IN" if filters.status == "error" else "trace_id NOT IN")
                         + " (SELECT trace_id FROM events WHERE phase = 'error')")
        where = ("WHERE " + " AND ".join(conds)) if conds else ""
        rows = self._conn.execute(
            f"SELECT trace_id, MIN(time) AS t FROM events {where} GROUP BY trace_id ORDER BY t DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [str(tid) for tid, _ in rows]

    def ids_starting(self, prefix: str, limit: int = 2) -> list[str]:
        """Trace ids that begin with `prefix` (a range on the trace index: no scan)."""
        rows = self._conn.execute(
            "SELECT DISTINCT trace_id FROM events WHERE trace_id >= ? AND trace_id < ? ORDER BY trace_id LIMIT ?",
            (prefix, prefix + "\U0010ffff", limit)).fetchall()
        return [str(tid) for (tid,) in rows]


def failed_span(roots: list[SpanView]) -> SpanView | None:
    """Where the trace failed: the first failed span (in display order) none of whose children failed —
    the error's origin rather than every span it travelled up through."""
    for root in roots:
        for s in root.walk():
            if s.status == "error" and not any(c.status == "error" for c in s.children):
                return s
    return None


@dataclass
class TraceRow:
    summary: dict[str, Any]  # read.fold.TraceSummary as a dict
    failed: SpanView | None


def trace_rows(store: ViewerStore, filters: Filters, limit: int, offset: int) -> list[TraceRow]:
    rows = []
    for tid in store.trace_ids(filters, limit, offset):
        events = store.trace_events(tid)
        summary = asdict(summarize(tid, events))
        rows.append(TraceRow(summary, failed_span(tree(events)) if summary["status"] == "error" else None))
    return rows
