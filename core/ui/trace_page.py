"""`/traces/<id>`: the trace's header, its collapsible span tree, and the pane of the chosen span."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from tracewire.model import attributes as A
from tracewire.model.score import by_span
from tracewire.read import formats as fmt
from tracewire.read.fold import SpanView, TraceSummary, failures, flatten
from tracewire.ui import span_pane, timeline
from tracewire.ui.list_page import status_cell
from tracewire.ui.markup import (
    OPEN_DEPTH,
    as_text,
    esc,
    first_state,
    indent,
    model_of,
    page,
    row_data,
    trace_url,
)
from tracewire.ui.sessions_page import NOTED_POINTS, point_value, session_url
from tracewire.ui.span_pane import Scores, score_chip

VIEWS = ("tree", "timeline")
# The trace's header names its feedback and metric points, up to this many (each is also in the tree).
POINTS_SHOWN = 20
# A failed span's path on the header shows this many of its last steps.
PATH_STEPS = 8
# A tree row shows this many of its span's scores as badges (all of them are in the span's pane).
BADGES_SHOWN = 3


def cells(s: SpanView, slow: bool = False, scores: Scores = ()) -> str:
    """A span's row: kind (a point's type), name, then duration, model, tokens and cost when it has them,
    its status, and its `scores` as badges (an empty cell is left out: thousands of rows are quicker to
    build and lay out)."""
    a = s.attributes
    out = [f'<span class="kind kind-{esc(s.kind)}">{esc(s.type if s.status == "point" else s.kind)}</span>'
           f'<span class="name">{esc(s.name)}</span>']
    if s.status not in ("point", "open"):
        out.append(f'<span class="dur">{esc(fmt.duration(s.duration_ms))}</span>')
    model = model_of(s)
    if model:
        out.append(f'<span class="model">{esc(model)}</span>')
    if A.USAGE_INPUT_TOKENS in a or A.USAGE_OUTPUT_TOKENS in a:
        n_in, n_out = (v if isinstance(v := a.get(k), (int, float)) else None  # a stored string is no count
                       for k in (A.USAGE_INPUT_TOKENS, A.USAGE_OUTPUT_TOKENS))
        out.append(f'<span class="tok">{fmt.tokens(n_in)} / {fmt.tokens(n_out)} tok</span>')
    if isinstance(a.get(A.COST_USD), (int, float)):
        out.append(f'<span class="cost">{esc(fmt.cost(a[A.COST_USD]))}</span>')
    if s.status != "point":
        status = "unfinished" if s.status == "open" else ("slow" if slow and s.status == "ok" else s.status)
        out.append(f'<span class="status {esc(s.status)}">{status}</span>')
    if scores:
        more = f'<span class="more">+{len(scores) - BADGES_SHOWN}</span>' if len(scores) > BADGES_SHOWN else ""
        out.append(f'<span class="score-badges">{"".join(map(score_chip, scores[:BADGES_SHOWN]))}{more}</span>')
    return "".join(out)


def row_css(s: SpanView, chosen: SpanView | None, slow: set[str]) -> str:
    return ("row" + (" chosen" if chosen is s else "") + (" failed" if s.status == "error" else "")
            + (" slow" if s.span_id in slow else "") + (" unfinished" if s.status == "open" else "")
            + (" point" if s.status == "point" else ""))


def _tree(spans: list[SpanView], trace_id: str, chosen: SpanView | None, keep_open: set[str],
          error_path: set[str], slow: set[str], scored: Mapping[str, Scores]) -> str:
    """The tree as flat rows in display order: depth is indentation, and a row is hidden when a node above
    it is closed. The server sets the first state, so the page is right before its script runs."""
    out: list[str] = ['<ul class="tree flat" id="flat-rows">']
    for s, (is_open, hidden) in zip(spans, first_state(spans, keep_open, OPEN_DEPTH), strict=True):
        li = ["node", indent(s)[0]]
        if is_open:
            li.append("open")
        if s.span_id in keep_open:
            li.append("path")
        if s.span_id in error_path:
            li.append("error-path")
        twisty = '<span class="twisty"></span>' if s.children else '<span class="spacer"></span>'
        out.append(f'<li class="{" ".join(li)}"{row_data(s)}{" hidden" if hidden else ""}>{twisty}{indent(s)[1]}'
                   f'<a class="{row_css(s, chosen, slow)}" '
                   f'href="{trace_url(trace_id, s.span_id)}#pane">{cells(s, s.span_id in slow, scored.get(s.span_id, ()))}'
                   '</a></li>')
    out.append("</ul>")
    return "".join(out)


def _ancestors(spans: dict[str, SpanView], s: SpanView | None) -> set[str]:
    out: set[str] = set()
    while s is not None and s.parent_span_id in spans and s.parent_span_id not in out and not s.cycle:
        out.add(s.parent_span_id)  # type: ignore[arg-type]
        s = spans[s.parent_span_id]  # type: ignore[index]
    return out


def _failed_at(trace_id: str, spans: dict[str, SpanView], failed: SpanView) -> str:
    """The failing span's path from its root, as links: where to look first."""
    steps = [failed]
    while (steps[-1].parent_span_id in spans and not steps[-1].cycle
           and spans[steps[-1].parent_span_id or ""] not in steps):  # a cycle ends the walk too
        steps.append(spans[steps[-1].parent_span_id or ""])
    cut = len(steps) > PATH_STEPS
    steps = list(reversed(steps[:PATH_STEPS]))
    links = [f'<a class="step" href="{trace_url(trace_id, s.span_id)}#pane">'
             f'<span class="kind kind-{esc(s.kind)}">{esc(s.kind)}</span> {esc(s.name)}</a>' for s in steps]
    return (f'<div class="failed-at"><span class="k">failed at</span> {"… › " if cut else ""}'
            f'{" › ".join(links)}</div>')


