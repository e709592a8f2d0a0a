"""A trace as lines of text: its header, the span tree, and under each span what it carried — messages
role by role, tool arguments and results, retrieved documents, inputs, outputs and errors.

Content is read from the envelope the way the integrations record it (tracewire.model.genai): a chat
message is {role, content, tool_calls?: [{id, name, arguments}], tool_call_id?, name?}; a document is a
mapping with `content` or `text` and maybe `score`; anything else is shown as compact JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tracewire.cli.output import DIM, ERROR, ID, NAME, OK, ROLE, Line
from tracewire.model import attributes as A
from tracewire.model.score import value_text
from tracewire.read import formats as F
from tracewire.read.fold import SpanView, tree

MAX_LINES = 6
MAX_CHARS = 400
_ROLES = frozenset({"system", "user", "assistant", "tool", "human", "ai", "developer", "function", "model"})
_ROLE_NAMES = {"human": "user", "ai": "assistant", "model": "assistant"}


@dataclass(frozen=True)
class Limits:
    lines: int = MAX_LINES
    chars: int = MAX_CHARS

    @classmethod
    def of(cls, full: bool) -> Limits:
        return cls(10**9, 10**12) if full else cls()


def text_of(value: Any) -> str:
    """A value as text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def clip(text: str, limits: Limits) -> list[str]:
    """`text` as lines, cut to the limits with a note of what was left out."""
    cut = text[:limits.chars]
    lines = cut.splitlines() or [""]
    more = len(text) - len(cut)
    if len(lines) > limits.lines:
        more += len("\n".join(lines[limits.lines:])) + 1
        lines = lines[:limits.lines]
    if more > 0:
        lines[-1] += f" … (+{more:,} chars; --full shows all)"
    return lines


def _message(value: Any) -> dict[str, Any] | None:
    """A chat message in the shared shape, from the shared shape itself or a (role, content) pair."""
    if isinstance(value, Mapping) and isinstance(value.get("role"), str) and (
            "content" in value or "tool_calls" in value):
        return dict(value)
    if (isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str)
            and value[0] in _ROLES):
        return {"role": value[0], "content": value[1]}
    return None


