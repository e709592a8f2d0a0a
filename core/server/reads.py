"""The read model of a trace: stored rows parsed (bad ones reported, never raised), spans laid out
page by page without recursion, and a small cache of the plan that pages a large trace."""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import orjson

from tracewire.read.fold import SpanView, span_key

DEFAULT_SPAN_PAGE = 1000
MAX_SPAN_PAGE = 10_000
MAX_PROBLEMS_SHOWN = 100
# Spans nest in `children` at most this deep in one response; deeper ones are listed at the top level
# (their `depth` and `parent_span_id` place them). Keeps the JSON shallow enough for any encoder or client.
MAX_NESTING = 32

_CONTENT_FIELDS = ("attributes", "input", "output", "error", "tags", "metadata")
_SPAN_FIELDS = [f.name for f in fields(SpanView) if f.name != "children"]


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = True


@contextmanager
def bulk_objects() -> Iterator[None]:
    """Pause the cyclic GC while a trace's events are parsed and folded: they make no reference cycles, and
    with tens of thousands of fresh dicts the collector's repeated passes cost more than the parse itself.
    Counted, so overlapping reads on other threads turn it back on only when the last one is done."""
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        _gc_holders += 1
        if _gc_holders == 1:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


def parse_rows(rows: list[tuple[str, str]], problems: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(event id, body, parsed body) for the stored rows that are JSON objects; the others go to `problems`."""
    out = []
    for event_id, body in rows:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            problems.append({"event_id": event_id, "reason": "unreadable_body"})
            continue
        if type(doc) is not dict:
            problems.append({"event_id": event_id, "reason": "not_an_object"})
            continue
        if doc.get("id") != event_id:
            problems.append({"event_id": event_id, "reason": "invalid_field:id"})
        out.append((event_id, body, doc))
    return out


def _span_doc(s: SpanView) -> dict[str, Any]:
    d = {f: getattr(s, f) for f in _SPAN_FIELDS}
    for f in _CONTENT_FIELDS:
        # Content goes in pre-serialized: its own depth never adds to the span tree's nesting.
        try:
            d[f] = orjson.Fragment(orjson.dumps(d[f]))
        except orjson.JSONEncodeError:
            d[f] = None
            d["problems"] = [*d["problems"], f"unserializable_field:{f}"]
    d["duration_ms"] = s.duration_ms
    d["children"] = []
    return d


def page_spans(page: list[SpanView]) -> list[dict[str, Any]]:
    """The page's spans as a forest (see openapi.TRACE_DESCRIPTION), built without recursion."""
    out: list[dict[str, Any]] = []
    placed: dict[str, tuple[dict[str, Any], int]] = {}
    for s in page:  # display order: a parent always comes before its children
        d = _span_doc(s)
        parent = placed.get(s.parent_span_id) if s.parent_span_id and not s.cycle else None
        if parent is not None and parent[1] + 1 < MAX_NESTING:
            parent[0]["children"].append(d)
            placed[s.span_id] = (d, parent[1] + 1)
        else:
            out.append(d)
            placed[s.span_id] = (d, 0)
    return out


@dataclass(frozen=True)
class TracePlan:
    """What paging a large trace needs from its full fold, kept small: the display order (span id, depth,
    cycle), which stored events make each span, and the trace's problems. Later pages then read only their
    own events instead of re-reading and re-folding the whole trace."""

    spans: list[tuple[str, int, bool]]
    events: dict[str, list[str]]
    loose: list[str]  # events that belong to no span
    problems: list[dict[str, Any]]

    @classmethod
    def of(cls, order: list[SpanView], parsed: list[tuple[str, str, dict[str, Any]]],
           problems: list[dict[str, Any]]) -> TracePlan:
        events: dict[str, list[str]] = {}
        loose: list[str] = []
        for event_id, _, doc in parsed:
            k = span_key(doc)
            if k is None:
                loose.append(event_id)
            else:
                events.setdefault(k, []).append(event_id)
        return cls([(s.span_id, s.depth, s.cycle) for s in order], events, loose, list(problems))


class PlanCache:
    """A few recent plans, each valid while the trace's index row (event count, time range) is unchanged."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._plans: OrderedDict[tuple[str, str], tuple[tuple[int, int, int], TracePlan]] = OrderedDict()

    def get(self, project: str, trace_id: str, version: tuple[int, int, int] | None) -> TracePlan | None:
        with self._lock:
            hit = self._plans.get((project, trace_id))
            if hit is None or version is None or hit[0] != version:
                return None
            self._plans.move_to_end((project, trace_id))
            return hit[1]

    def put(self, project: str, trace_id: str, version: tuple[int, int, int], plan: TracePlan) -> None:
        with self._lock:
            self._plans[(project, trace_id)] = (version, plan)
            self._plans.move_to_end((project, trace_id))
            while len(self._plans) > self._size:
                self._plans.popitem(last=False)
