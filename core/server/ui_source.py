"""One project of the collector's store as the web viewer reads it (the methods of `tracewire.ui.source.
ReadSource`). Every read names the project, so another project's trace, session or id prefix is as
absent as a missing one: listing, sessions and the trace index are filtered by project in SQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tracewire.model import attributes as A
from tracewire.read.fold import fold
from tracewire.read.query import IdNotFound, Totals, TraceQuery, raise_unless_one
from tracewire.read.stats import BUCKETS, TOP_FAILING, Dashboard, ModelUse, percentile
from tracewire.server.store import TraceFilter

if TYPE_CHECKING:
    from tracewire.server.app import Collector

# The dashboard folds the traces started in its range (the collector's index has no per-event columns to
# aggregate in SQL); past this many, the newest are shown.
DASHBOARD_TRACES = 5_000
_CHUNK = 200  # traces read from the store at a time


def _number(v: Any) -> float | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class ProjectSource:
    def __init__(self, col: Collector, project: str) -> None:
        self.col = col
        self.project = project

    def list_traces(self, limit: int = 20, offset: int = 0, session_id: str | None = None,
                    query: TraceQuery | None = None) -> list[dict[str, Any]]:
        q = query or TraceQuery(session_id=session_id)
        if any("\x00" in v for v in (q.session_id, q.user_id, q.name, q.model, q.text, q.framework, *q.tags,
                                      *(k + v for k, v in q.meta)) if v):
            return []  # cannot be stored (values are validated), and PostgreSQL text refuses NUL
        flt = TraceFilter(q.since, q.until, q.session_id, q.user_id)
        traces: list[dict[str, Any]] = self.col.list_traces(self.project, flt, limit, offset, q)["traces"]
        return traces

    def newer_traces(self, query: TraceQuery, after_ns: int, after_id: str, limit: int) -> list[dict[str, Any]]:
        since = after_ns if query.since is None else max(query.since, after_ns)
        rows = self.list_traces(limit + 1, 0, query=replace(query, since=since, sort="start", descending=True))
        return [r for r in rows if (r.get("start_ns") or 0, r["trace_id"]) > (after_ns, after_id)][:limit]

    def list_notes(self) -> list[str]:
        if self.col.store.search_backfill_pending():
            return ["The search index is still being built for traces stored before it existed: "
                    "a search may miss some of them until it is done."]
        return []

    def resolve(self, given: str) -> str:
        if "\x00" in given:
            raise IdNotFound(given)
        ids, count = self.col.store.match_trace_ids(self.project, given)
        return raise_unless_one(given, ids, count, str)

    def trace_events(self, trace_id: str) -> list[dict[str, Any]]:
        if "\x00" in trace_id:
            return []
        return self.col.store.events_of(self.project, [trace_id])[trace_id]

    def sessions(self, limit: int = 20) -> list[tuple[str, Totals]]:
        rows = self.col.sessions(self.project, None, None, None, limit)["sessions"]
        return [(r.pop("session_id"), Totals(**r)) for r in rows]

    def scores(self, *, trace_ids: Sequence[str] | None = None, session_id: str | None = None,
               name: str | None = None) -> list[dict[str, Any]]:
        if any("\x00" in v for v in (session_id, name, *(trace_ids or ())) if v):
            return []  # cannot be stored, and PostgreSQL text refuses NUL
        return self.col.store.scores(self.project, trace_ids=trace_ids, session_id=session_id, name=name)

    def experiments_db(self) -> str | None:
        return None  # experiments are kept in the local store of the machine that ran them

    def dashboard(self, since_ns: int, until_ns: int) -> Dashboard:
        """The local dashboard's figures (see `tracewire.read.stats`) over the traces that started in the
        range, folded: their LLM calls and failures are counted by the time of their own events."""
        until_ns = max(until_ns, since_ns + 1)
        width = -(-(until_ns - since_ns) // BUCKETS)
        d = Dashboard(since_ns, until_ns, width, [0] * BUCKETS, [0] * BUCKETS)
        models: dict[str, ModelUse] = {}
        failing: Counter[tuple[str, str]] = Counter()
        latencies: list[float] = []

        def bucket(t: int) -> int:
            return min((t - since_ns) // width, BUCKETS - 1)

        ids = self.col.store.trace_ids(self.project, TraceFilter(since_ns, until_ns), DASHBOARD_TRACES, 0)
        for i in range(0, len(ids), _CHUNK):
            for events in self.col.store.events_of(self.project, ids[i:i + _CHUNK]).values():
                times = [t for e in events if isinstance(t := e.get("time"), int)]
                if not times:
                    continue
                d.traces[bucket(min(times))] += 1
                d.trace_count += 1
                d.failed_traces += any(e.get("phase") == "error" for e in events)
                latencies.append((max(times) - min(times)) / 1e6)
                failing.update((str(e.get("kind") or ""), str(e.get("name") or "")) for e in events
                               if e.get("phase") == "error" and isinstance(t := e.get("time"), int)
                               and since_ns <= t <= until_ns)
                for s in fold(events):
                    if s.kind != "llm" or s.status == "point" or s.start_ns is None \
                            or not since_ns <= s.start_ns <= until_ns:
                        continue
                    d.llm_calls[bucket(s.start_ns)] += 1
                    d.llm_call_count += 1
                    a = s.attributes
                    name = a.get(A.RESPONSE_MODEL) or a.get(A.REQUEST_MODEL)
                    m = models.setdefault(name if isinstance(name, str) else "", ModelUse(
                        name if isinstance(name, str) else "", 0, 0, 0, 0.0))
                    m.calls += 1
                    m.input_tokens += int(_number(a.get(A.USAGE_INPUT_TOKENS)) or 0)
                    m.output_tokens += int(_number(a.get(A.USAGE_OUTPUT_TOKENS)) or 0)
                    m.cost_usd = round(m.cost_usd + (_number(a.get(A.COST_USD)) or 0.0), 8)
        latencies.sort()
        d.p50_ms, d.p95_ms = percentile(latencies, 50), percentile(latencies, 95)
        d.models = sorted(models.values(), key=lambda m: (-(m.input_tokens + m.output_tokens), m.model))
        d.failing = [(k, n, c) for (k, n), c in
                     sorted(failing.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FAILING]]
        return d

    def close(self) -> None:
        """Nothing to release: the collector's store is shared by every request."""