def _unwrap(value: Any) -> Any:
    """A graph node's state update (`[{"update": {"messages": [...]}, "goto": []}]`, LangGraph's Command)
    or state (`{"messages": [...]}`) down to the messages it holds."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], Mapping) and "update" in value[0]:
        value = value[0]
    if isinstance(value, Mapping) and isinstance(value.get("update"), Mapping) and not value.get("goto"):
        value = value["update"]
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list) and len(value) == 1:
        value = value["messages"]
    return value


def messages_of(value: Any) -> list[dict[str, Any]] | None:
    """The chat messages a value holds (a message, a list of them, a graph state or update), else None."""
    value = _unwrap(value)
    one = _message(value)
    if one is not None:
        return [one]
    if isinstance(value, list) and value:
        found = [_message(v) for v in value]
        if all(m is not None for m in found):
            return [m for m in found if m is not None]
    return None


def tool_calls_of(value: Any) -> list[Mapping[str, Any]] | None:
    """Tool calls about to run (`[{name, args|arguments, id}]`), as a tool-running node receives them."""
    if isinstance(value, list) and value and all(
            isinstance(c, Mapping) and isinstance(c.get("name"), str) and ("args" in c or "arguments" in c)
            for c in value):
        return value
    return None


def documents_of(value: Any) -> list[Mapping[str, Any]] | None:
    """Retrieved documents: mappings with text (`content`, `text` or `page_content`) and a score or metadata."""
    if isinstance(value, Mapping) and isinstance(value.get("documents"), list):
        value = value["documents"]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(d, Mapping) and any(k in d for k in ("content", "text", "page_content"))
           and ("score" in d or "metadata" in d) for d in value):
        return value
    return None


class ContentWriter:
    """Collects the content lines of one span, each prefixed with the tree's guides."""

    def __init__(self, indent: str, limits: Limits) -> None:
        self.indent = indent
        self.limits = limits
        self.lines: list[Line] = []

    def value(self, label: str, value: Any, style: str | None = DIM) -> None:
        """`label: text`, continuation lines under it."""
        lines = clip(text_of(value), self.limits)
        pad = " " * (len(label) + 2)
        self.lines.append([(self.indent, DIM), (f"{label}: ", style), (lines[0], None)])
        self.lines.extend([[(self.indent, DIM), (pad + rest, None)] for rest in lines[1:]])

    def message(self, m: Mapping[str, Any]) -> None:
        role = _ROLE_NAMES.get(str(m.get("role")), str(m.get("role")))
        if role == "tool" and (m.get("name") or m.get("tool_call_id")):
            label = f"tool ({m.get('name') or m.get('tool_call_id')})"
        else:
            label = role
        content = m.get("content")
        calls = m.get("tool_calls") or []
        if content not in (None, "", []) or not calls:
            self.value(label, "" if content is None else content, ROLE)
        for c in calls if isinstance(calls, list) else ():
            if isinstance(c, Mapping):
                call_id = f" [{c['id']}]" if c.get("id") else ""
                self.value(f"{label} → call {c.get('name')}{call_id}", c.get("arguments") or {}, ROLE)

    def messages(self, msgs: Sequence[Mapping[str, Any]]) -> None:
        for m in msgs:
            self.message(m)

    def calls(self, calls: Sequence[Mapping[str, Any]]) -> None:
        for c in calls:
            call_id = f" [{c['id']}]" if c.get("id") else ""
            self.value(f"call {c.get('name')}{call_id}", c.get("args", c.get("arguments")), ROLE)

    def documents(self, docs: Sequence[Mapping[str, Any]]) -> None:
        for i, d in enumerate(docs, 1):
            text = next((d[k] for k in ("content", "text", "page_content") if k in d), "")
            score = d.get("score")
            label = f"doc {i}" + (f" (score {score:.3g})" if isinstance(score, (int, float)) else "")
            self.value(label, text)

    def any(self, label: str, value: Any, seen: Sequence[Mapping[str, Any]] = ()) -> None:
        """Messages role by role (after `seen`, the ones already shown, when they are repeated first),
        tool calls, documents one by one, anything else under `label`."""
        msgs = messages_of(value)
        if msgs is not None:
            # An agent's output state repeats its input messages: show only what it added.
            skip = len(seen) if seen and msgs[:len(seen)] == list(seen) else 0
            self.messages(msgs[skip:])
            return
        calls = tool_calls_of(value)
        if calls is not None:
            self.calls(calls)
            return
        docs = documents_of(value)
        if docs is not None:
            self.documents(docs)
            return
        self.value(label, value)


def span_content(s: SpanView, indent: str, limits: Limits) -> list[Line]:
    """What a span carried, as lines under it."""
    w = ContentWriter(indent, limits)
    if s.status == "point":
        if _point_inline(s) is None:  # too long for its own line: shown under it
            for label, value in (("input", s.input), ("output", s.output)):
                if value is not None:
                    w.any(label, value)
        return w.lines
    kind = s.kind
    if s.input is not None:
        if kind == "tool":
            w.value("args", s.input)
        elif kind == "retriever":
            w.value("query", s.input)
        else:
            w.any("input", s.input)
    if s.output is not None:
        if kind == "tool":
            w.value("result", s.output)
        elif kind == "retriever":
            docs = documents_of(s.output)
            w.documents(docs) if docs is not None else w.value("documents", s.output)
        else:
            w.any("output", s.output, messages_of(s.input) or ())
    if s.error:
        # The whole message: the cause of a chained error is at its end, so it is never cut.
        err = Limits(max(limits.lines, 40), max(limits.chars, 4000))
        text = f"{s.error.get('type') or 'error'}: {s.error.get('message') or ''}"
        lines = clip(text, err)
        w.lines.append([(indent, DIM), ("error: ", ERROR), (lines[0], ERROR)])
        w.lines.extend([[(indent, DIM), ("       " + rest, ERROR)] for rest in lines[1:]])
        cause = cause_of(s.error.get("stacktrace"))
        if cause:
            w.lines.append([(indent, DIM), ("caused by: ", ERROR), (clip(cause, err)[0], ERROR)])
    return w.lines