def _points_line(trace_id: str, spans: list[SpanView]) -> str:
    """The trace's feedback and metric points on its header, each with its value and a link to it."""
    points = [s for s in spans if s.status == "point" and s.type in NOTED_POINTS]
    if not points:
        return ""
    items = []
    for p in points[:POINTS_SHOWN]:
        value = as_text(point_value(p))
        value = value if len(value) <= 80 else value[:79] + "…"
        items.append(f'<a class="point-link" data-span="{esc(p.span_id)}" href="{trace_url(trace_id, p.span_id)}#pane">'
                     f'<span class="kind kind-{esc(p.kind)}">{esc(p.type)}</span> <span class="name">{esc(p.name)}</span>'
                     f' <span class="v">{esc(" ".join(value.split()))}</span></a>')
    more = f'<span class="more">and {len(points) - POINTS_SHOWN} more in the tree</span>' \
        if len(points) > POINTS_SHOWN else ""
    return f'<div class="points-line">{"".join(items)}{more}</div>'


def _scores_line(own: Scores, stray: Sequence[Mapping[str, Any]]) -> str:
    """The trace's own scores on its header; a score of a span the trace does not hold (yet) is listed
    there too, naming its span."""
    if not own and not stray:
        return ""
    items = [score_chip(sc) for sc in own]
    items += [f'{score_chip(sc)}<span class="score-at">at span <code>{esc(sc["span_id"])}</code></span>'
              for sc in stray]
    return f'<div class="scores-line" id="trace-scores"><span class="k">scores</span>{"".join(items)}</div>'


def _view_tabs(trace_id: str, span_id: str | None, view: str) -> str:
    """Tree or timeline, kept in the URL so the view can be shared."""
    tabs = "".join(
        f'<a class="view-tab{" chosen" if v == view else ""}" id="view-{v}" '
        f'href="{trace_url(trace_id, span_id, view=None if v == "tree" else v)}">{v.capitalize()}</a>'
        for v in VIEWS)
    return f'<nav class="views">{tabs}</nav>'


