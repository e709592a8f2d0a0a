"""The trace page's timeline (waterfall): every span of the tree, in the same order, as a bar on one time
scale. Bars are SVG rectangles whose position is given by attributes, so the strict CSP (no inline
styles) still holds and the page needs no script to lay them out. Rows are flat, like the tree's: the
page's script collapses and expands them by depth."""

from __future__ import annotations

from tracewire.read import formats as fmt
from tracewire.read.fold import SpanView, flatten
from tracewire.ui.markup import OPEN_DEPTH, esc, first_state, indent, row_data, trace_url

# The scale's width in SVG units: bars are drawn in this box and stretched to the row's width.
SCALE = 1000.0
# The slow rule (docs/viewer.md): a finished span other than a root is slow when it takes at least this
# share of the whole trace and none of its children does (where the time went, not every span around it) ...
SLOW_SHARE = 0.25
# ... or when it does the work itself (no child spans: an LLM call, a tool) and is among the slowest
# SLOW_RANK_SHARE of the trace's SLOW_RANK_MIN or more such spans, taking at least SLOW_OVER_MEDIAN
# times their median and at least SLOW_MIN_MS: an outlier among its peers, not the longest of many alike,
# nor a few milliseconds of jitter.
SLOW_RANK_SHARE = 0.05
SLOW_RANK_MIN = 20
SLOW_OVER_MEDIAN = 2.0
SLOW_MIN_MS = 100
# A timeline of up to this many spans opens with everything shown; a larger one opens like the tree
# (the roots open, and the way to the chosen and the failed span): thousands of bars at once are slow to
# lay out and to read.
OPEN_ALL_SPANS = 500


def _bounds(spans: list[SpanView]) -> tuple[int, int]:
    starts = [s.start_ns for s in spans if s.start_ns is not None]
    ends = [t for s in spans for t in (s.end_ns, s.start_ns) if t is not None]
    if not starts:
        return 0, 1
    return min(starts), max(max(ends), min(starts) + 1)


def slow_spans(spans: list[SpanView]) -> set[str]:
    """The span ids the slow rule marks (see SLOW_SHARE and SLOW_RANK_SHARE)."""
    t0, t1 = _bounds(spans)
    timed = [(s.end_ns - s.start_ns, s) for s in spans
             if s.depth > 0 and s.status in ("ok", "error") and s.start_ns is not None and s.end_ns is not None]
    big = {s.span_id for d, s in timed if d > 0 and d >= SLOW_SHARE * (t1 - t0)}
    slow = {s.span_id for _, s in timed if s.span_id in big and not any(c.span_id in big for c in s.children)}
    leaves = sorted((d for d, s in timed if all(c.status == "point" for c in s.children)), reverse=True)
    if len(leaves) >= SLOW_RANK_MIN:
        limit = max(leaves[max(1, int(len(leaves) * SLOW_RANK_SHARE)) - 1],
                    SLOW_OVER_MEDIAN * leaves[len(leaves) // 2], SLOW_MIN_MS * 1_000_000)
        slow |= {s.span_id for d, s in timed if d > 0 and d >= limit and all(c.status == "point" for c in s.children)}
    return slow


def render(roots: list[SpanView], trace_id: str, chosen: SpanView | None, slow: set[str] | None = None,
           keep_open: set[str] | frozenset[str] = frozenset()) -> str:
    """`keep_open`: the nodes open in a timeline too large to open whole (see OPEN_ALL_SPANS)."""
    spans = flatten(roots)
    slow = slow_spans(spans) if slow is None else slow
    state = first_state(spans, set(keep_open), OPEN_DEPTH if len(spans) > OPEN_ALL_SPANS else len(spans) + 1)
    t0, t1 = _bounds(spans)
    total = t1 - t0
    rows: list[str] = []
    for s, (is_open, hidden) in zip(spans, state, strict=True):
        start = s.start_ns if s.start_ns is not None else t0
        x = (start - t0) / total * SCALE
        css = ["tl-row", f"tl-{s.status}"]
        if s.status == "point":
            shape = f'<rect class="tl-point" x="{x:.2f}" y="1" width="4" height="12"></rect>'
            label = s.type or s.kind
            dur = ""
        else:
            end = s.end_ns if s.end_ns is not None else t1  # unfinished: runs to the end of what is known
            width = max((end - start) / total * SCALE, 1.5)  # a zero-length span still shows
            shape = f'<rect class="tl-bar" x="{x:.2f}" y="2" width="{width:.2f}" height="10"></rect>'
            label = s.kind
            dur = "unfinished" if s.status == "open" else fmt.duration(s.duration_ms)
            if s.span_id in slow:
                css.append("slow")
        if s is chosen:
            css.append("chosen")
        if is_open:
            css.append("open")
        ind, deep = indent(s)
        twisty = '<span class="twisty"></span>' if s.children else '<span class="spacer"></span>'
        rows.append(
            f'<a class="{" ".join(css)}"{row_data(s)}{" hidden" if hidden else ""} '
            f'href="{trace_url(trace_id, s.span_id, view="timeline")}#pane">'
            f'<span class="tl-label {ind}">{twisty}{deep}<span class="kind kind-{esc(s.kind)}">{esc(label)}</span>'
            f'<span class="name">{esc(s.name)}</span></span>'
            f'<svg class="tl-track" viewBox="0 0 {SCALE:.0f} 14" preserveAspectRatio="none" aria-hidden="true">'
            f"{shape}</svg><span class=\"dur\">{esc(dur)}</span></a>")
    scale = (f'<div class="tl-scale"><span>0</span><span>{esc(fmt.duration(total / 1e6))}</span></div>')
    return f'<div class="timeline flat" id="flat-rows">{scale}{"".join(rows)}</div>'