_CAUSE_MARKERS = ("The above exception was the direct cause of the following exception:",
                  "During handling of the above exception, another exception occurred:")


def cause_of(stacktrace: Any) -> str | None:
    """The first exception of a chained error's stack trace (`raise ... from cause`), as `Type: message`:
    the error's own message often does not say what went wrong underneath."""
    if not isinstance(stacktrace, str):
        return None
    cut = min((i for i in (stacktrace.find(m) for m in _CAUSE_MARKERS) if i >= 0), default=-1)
    if cut < 0:
        return None
    lines = [x for x in stacktrace[:cut].splitlines() if x.strip()]
    return lines[-1].strip() if lines else None


def model_of(attributes: Mapping[str, Any]) -> str | None:
    m = attributes.get(A.RESPONSE_MODEL) or attributes.get(A.REQUEST_MODEL)
    return str(m) if m else None


def usage(attributes: Mapping[str, Any]) -> list[str]:
    """Model, tokens, cost and ttft of an LLM span (what it has of them)."""
    parts = []
    model = model_of(attributes)
    if model:
        parts.append(model)
    n_in, n_out = attributes.get(A.USAGE_INPUT_TOKENS), attributes.get(A.USAGE_OUTPUT_TOKENS)
    if n_in is not None or n_out is not None:
        parts.append(f"{F.tokens_in_out(n_in, n_out)} tokens")
    if attributes.get(A.COST_USD):
        parts.append(F.cost(attributes[A.COST_USD]))
    if attributes.get(A.TTFT_MS) is not None:
        parts.append(F.ttft(attributes[A.TTFT_MS]))
    return parts


_INLINE_CHARS = 120


def _point_inline(s: SpanView) -> str | None:
    """A point event's content when one short line holds it (else it goes under the line, in full)."""
    if s.input is not None and s.output is not None:
        return None
    value = s.input if s.input is not None else s.output
    if value is None:
        return ""
    text = text_of(value)
    return text if len(text) <= _INLINE_CHARS and "\n" not in text else None


def span_line(s: SpanView) -> Line:
    """The span's own line: kind, name, duration, model and usage, status."""
    if s.status == "point":
        line: Line = [("· ", DIM), (s.type or s.kind, NAME)]
        if s.name and s.name != s.type:
            line.append((f" {s.name}", None))
        inline = _point_inline(s)
        if inline:
            line.append((" " + inline, DIM))
        if s.error:
            line.append((f"  {s.error.get('type')}: {s.error.get('message')}", ERROR))
        return line
    line = [(f"{s.kind} ", DIM), (s.name, NAME), (f"  {F.duration(s.duration_ms)}", None)]
    extra = usage(s.attributes)
    if s.attributes.get(A.TOOL_CALL_ID):
        extra.append(f"call {s.attributes[A.TOOL_CALL_ID]}")
    if extra:
        line.append(("  " + "  ".join(extra), None))
    status_style = ERROR if s.status == "error" else OK if s.status == "ok" else DIM
    line.append((f"  {s.status}", status_style))
    if s.cycle:
        line.append(("  parent cycle", ERROR))
    return line


