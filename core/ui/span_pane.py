"""The span pane: one span's content as a person reads it — an LLM call as a conversation role by
role, a tool call's arguments and result, retrieved documents with their scores, an error with its
stack, and the attributes and metadata as indented JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tracewire.model import attributes as A
from tracewire.model.score import value_text
from tracewire.read import formats as fmt
from tracewire.read.fold import SpanView
from tracewire.ui.markup import esc, model_of, text_block, url

Scores = Sequence[Mapping[str, Any]]  # rows of a store's `scores()`

_ROLES = frozenset(("system", "user", "assistant", "tool", "developer", "function"))


def _is_message(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("role"), str)


def messages_of(value: Any) -> list[dict[str, Any]] | None:
    """The chat messages a value holds (a message, a list of them, or `{"messages": [...]}`), else None."""
    if _is_message(value):
        return [value]
    if isinstance(value, dict) and set(value) == {"messages"}:
        value = value["messages"]
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return value
    return None


def _content(content: Any) -> str:
    """A message's content: text as text; a list of parts shows each text part as text, others as JSON."""
    if content in (None, ""):
        return ""
    if isinstance(content, list):
        return "".join(text_block(p["text"], "text") if isinstance(p, dict) and isinstance(p.get("text"), str)
                       else text_block(p) for p in content)
    return text_block(content, "text")


def _tool_call(call: Any) -> str:
    if not isinstance(call, dict):
        return f'<div class="tool-call">{text_block(call)}</div>'
    call_id = f' <span class="id">{esc(call["id"])}</span>' if call.get("id") else ""
    return (f'<div class="tool-call"><span class="label">calls</span> <b class="tool-name">{esc(call.get("name"))}'
            f'</b>{call_id}{text_block(call.get("arguments"), "args")}</div>')


def conversation(msgs: list[dict[str, Any]]) -> str:
    out = []
    for m in msgs:
        role = m["role"]
        css = role if role in _ROLES else "other"
        about = ""
        if m.get("tool_call_id"):
            about = f' <span class="id">result of {esc(m["tool_call_id"])}</span>'
        if m.get("name"):
            about += f' <span class="who">{esc(m["name"])}</span>'
        calls = m.get("tool_calls")
        calls_html = "".join(map(_tool_call, calls)) if isinstance(calls, list) else ""
        out.append(f'<div class="msg role-{css}"><div class="role">{esc(role)}{about}</div>'
                   f'{_content(m.get("content"))}{calls_html}</div>')
    return f'<div class="conversation">{"".join(out)}</div>'


def _documents(value: Any) -> str | None:
    """Retrieved documents ({content, score?, id?, metadata?} each), else None."""
    if not (isinstance(value, list) and value and all(isinstance(d, dict) and "content" in d for d in value)):
        return None
    out = []
    for i, d in enumerate(value, 1):
        score = f' <span class="score">score {esc(d["score"])}</span>' if d.get("score") is not None else ""
        doc_id = f' <span class="id">{esc(d["id"])}</span>' if d.get("id") else ""
        meta = f'<details class="meta"><summary>metadata</summary>{text_block(d["metadata"])}</details>' \
            if d.get("metadata") else ""
        out.append(f'<div class="doc"><div class="doc-head">#{i}{doc_id}{score}</div>'
                   f'{text_block(d["content"], "text")}{meta}</div>')
    return f'<div class="documents">{"".join(out)}</div>'


def _value(value: Any) -> str:
    msgs = messages_of(value)
    if msgs is not None:
        return conversation(msgs)
    return _documents(value) or text_block(value)


def score_chip(score: Mapping[str, Any]) -> str:
    """One score, compact: name, value and label, source; its comment on hover."""
    comment = score.get("comment")
    title = f' title="{esc(comment)}"' if isinstance(comment, str) and comment else ""
    value = value_text(score)
    label = score.get("label")
    return (f'<span class="score" data-score="{esc(score.get("name"))}"{title}>'
            f'<span class="score-name">{esc(score.get("name"))}</span>'
            + (f'<span class="score-v">{esc(value)}</span>' if value else "")
            + (f'<span class="score-label">{esc(label)}</span>' if label is not None else "")
            + f'<span class="score-src">{esc(score.get("source") or "code")}</span></span>')


