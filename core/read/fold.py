"""Fold events into spans: a span is one span_id's start joined with its end or error.
Used by the CLI, the stores' read side, exporters and tests alike.

Reading never trusts what is stored: an envelope field of the wrong type is left out of the fold and
reported (on the span's `problems`, and in the caller's `problems` list); a span in a parent cycle is
kept, flagged `cycle`, and shown at the root level. Nothing here recurses, so any depth of nesting folds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tracewire.model import attributes as A

_STR_FIELDS = ("trace_id", "kind", "phase", "name", "framework", "type", "parent_span_id", "session_id",
               "user_id", "span_id")
_ERROR_KEYS = ("type", "message", "stacktrace")


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
    depth: int = 0  # 0 for a root; set by `tree`
    cycle: bool = False  # its parent chain loops back to itself: shown as a root instead of vanishing
    problems: list[str] = field(default_factory=list)  # stored fields that could not be used, e.g. "invalid_field:tags"

    @property
    def duration_ms(self) -> float | None:
        if self.start_ns is None or self.end_ns is None:
            return None
        return (self.end_ns - self.start_ns) / 1e6

    def walk(self) -> Iterator[SpanView]:
        """This span and everything under it, depth first (iterative: any depth)."""
        stack = [self]
        while stack:
            s = stack.pop()
            yield s
            stack.extend(reversed(s.children))


_STR_OR_NONE = frozenset((str, type(None)))
_INT_OR_NONE = frozenset((int, type(None)))
_DICT_OR_NONE = frozenset((dict, type(None)))


def invalid_fields(e: dict[str, Any]) -> list[str]:
    """Envelope fields of `e` whose type is not the schema's (a missing or null field is not invalid)."""
    get = e.get
    tags = get("tags")
    err = get("error")
    # Fast path for well-formed events (reads fold every event of a trace): C-level maps, no Python loop.
    if (_STR_OR_NONE.issuperset(map(type, map(get, _STR_FIELDS)))
            and type(get("time")) in _INT_OR_NONE and type(get("seq")) in _INT_OR_NONE
            and type(get("attributes")) in _DICT_OR_NONE and type(get("metadata")) in _DICT_OR_NONE
            and (tags is None or (type(tags) is list and _STR_OR_NONE.issuperset(map(type, tags)) and None not in tags))
            and (err is None or (type(err) is dict and _STR_OR_NONE.issuperset(map(type, map(err.get, _ERROR_KEYS)))))):
        return []
    bad = [f for f in _STR_FIELDS if (v := get(f)) is not None and type(v) is not str]
    for f in ("time", "seq"):
        v = e.get(f)
        if v is not None and type(v) is not int:
            bad.append(f)
    for f in ("attributes", "metadata"):
        v = e.get(f)
        if v is not None and type(v) is not dict:
            bad.append(f)
    tags = e.get("tags")
    if tags is not None and (type(tags) is not list or any(type(t) is not str for t in tags)):
        bad.append("tags")
    err = e.get("error")
    if err is not None and (type(err) is not dict
                            or any((v := err.get(k)) is not None and type(v) is not str for k in _ERROR_KEYS)):
        bad.append("error")
    return bad


def _note(problems: list[dict[str, Any]] | None, event: Any, reason: str) -> None:
    if problems is not None:
        eid = event.get("id") if isinstance(event, dict) else None
        problems.append({"event_id": eid if isinstance(eid, str) else None, "reason": reason})


def span_key(e: dict[str, Any]) -> str | None:
    """The span an event belongs to (its span_id, else its own id), or None when it names neither."""
    sid = e.get("span_id")
    if type(sid) is str and sid:
        return sid
    eid = e.get("id")
    return eid if type(eid) is str and eid else None


def fold(events: Iterable[Any], problems: list[dict[str, Any]] | None = None) -> list[SpanView]:
    """Spans (and point events, as spans with status 'point') in start order. Unusable events and fields
    are skipped and, when `problems` is given, listed there as {"event_id", "reason"}."""
    spans: dict[str, SpanView] = {}
    late_input: dict[str, Any] = {}
    checked: list[tuple[dict[str, Any], list[str]]] = []
    for e in events:
        if type(e) is not dict:
            _note(problems, e, "not_an_object")
            continue
        bad = invalid_fields(e)
        if bad:
            e = {k: v for k, v in e.items() if k not in bad}
            for f in bad:
                _note(problems, e, f"invalid_field:{f}")
        checked.append((e, bad))
    for e, bad in sorted(checked, key=lambda c: (c[0].get("time") or 0, c[0].get("seq") or 0)):
        sid = span_key(e)
        if sid is None:
            _note(problems, e, "missing_field:span_id")
            continue
        s = spans.get(sid)
        if s is None:
            s = spans[sid] = SpanView(
                sid, e.get("trace_id") or "", e.get("parent_span_id"), e.get("kind") or "custom",
                e.get("name") or "", e.get("framework"), seq=e.get("seq") or 0,
            )
        if bad:
            s.problems = list(dict.fromkeys([*s.problems, *(f"invalid_field:{f}" for f in bad)]))
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