def tree_lines(roots: Sequence[SpanView], limits: Limits | None, content: bool = True,
               scores: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> list[Line]:
    """The span tree with guides (├─ └─ │); each span's content under it when `content`, and its
    scores (`scores`: by span id)."""
    out: list[Line] = []
    # An explicit stack, not recursion: a trace may nest deeper than Python's recursion limit.
    stack: list[tuple[SpanView, str, bool, bool]] = [(r, "", True, True) for r in reversed(roots)]
    while stack:
        node, prefix, last, root = stack.pop()
        guide = "" if root else prefix + ("└─ " if last else "├─ ")
        out.append([(guide, DIM), *span_line(node)])
        child_prefix = "" if root else prefix + ("   " if last else "│  ")
        below = child_prefix + ("│  " if node.children else "   ")
        if content and limits is not None:
            out.extend(span_content(node, below, limits))
        for sc in (scores or {}).get(node.span_id, ()):
            out.append([(below, DIM), ("score: ", DIM), (score_text(sc), None)])
        n = len(node.children)
        stack.extend((c, child_prefix, i == n - 1, False) for i, c in reversed(list(enumerate(node.children))))
    return out


def header_lines(summary: Mapping[str, Any], shown_id: str) -> list[Line]:
    """Trace id, name, start, duration, status (and the span that failed), session, user, tags, usage."""
    status = str(summary.get("status"))
    failed = summary.get("failed")
    lines: list[Line] = [
        [("trace   ", DIM), (shown_id, ID), ("  ", None), (f"{summary.get('kind')} ", DIM),
         (str(summary.get("name")), NAME)],
        [("start   ", DIM), (F.when(summary.get("start_ns")), None),
         (f"  ({F.duration(summary.get('duration_ms'))})", None)],
        [("status  ", DIM), (status + (f" ({failed})" if status == "error" and failed else ""),
                             ERROR if status == "error" else OK)],
    ]
    for label, key in (("session ", "session_id"), ("user    ", "user_id")):
        if summary.get(key):
            lines.append([(label, DIM), (str(summary[key]), None)])
    if summary.get("tags"):
        lines.append([("tags    ", DIM), (", ".join(summary["tags"]), None)])
    lines.append([("usage   ", DIM), (
        f"{summary.get('llm_calls', 0)} LLM calls  {F.tokens_in_out(summary.get('input_tokens'), summary.get('output_tokens'))}"
        f" tokens  {F.cost(summary.get('cost_usd'))}", None)])
    return lines


def status_cell(summary: Mapping[str, Any]) -> tuple[str, str | None]:
    """`ok`, or `error (tool get_weather)`: which span failed."""
    status = str(summary.get("status"))
    if status == "error":
        failed = summary.get("failed")
        return (f"error ({failed})" if failed else "error", ERROR)
    return (status, OK if status == "ok" else DIM)


def plain(line: Line) -> str:
    return "".join(text for text, _ in line)


def render_tree(events: Sequence[Mapping[str, Any]], limits: Limits | None = None) -> list[str]:
    """The span tree of these events as plain text lines, with content under each span when `limits`
    is given (one line per span otherwise)."""
    return [plain(line) for line in tree_lines(tree(events), limits, content=limits is not None)]


# -- scores -------------------------------------------------------------------------------------------
_COMMENT_CHARS = 120


def score_value(score: Mapping[str, Any]) -> str:
    """`0.75`, `true`, `good`, `0.8 good`: the value (4 significant digits) and the label, what it has."""
    parts = [value_text(score)]
    if score.get("label") is not None:
        parts.append(str(score["label"]))
    return " ".join(p for p in parts if p) or F.MISSING


def score_text(score: Mapping[str, Any]) -> str:
    """`helpful = 0.75  [llm]  too long by half`: name, value, source, the comment's first line."""
    text = f"{score.get('name')} = {score_value(score)}  [{score.get('source') or 'code'}]"
    comment = score.get("comment")
    if isinstance(comment, str) and comment.strip():
        first = comment.strip().splitlines()[0]
        text += "  " + (first if len(first) <= _COMMENT_CHARS else first[:_COMMENT_CHARS] + "…")
    return text


def score_summary(scores: Sequence[Mapping[str, Any]]) -> str:
    """One cell for many scores, by name: the mean of the numeric values (a bool counts 1 or 0), else
    the latest label; `×n` when there are several. `helpful 0.75 ×2, tone good`."""
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for sc in scores:
        by_name.setdefault(str(sc.get("name")), []).append(sc)
    cells = []
    for name in sorted(by_name):
        group = by_name[name]
        numbers = [float(v) for sc in group if isinstance(v := sc.get("value"), (int, float))]
        if numbers:
            shown = f"{sum(numbers) / len(numbers):.3g}"
        else:
            shown = str(next((sc["label"] for sc in reversed(group) if sc.get("label") is not None), F.MISSING))
        cells.append(f"{name} {shown}" + (f" ×{len(group)}" if len(group) > 1 else ""))
    return ", ".join(cells) or F.MISSING


def score_lines(scores: Sequence[Mapping[str, Any]]) -> list[Line]:
    """A trace's or a session's own scores under its header: `score   helpful = 1  [code]`."""
    return [[("score   ", DIM), (score_text(sc), None)] for sc in scores]