def score_items(scores: Scores) -> str:
    """Scores one under another, each with its comment in full: a span's, a trace's or a session's."""
    items = []
    for sc in scores:
        comment = sc.get("comment")
        text = text_block(comment, "score-comment") if isinstance(comment, str) and comment else ""
        items.append(f'<li class="score-item">{score_chip(sc)}{text}</li>')
    return f'<ul class="score-list">{"".join(items)}</ul>'


def _section(title: str, body: str, css: str) -> str:
    return f'<section class="{css}"><h3>{esc(title)}</h3>{body}</section>'


def _facts(s: SpanView) -> str:
    a = s.attributes
    status = "unfinished (started, no end recorded)" if s.status == "open" else s.status
    rows: list[tuple[str, str]] = [("status", status), ("start", fmt.when(s.start_ns)),
                                   ("duration", fmt.duration(s.duration_ms))]
    model = model_of(s)
    if model:
        rows.append(("model", str(model)))
    if A.USAGE_INPUT_TOKENS in a or A.USAGE_OUTPUT_TOKENS in a:
        rows.append(("tokens in / out",
                     f"{fmt.tokens(a.get(A.USAGE_INPUT_TOKENS))} / {fmt.tokens(a.get(A.USAGE_OUTPUT_TOKENS))}"))
    if isinstance(a.get(A.COST_USD), (int, float)):
        rows.append(("cost", fmt.cost(a[A.COST_USD])))
    if isinstance(a.get(A.TTFT_MS), (int, float)):
        rows.append(("time to first token", fmt.duration(a[A.TTFT_MS])))
    if s.framework:
        rows.append(("framework", s.framework))
    if s.user_id:
        rows.append(("user", s.user_id))
    if s.tags:
        rows.append(("tags", ", ".join(s.tags)))
    if s.cycle:
        rows.append(("parent", "its parent chain loops back to itself"))
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    if s.session_id:
        cells += (f'<tr><th>session</th><td><a class="session" href="{url("/", {"session": s.session_id})}">'
                  f"{esc(s.session_id)}</a></td></tr>")
    return f'<table class="facts">{cells}</table>'


def _copyable(label: str, value: str) -> str:
    return (f'<span class="ident">{esc(label)} <code>{esc(value)}</code>'
            f'<button type="button" class="copy" data-copy="{esc(value)}">copy</button></span>')


def render(s: SpanView, scores: Scores = ()) -> str:
    """The pane of span `s`; `scores`: the span's own scores (oldest first)."""
    parts = [f'<h2><span class="kind kind-{esc(s.kind)}">{esc(s.type or s.kind)}</span> {esc(s.name)}</h2>',
             f'<div class="idents">{_copyable("span", s.span_id)}{_copyable("trace", s.trace_id)}</div>',
             _facts(s)]
    if scores:
        parts.append(_section("Scores", score_items(scores), "scores"))
    if s.error:
        err = s.error
        stack = text_block(err["stacktrace"], "stack") if err.get("stacktrace") else ""
        parts.append(_section("Error", f'<div class="error-head"><b class="error-type">{esc(err.get("type"))}</b>: '
                                        f'{text_block(err.get("message") or "", "text")}</div>{stack}', "error"))
    if s.kind == "tool":
        names = ("Arguments", "Result")
    elif s.kind == "retrieval" or s.kind == "retriever":
        names = ("Query", "Documents")
    else:
        names = ("Input", "Output")
    if s.input is not None:
        parts.append(_section(names[0], _value(s.input), "input"))
    if s.output is not None:
        parts.append(_section(names[1], _value(s.output), "output"))
    definitions = s.attributes.get(A.TOOL_DEFINITIONS)
    if definitions:
        parts.append(_section("Tools offered", text_block(definitions), "tools"))
    attrs = {k: v for k, v in s.attributes.items() if k != A.TOOL_DEFINITIONS}
    if attrs:
        parts.append(_section("Attributes", text_block(attrs, "json"), "attributes"))
    if s.metadata:
        parts.append(_section("Metadata", text_block(s.metadata, "json"), "metadata"))
    if s.problems:
        parts.append(_section("Could not be read", text_block(s.problems), "problems"))
    return f'<aside class="pane" id="pane">{"".join(parts)}</aside>'
