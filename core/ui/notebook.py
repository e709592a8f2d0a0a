"""A recorded trace inline in a notebook (Jupyter, JupyterLab, VS Code): the viewer's span tree as one
block of static HTML. The styles are inline and scoped to the block, there is no script (notebooks
sanitise or block it), and subtrees fold with native <details>.

    from tracewire.ui.notebook import show_trace
    show_trace()            # the most recently started trace of the store the settings name
    show_trace("4bf9", db="runs/tracewire.db")
"""

from __future__ import annotations

from tracewire.read import formats as fmt
from tracewire.read.fold import SpanView, TraceSummary, failures, flatten, summarize_tree
from tracewire.read.local import LocalStore
from tracewire.ui import timeline
from tracewire.ui.list_page import status_cell
from tracewire.ui.markup import OPEN_DEPTH, esc
from tracewire.ui.trace_page import cells, row_css

# One class scopes every rule, so the block styles nothing else in the notebook.
_CSS = """
.tracewire-trace { font: 13px system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; }
.tracewire-trace .tw-head { display: flex; flex-wrap: wrap; gap: 4px 14px; align-items: baseline; margin-bottom: 6px; }
.tracewire-trace .tw-head .k { color: #667085; font-size: 12px; }
.tracewire-trace code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; color: #667085; }
.tracewire-trace .tw-kids { margin-left: 16px; }
.tracewire-trace summary { cursor: pointer; }
.tracewire-trace .tw-leaf { margin-left: 16px; }
.tracewire-trace .row { display: inline-flex; gap: 8px; align-items: baseline; }
.tracewire-trace .name { font-weight: 600; }
.tracewire-trace .dur, .tracewire-trace .model, .tracewire-trace .tok, .tracewire-trace .cost { color: #667085; font-size: 12px; }
.tracewire-trace .kind { font-size: 11px; padding: 0 5px; border-radius: 3px; border: 1px solid #e4e7ec; color: #667085; }
.tracewire-trace .status.error, .tracewire-trace .failed .name { color: #c0262d; font-weight: 600; }
.tracewire-trace .status.ok { color: #157f3d; }
.tracewire-trace .status.open, .tracewire-trace .slow .status { color: #b54708; }
.tracewire-trace .point .name { font-weight: 400; }
"""


def render(summary: TraceSummary, roots: list[SpanView]) -> str:
    """The trace as self-contained HTML: a header line and the span tree, subtrees as <details> (open to
    OPEN_DEPTH, and on the way to a failed span)."""
    spans = flatten(roots)
    by_id = {s.span_id: s for s in spans}
    slow = timeline.slow_spans(spans)
    keep_open: set[str] = set()
    for f in failures(spans):
        s: SpanView | None = f
        while s is not None and s.parent_span_id in by_id and s.parent_span_id not in keep_open and not s.cycle:
            keep_open.add(s.parent_span_id)  # type: ignore[arg-type]
            s = by_id[s.parent_span_id]  # type: ignore[index]
    out: list[str] = []
    # an explicit stack, not recursion: a trace may nest deeper than Python's limit
    stack: list[SpanView | str] = list(reversed(roots))
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        row = f'<span class="{row_css(item, None, slow)}">{cells(item, item.span_id in slow)}</span>'
        if not item.children:
            out.append(f'<div class="tw-leaf">{row}</div>')
            continue
        is_open = " open" if item.depth < OPEN_DEPTH or item.span_id in keep_open else ""
        out.append(f"<details{is_open}><summary>{row}</summary><div class=\"tw-kids\">")
        stack.append("</div></details>")
        stack.extend(reversed(item.children))
    facts = [("duration", fmt.duration(summary.duration_ms)), ("spans", str(summary.spans)),
             ("LLM calls", str(summary.llm_calls)),
             ("tokens in / out", fmt.tokens_in_out(summary.input_tokens, summary.output_tokens)),
             ("cost", fmt.cost(summary.cost_usd))]
    head = "".join(f'<span><span class="k">{esc(k)}</span> {esc(v)}</span>' for k, v in facts)
    return (f'<div class="tracewire-trace"><style>{_CSS}</style><div class="tw-head">'
            f'<b>{esc(summary.name or "(unnamed)")}</b><code>{esc(summary.trace_id)}</code>{head}'
            f'{status_cell(summary.status, summary.failed)}</div><div class="tw-tree">{"".join(out)}</div></div>')


class TraceView:
    """One recorded trace; a notebook shows it as its span tree (`_repr_html_`)."""

    def __init__(self, summary: TraceSummary, roots: list[SpanView]) -> None:
        self.summary = summary
        self.roots = roots

    @property
    def trace_id(self) -> str:
        return self.summary.trace_id

    def _repr_html_(self) -> str:
        return render(self.summary, self.roots)

    def __repr__(self) -> str:
        return f"<trace {self.summary.name!r} {self.trace_id} spans={self.summary.spans} status={self.summary.status}>"


def show_trace(trace_id: str | None = None, *, db: str | None = None) -> TraceView:
    """The trace `trace_id` (a whole id or a unique prefix), else the most recently started one, of the
    store at `db` (default: the store the settings name, as `tracewire ui` reads). Raises LookupError when
    the store holds no trace or no trace with that id (IdNotFound, AmbiguousId: both LookupError), and
    ValueError for a text that is not an id."""
    store = LocalStore(db)
    try:
        found = store.resolve(trace_id) if trace_id else store.last_trace_id()
        if found is None:
            raise LookupError(f"no trace recorded in {store.path}")
        events = store.trace_events(found)
    finally:
        store.close()
    return TraceView(*summarize_tree(found, events))