def _link(spans: list[SpanView]) -> list[SpanView]:
    """Fill in `children`, `depth` and `cycle` for folded spans; return the roots. A span whose parent is
    unknown is a root; so is every span on a parent cycle (flagged), so none of them vanishes."""
    by_id = {s.span_id: s for s in spans}
    parent: dict[str, str | None] = {
        s.span_id: s.parent_span_id if s.parent_span_id in by_id else None for s in spans}
    state: dict[str, int] = {}  # 1: on the chain being followed, 2: settled
    for s in spans:
        chain: list[str] = []
        x: str | None = s.span_id
        while x is not None and x not in state:
            state[x] = 1
            chain.append(x)
            x = parent[x]
        if x is not None and state[x] == 1:  # the chain came back to itself: a cycle from x on
            for member in chain[chain.index(x):]:
                by_id[member].cycle = True
        for y in chain:
            state[y] = 2
    roots: list[SpanView] = []
    for s in spans:
        s.children = []
    for s in spans:
        p = parent[s.span_id]
        if p is None or s.cycle:
            roots.append(s)
        else:
            by_id[p].children.append(s)
    stack = [(r, 0) for r in roots]
    while stack:
        node, depth = stack.pop()
        node.depth = depth
        stack.extend((c, depth + 1) for c in node.children)
    return roots


def tree(events: Iterable[Any], problems: list[dict[str, Any]] | None = None) -> list[SpanView]:
    """Root spans with `children` filled in (a span whose parent is unknown becomes a root, and so does a
    span on a parent cycle, flagged `cycle`)."""
    return _link(fold(events, problems))


def flatten(roots: Iterable[SpanView]) -> list[SpanView]:
    """Every span of a tree in display order (depth first, children in start order), without recursion."""
    out: list[SpanView] = []
    for r in roots:
        out.extend(r.walk())
    return out


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
    problems: int = 0  # stored events or fields that could not be used (see `tree`)
    user_id: str | None = None
    tags: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # of its LLM calls, response model else requested
    errors: int = 0  # spans that failed
    failed: str | None = None  # "kind name" of the span that failed first: where an error status comes from
    short_id: str | None = None  # the shortest prefix no other trace id in the store shares (filled by listings)


def failures(spans: Iterable[SpanView]) -> list[SpanView]:
    """The failed spans in the order they failed: the first is where the trace's error comes from (an
    error travels outwards, so the span it started in ends first)."""
    return sorted((s for s in spans if s.status == "error"), key=lambda s: (s.end_ns or 0, s.seq))


def summarize(trace_id: str, events: Iterable[Any], problems: list[dict[str, Any]] | None = None) -> TraceSummary:
    """One trace's listing row. `problems`, when given, receives what could not be used (and may already
    hold the caller's own, e.g. unreadable stored rows: they are counted too)."""
    found: list[dict[str, Any]] = [] if problems is None else problems
    spans = fold(events, found)
    return _summary(trace_id, spans, _link(spans), found)


def summarize_tree(trace_id: str, events: Iterable[Any],
                   problems: list[dict[str, Any]] | None = None) -> tuple[TraceSummary, list[SpanView]]:
    """`summarize` and `tree` of the same events, folding them once (a trace page needs both)."""
    found: list[dict[str, Any]] = [] if problems is None else problems
    spans = fold(events, found)
    roots = _link(spans)
    return _summary(trace_id, spans, roots, found), roots


def _summary(trace_id: str, spans: list[SpanView], roots: list[SpanView],
             found: list[dict[str, Any]]) -> TraceSummary:
    root = next((s for s in roots if s.status != "point"), roots[0] if roots else None)
    real = [s for s in spans if s.status != "point"]
    status = "error" if any(s.status == "error" for s in real) else (
        "open" if any(s.status == "open" for s in real) else "ok")
    llm = [s for s in real if s.kind == "llm"]
    starts = [s.start_ns for s in spans if s.start_ns is not None]
    ends = [s.end_ns for s in spans if s.end_ns is not None]
    failed = failures(real)
    models = (s.attributes.get(A.RESPONSE_MODEL) or s.attributes.get(A.REQUEST_MODEL) for s in llm)
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
        problems=len(found),
        user_id=next((s.user_id for s in spans if s.user_id), None),
        tags=list(dict.fromkeys(t for s in spans for t in s.tags)),
        models=list(dict.fromkeys(m for m in models if isinstance(m, str) and m)),
        errors=len(failed),
        failed=f"{failed[0].kind} {failed[0].name}" if failed else None,
    )


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0
