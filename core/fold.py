"""Fold events into spans: a span is one span_id's start joined with its end or error.
Used by the CLI, the stores' read side, exporters and tests alike."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import attributes as A


@dataclass
class SpanView:
    span_id: str
    trace_id: str
    parent_span_id: str | None
    kind: str
    name: str
    framework: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    status: str = "open"  # open | ok | error | point
    type: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    children: list[SpanView] = field(default_factory=list)
    seq: int = 0

    @property
    def duration_ms(self) -> float | None:
        if self.start_ns is None or self.end_ns is None:
            return None
        return (self.end_ns - self.start_ns) / 1e6

    def walk(self) -> Iterable[SpanView]:
        yield self
        for child in self.children:
            yield from child.walk()


def fold(events: Iterable[dict[str, Any]]) -> list[SpanView]:
    """Spans (and point events, as spans with status 'point') in start order."""
    spans: dict[str, SpanView] = {}
    late_input: dict[str, Any] = {}
    for e in sorted(events, key=lambda e: (e.get("time") or 0, e.get("seq") or 0)):
        sid = e.get("span_id") or e["id"]
        s = spans.get(sid)
        if s is None:
            s = spans[sid] = SpanView(
                sid, e.get("trace_id") or "", e.get("parent_span_id"), e.get("kind") or "custom",
                e.get("name") or "", e.get("framework"), seq=e.get("seq") or 0,
            )
        phase = e.get("phase")
        s.attributes.update(e.get("attributes") or {})
        s.session_id = s.session_id or e.get("session_id")
        s.user_id = s.user_id or e.get("user_id")
        if e.get("tags"):
            s.tags = list(dict.fromkeys([*s.tags, *e["tags"]]))
        if e.get("metadata"):
            s.metadata = {**(s.metadata or {}), **e["metadata"]}
        if phase == "start":
            s.start_ns = e.get("time")
            s.input = e.get("input", s.input)
            s.parent_span_id = e.get("parent_span_id")
        elif phase in ("end", "error"):
            s.end_ns = e.get("time")
            if s.start_ns is None:  # an end without a start still makes a span
                s.start_ns = s.end_ns
            s.output = e.get("output", s.output)
            if "input" in e:  # known only at the end (a streamed chain): the truer input
                late_input[sid] = e["input"]
            s.status = "ok" if phase == "end" else "error"
            if phase == "error":
                s.error = e.get("error")
        else:
            s.start_ns = s.end_ns = e.get("time")
            s.status = "point"
            s.type = e.get("type")
            s.input = e.get("input")
            s.output = e.get("output")
            s.error = e.get("error")
    for sid, value in late_input.items():
        spans[sid].input = value
    return sorted(spans.values(), key=lambda s: (s.start_ns or 0, s.seq))


def tree(events: Iterable[dict[str, Any]]) -> list[SpanView]:
    """Root spans with `children` filled in (a span whose parent is unknown becomes a root)."""
    spans = fold(events)
    by_id = {s.span_id: s for s in spans}
    roots: list[SpanView] = []
    for s in spans:
        s.children = []
    for s in spans:
        parent = by_id.get(s.parent_span_id) if s.parent_span_id else None
        (parent.children if parent is not None else roots).append(s)
    return roots


@dataclass
class TraceSummary:
    trace_id: str
    name: str
    kind: str
    start_ns: int | None
    duration_ms: float | None
    status: str
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    session_id: str | None
    spans: int


def summarize(trace_id: str, events: Iterable[dict[str, Any]]) -> TraceSummary:
    spans = fold(events)
    roots = [s for s in spans if not s.parent_span_id or s.parent_span_id not in {x.span_id for x in spans}]
    root = next((s for s in roots if s.status != "point"), roots[0] if roots else None)
    real = [s for s in spans if s.status != "point"]
    status = "error" if any(s.status == "error" for s in real) else (
        "open" if any(s.status == "open" for s in real) else "ok")
    llm = [s for s in real if s.kind == "llm"]
    starts = [s.start_ns for s in spans if s.start_ns is not None]
    ends = [s.end_ns for s in spans if s.end_ns is not None]
    return TraceSummary(
        trace_id=trace_id,
        name=root.name if root else "",
        kind=root.kind if root else "",
        start_ns=min(starts) if starts else None,
        duration_ms=((max(ends) - min(starts)) / 1e6) if starts and ends else None,
        status=status,
        llm_calls=len(llm),
        input_tokens=int(sum(_num(s.attributes.get(A.USAGE_INPUT_TOKENS)) for s in llm)),
        output_tokens=int(sum(_num(s.attributes.get(A.USAGE_OUTPUT_TOKENS)) for s in llm)),
        cost_usd=round(sum(float(_num(s.attributes.get(A.COST_USD))) for s in llm), 8),
        session_id=next((s.session_id for s in spans if s.session_id), None),
        spans=len(real),
    )


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0
