"""HTML building blocks. Every captured value reaches the page through `esc` (or `json_block`), so a
prompt holding `<script>` or `<img onerror>` is text; URLs are built only from ids and our own paths."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

from tracewire.model import attributes as A
from tracewire.read.fold import SpanView

# Past this a value is cut, with the rest behind a "show all" toggle: a page stays quick to open.
SHOW_FIRST_CHARS = 8_000


def esc(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def url(path: str, query: Mapping[str, Any] | None = None) -> str:
    """A same-origin link: path segments percent-encoded, empty query values left out, escaped for an attribute."""
    q = {k: v for k, v in (query or {}).items() if v not in (None, "")}
    return esc(quote(path, safe="/") + (("?" + urlencode(q)) if q else ""))


def trace_url(trace_id: str, span_id: str | None = None, view: str | None = None) -> str:
    """`url`'s result for a trace's page, built directly: a tree links every one of its rows."""
    q = "&".join(f"{k}={quote_plus(v)}" for k, v in (("span", span_id), ("view", view)) if v)
    return esc(quote(f"/traces/{trace_id}", safe="/") + ("?" + q if q else ""))


def as_text(value: Any) -> str:
    """A value as the user reads it: strings as they are, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def text_block(value: Any, css: str = "value") -> str:
    """A value in a <pre>, cut at SHOW_FIRST_CHARS with the rest behind a native <details> toggle."""
    text = as_text(value)
    if len(text) <= SHOW_FIRST_CHARS:
        return f'<pre class="{css}">{esc(text)}</pre>'
    head, rest = text[:SHOW_FIRST_CHARS], text[SHOW_FIRST_CHARS:]
    return (f'<pre class="{css}">{esc(head)}</pre><details class="more"><summary>show all '
            f'({len(text):,} characters)</summary><pre class="{css}">{esc(rest)}</pre></details>')


# On every page: the viewer's top-level views.
NAV = ('<nav class="main-nav"><a href="/" id="nav-traces">Traces</a><a href="/sessions" id="nav-sessions">Sessions</a>'
       '<a href="/dashboard" id="nav-dashboard">Dashboard</a>'
       '<a href="/experiments" id="nav-experiments">Experiments</a></nav>')


def page(title: str, body: str, *, subtitle: str = "") -> str:
    """The page shell: stylesheet and script from the package itself (the CSP allows nothing else)."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · tracewire</title>"
        '<link rel="stylesheet" href="/static/ui.css"><script src="/static/ui.js" defer></script>'
        '</head><body><header class="top"><a class="brand" href="/">tracewire</a>'
        f'{NAV}<span class="where">{esc(subtitle)}</span></header><main>{body}</main></body></html>'
    )


# Tree nodes this shallow start open; deeper ones start closed, except on the way to the chosen or failed
# span. (The timeline opens everything, up to timeline.OPEN_ALL_SPANS.)
OPEN_DEPTH = 1
# How much of a span's input, output and error the tree's search looks through (each): the text rides
# on the row, so a trace of thousands of spans stays a page the browser opens quickly.
SEARCH_CHARS = 1_000
# Indentation steps drawn for depth; deeper rows keep the last step and show their depth as a number,
# since a trace thousands of levels deep would otherwise be pushed off the page.
INDENT_STEPS = 24


def model_of(s: SpanView) -> str:
    a = s.attributes
    model = a.get(A.RESPONSE_MODEL) or a.get(A.REQUEST_MODEL)
    return model if isinstance(model, str) else ""


def _words(value: Any, budget: int) -> str:
    """The text a captured value holds, for searching: its strings and numbers (not its keys or JSON
    punctuation, which would only use up the budget), up to `budget` characters."""
    out: list[str] = []
    size = 0
    stack = [value]
    while stack and size < budget:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
        elif v is not None:
            text = v if isinstance(v, str) else str(v)
            out.append(text)
            size += len(text) + 1
    return " ".join(out)[:budget]


def search_text(s: SpanView) -> str:
    """What the tree's search matches a span on, lower-cased: its name, kind, type, model and content."""
    parts = [s.name, s.kind, s.type or "", model_of(s)]
    parts += (_words(v, SEARCH_CHARS) for v in (s.input, s.output, (s.error or {}).get("message")) if v is not None)
    return " ".join(p for p in parts if p).lower()


def row_data(s: SpanView) -> str:
    """The attributes a flat row carries for the page's script: its span, depth, parent, how many children
    it has, and its search text. The tree is rows in display order, never nested markup (browsers flatten
    nesting past a few hundred levels, and nested lists are slow to lay out by the thousand)."""
    return (f' data-span="{esc(s.span_id)}" data-depth="{s.depth}" data-parent="{esc(s.parent_span_id or "")}"'
            f' data-kids="{len(s.children)}" data-q="{esc(search_text(s))}"')


def indent(s: SpanView) -> tuple[str, str]:
    """(class, marker): the row's indentation class, and for rows deeper than INDENT_STEPS their depth."""
    step = min(s.depth, INDENT_STEPS)
    deep = f'<span class="deep" title="depth">{s.depth}</span>' if s.depth > INDENT_STEPS else ""
    return f"ind-{step}", deep


def first_state(spans: list[SpanView], keep_open: set[str], open_depth: int) -> list[tuple[bool, bool]]:
    """(open, hidden) of each flat row as the page first shows it: nodes shallower than `open_depth` and
    those in `keep_open` are open, and a row is hidden when a node above it is closed. One pass, as the
    page's script does it."""
    out: list[tuple[bool, bool]] = []
    closed_at: int | None = None  # depth of the closed node whose subtree is being passed
    for s in spans:
        if closed_at is not None and s.depth <= closed_at:
            closed_at = None
        hidden = closed_at is not None
        is_open = bool(s.children) and (s.depth < open_depth or s.span_id in keep_open)
        if s.children and not is_open and closed_at is None:
            closed_at = s.depth
        out.append((is_open, hidden))
    return out
