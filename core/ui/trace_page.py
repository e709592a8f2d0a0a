"""`/traces/<id>`: the trace's header, its collapsible span tree, and the pane of the chosen span."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tracewire.model import attributes as A
from tracewire.read import formats as fmt
from tracewire.read.fold import SpanView, TraceSummary, failures
from tracewire.ui import span_pane, timeline
from tracewire.ui.list_page import status_cell
from tracewire.ui.markup import esc, page, trace_url
from tracewire.ui.sessions_page import session_url

# Nodes this shallow start open; deeper ones start closed, except on the way to the chosen or failed span.
OPEN_DEPTH = 1
VIEWS = ("tree", "timeline")


def _cells(s: SpanView) -> str:
    a = s.attributes
    model = a.get(A.RESPONSE_MODEL) or a.get(A.REQUEST_MODEL)
    tokens = ""
    if A.USAGE_INPUT_TOKENS in a or A.USAGE_OUTPUT_TOKENS in a:
        tokens = f"{fmt.tokens(a.get(A.USAGE_INPUT_TOKENS))} / {fmt.tokens(a.get(A.USAGE_OUTPUT_TOKENS))} tok"
    cost = fmt.cost(a[A.COST_USD]) if isinstance(a.get(A.COST_USD), (int, float)) else ""
    status = s.status if s.status != "point" else ""
    if s.status == "open":
        status = "unfinished"
    dur = fmt.duration(s.duration_ms) if s.status != "point" else ""
    return (f'<span class="kind kind-{esc(s.kind)}">{esc(s.type if s.status == "point" else s.kind)}</span>'
            f'<span class="name">{esc(s.name)}</span><span class="dur">{esc(dur)}</span>'
            f'<span class="model">{esc(model or "")}</span><span class="tok">{esc(tokens)}</span>'
            f'<span class="cost">{esc(cost)}</span><span class="status {esc(s.status)}">{esc(status)}</span>')


def _tree(roots: list[SpanView], trace_id: str, chosen: SpanView | None, keep_open: set[str]) -> str:
    """Nested lists built with an explicit stack, not recursion: a trace may nest deeper than Python's limit."""
    out: list[str] = ['<ul class="tree">']
    # items: a span to open, or a closing string to emit once its children are done
    stack: list[Any] = list(reversed(roots))
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        s: SpanView = item
        css = "row" + (" chosen" if chosen is s else "") + (" failed" if s.status == "error" else "")
        link = (f'<a class="{css}" data-span="{esc(s.span_id)}" href="{trace_url(trace_id, s.span_id)}#pane">'
                f"{_cells(s)}</a>")
        if not s.children:
            out.append(f'<li class="leaf">{link}</li>')
            continue
        on_path = s.span_id in keep_open
        is_open = " open" if s.depth < OPEN_DEPTH or on_path else ""
        path = ' class="path"' if on_path else ""
        out.append(f'<li><details{is_open}{path} data-span="{esc(s.span_id)}"><summary><span class="twisty"></span>'
                   f'{link}</summary><ul>')
        stack.append("</ul></details></li>")
        stack.extend(reversed(s.children))
    out.append("</ul>")
    return "".join(out)


def _ancestors(spans: dict[str, SpanView], s: SpanView | None) -> set[str]:
    out: set[str] = set()
    while s is not None and s.parent_span_id in spans and s.parent_span_id not in out and not s.cycle:
        out.add(s.parent_span_id)  # type: ignore[arg-type]
        s = spans[s.parent_span_id]  # type: ignore[index]
    return out


def _view_tabs(trace_id: str, span_id: str | None, view: str) -> str:
    """Tree or timeline, kept in the URL so the view can be shared."""
    tabs = "".join(
        f'<a class="view-tab{" chosen" if v == view else ""}" id="view-{v}" '
        f'href="{trace_url(trace_id, span_id, view=None if v == "tree" else v)}">{v.capitalize()}</a>'
        for v in VIEWS)
    return f'<nav class="views">{tabs}</nav>'


def render(summary: TraceSummary, roots: list[SpanView], span_id: str | None, where: str,
           view: str = "tree") -> str:
    """`view`: "tree" (collapsible) or "timeline" (the same spans as bars on one time scale)."""
    view = view if view in VIEWS else "tree"
    spans = {s.span_id: s for r in roots for s in r.walk()}
    failed = next(iter(failures(spans.values())), None)
    chosen = spans.get(span_id or "") or failed or (roots[0] if roots else None)
    keep_open = _ancestors(spans, chosen) | _ancestors(spans, failed)
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
    head = "".join(f'<span class="fact"><span class="k">{esc(k)}</span> {esc(v)}</span>' for k, v in facts)
    if session:
        head += (f'<span class="fact"><span class="k">session</span> '
                 f'<a class="session" href="{session_url(session)}">{esc(session)}</a></span>')
    head += f'<span class="fact">{status_cell(summary.status, summary.failed)}</span>'
    if view == "timeline":
        tree_buttons = ""
        spans_view = timeline.render(roots, summary.trace_id, chosen)
    else:
        tree_buttons = ('<button type="button" id="expand-all">Expand all</button>'
                        '<button type="button" id="collapse-all">Collapse all</button>')
        spans_view = _tree(roots, summary.trace_id, chosen, keep_open)
    body = (f'<h1>{esc(summary.name or "(unnamed)")}</h1><div class="trace-id"><code>{esc(summary.trace_id)}</code>'
            f'<button type="button" class="copy" data-copy="{esc(summary.trace_id)}">copy</button></div>'
            f'<div class="facts-line">{head}</div>'
            f'<div class="toolbar">{_view_tabs(summary.trace_id, chosen.span_id if chosen else None, view)}'
            f'{tree_buttons}</div>'
            f'<div class="split"><nav class="tree-box">{spans_view}</nav>'
            f'{span_pane.render(chosen) if chosen else ""}</div>')
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