def render(summary: TraceSummary, roots: list[SpanView], span_id: str | None, where: str,
           view: str = "tree", scores: Scores = ()) -> str:
    """`view`: "tree" (collapsible) or "timeline" (the same spans as bars on one time scale); `scores`:
    the trace's and its spans' (a store's `scores(trace_ids=[...])`)."""
    view = view if view in VIEWS else "tree"
    flat = flatten(roots)
    spans = {s.span_id: s for s in flat}
    own, scored = by_span(scores)
    stray = [sc for sc in scores if sc.get("span_id") and sc["span_id"] not in spans]
    failed = next(iter(failures(flat)), None)
    chosen = spans.get(span_id or "") or failed or (roots[0] if roots else None)
    error_path = {a for f in failures(flat) for a in _ancestors(spans, f)}
    keep_open = _ancestors(spans, chosen) | _ancestors(spans, failed)
    slow = timeline.slow_spans(flat)
    first = roots[0] if roots else None
    session = first.session_id if first else None
    facts = [("start", fmt.when(summary.start_ns)), ("duration", fmt.duration(summary.duration_ms)),
             ("spans", str(summary.spans)), ("LLM calls", str(summary.llm_calls)),
             ("tokens in / out", f"{fmt.tokens(summary.input_tokens)} / {fmt.tokens(summary.output_tokens)}"),
             ("cost", fmt.cost(summary.cost_usd))]
    if first is not None and first.user_id:
        facts.append(("user", first.user_id))
    if first is not None and first.tags:
        facts.append(("tags", ", ".join(first.tags)))
    unfinished = sum(s.status == "open" for s in flat)
    if unfinished:
        facts.append(("unfinished", str(unfinished)))
    if slow:
        facts.append(("slow", str(len(slow))))
    head = "".join(f'<span class="fact" data-fact="{esc(k)}"><span class="k">{esc(k)}</span> {esc(v)}</span>'
                   for k, v in facts)
    if session:
        head += (f'<span class="fact"><span class="k">session</span> '
                 f'<a class="session" href="{session_url(session)}">{esc(session)}</a></span>')
    head += f'<span class="fact">{status_cell(summary.status, summary.failed)}</span>'
    if failed is not None:
        head += _failed_at(summary.trace_id, spans, failed)
    head += _scores_line(own, stray)
    head += _points_line(summary.trace_id, flat)
    search = ('<input type="search" id="tree-search" placeholder="Search spans  ( / )" autocomplete="off" '
              'aria-label="Search the spans: name, kind, model or content">'
              '<span id="search-count" aria-live="polite"></span>')
    if view == "timeline":
        # ids apart from the tree's: the buttons act on whichever view the page shows
        tree_buttons = ('<button type="button" id="tl-expand" data-all="open">Expand all</button>'
                        '<button type="button" id="tl-collapse" data-all="close">Collapse all</button>')
        spans_view = timeline.render(roots, summary.trace_id, chosen, slow, keep_open)
    else:
        tree_buttons = ('<button type="button" id="expand-all" data-all="open">Expand all</button>'
                        '<button type="button" id="collapse-all" data-all="close">Collapse all</button>')
        spans_view = _tree(flat, summary.trace_id, chosen, keep_open, error_path, slow, scored)
    body = (f'<h1>{esc(summary.name or "(unnamed)")}</h1><div class="trace-id"><code>{esc(summary.trace_id)}</code>'
            f'<button type="button" class="copy" data-copy="{esc(summary.trace_id)}">copy</button></div>'
            f'<div class="facts-line">{head}</div>'
            f'<div class="toolbar">{_view_tabs(summary.trace_id, chosen.span_id if chosen else None, view)}'
            f'{tree_buttons}{search}</div>'
            f'<div class="split"><nav class="tree-box" data-trace="{esc(summary.trace_id)}" data-view="{view}">'
            f'{spans_view}</nav>'
            f'{span_pane.render(chosen, scored.get(chosen.span_id, ())) if chosen else ""}</div>')
    return page(summary.name or summary.trace_id, body, subtitle=where)


def page_not_found(path: str, where: str) -> str:
    return page("Not found", f'<h1>Not found</h1><p class="empty">Nothing at <code>{esc(path)}</code>.</p>'
                             f'<p><a href="/">All traces</a></p>', subtitle=where)


def not_found(trace_id: str, where: str, candidates: list[str], count: int = 0) -> str:
    """No trace with this id; when it is a prefix of several (`count`), the first ones it could mean."""
    if candidates:
        items = "".join(f'<li><a href="{trace_url(c)}"><code>{esc(c)}</code></a></li>' for c in candidates)
        more = f" (the first {len(candidates)})" if count > len(candidates) else ""
        text = (f'<p class="empty">{max(count, len(candidates))} traces start with <code>{esc(trace_id)}</code>{more}:'
                f'</p><ul>{items}</ul>')
    else:
        text = f'<p class="empty">No trace <code>{esc(trace_id)}</code> in this store.</p>'
    return page("Not found", f'<h1>Trace not found</h1>{text}<p><a href="/">All traces</a></p>', subtitle=where)


def trace_url_plain(trace_id: str, query: str) -> str:
    """Where a prefix redirects: the whole id's page, keeping the query string."""
    return f"/traces/{quote(trace_id, safe='')}" + (f"?{query}" if query else "")
