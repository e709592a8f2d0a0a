"""`/sessions` (one row per session with its roll-up) and `/sessions/<id>`: a session read as a
conversation — each trace's user turn, what the agent did in between, and its answer, oldest first."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tracewire.read import formats as fmt
from tracewire.read.fold import SpanView, flatten
from tracewire.read.query import Totals
from tracewire.ui.list_page import status_cell
from tracewire.ui.markup import as_text, esc, page, text_block, trace_url, url
from tracewire.ui.span_pane import Scores, messages_of, score_chip

# A session page folds each of its traces: past this many the oldest are left out, and the page says so.
SESSION_TRACES = 200
# Point events shown with the turn they belong to (every point appears in its trace's tree).
NOTED_POINTS = ("user.feedback", "metric")


def session_url(session_id: str) -> str:
    """The session's page: the id is one path segment, its slashes encoded too (ids are captured values)."""
    return esc("/sessions/" + quote(session_id, safe=""))


def list_page(sessions: Sequence[tuple[str, Totals]], where: str) -> str:
    head = "".join(f"<th>{h}</th>" for h in
                   ("Session", "User", "First", "Last", "Traces", "LLM calls", "Tokens in / out", "Cost", "Errors"))
    rows = []
    for sid, t in sessions:
        errors = f'<span class="status error">{t.errors}</span>' if t.errors else "0"
        rows.append(
            f'<tr class="session-row" data-session="{esc(sid)}"><td><a class="session-link" href="{session_url(sid)}">'
            f'{esc(sid)}</a></td><td class="user">{esc(", ".join(t.users) or fmt.MISSING)}</td>'
            f'<td class="first">{esc(fmt.when(t.first_ns))}</td><td class="last">{esc(fmt.when(t.last_ns))}</td>'
            f'<td class="num traces">{t.traces}</td><td class="num llm">{t.llm_calls}</td>'
            f'<td class="num tokens">{esc(fmt.tokens_in_out(t.input_tokens, t.output_tokens))}</td>'
            f'<td class="num cost">{esc(fmt.cost(t.cost_usd))}</td><td class="num errors">{errors}</td></tr>')
    table = (f'<table class="traces sessions"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
             if rows else '<p class="empty">No sessions recorded yet.</p>')
    return page("Sessions", f"<h1>Sessions</h1>{table}", subtitle=where)


@dataclass
class Turn:
    """One trace of the session: its listing row, its span tree, and its scores and its spans'."""

    summary: dict[str, Any]
    roots: list[SpanView]
    scores: Scores = field(default_factory=list)


def _said(value: Any, role: str) -> Any:
    """What `role` said in a captured value: the last such message of a conversation, else the value."""
    msgs = messages_of(value)
    if msgs is None and isinstance(value, dict) and isinstance(value.get("messages"), list):
        # LangChain's ("user", "text") pairs
        msgs = [{"role": m[0], "content": m[1]} for m in value["messages"]
                if isinstance(m, (list, tuple)) and len(m) == 2 and isinstance(m[0], str)]
    if msgs:
        mine = [m for m in msgs if m.get("role") in (role, "human" if role == "user" else "ai")]
        if mine:
            return mine[-1].get("content")
    return value


def _points(spans: list[SpanView], kind: str) -> list[SpanView]:
    return [s for s in spans if s.status == "point" and s.type == kind]


def _did(spans: list[SpanView]) -> str:
    """The compact line of what happened between the question and the answer."""
    llm = sum(s.kind == "llm" and s.status != "point" for s in spans)
    tools = Counter(s.name for s in spans if s.kind == "tool" and s.status != "point")
    parts = [f"{llm} LLM call{'s' if llm != 1 else ''}"]
    parts += [f"tool {name}" + (f" ×{n}" if n > 1 else "") for name, n in tools.items()]
    errors = [s for s in spans if s.status == "error"]
    out = "".join(f'<span class="did">{esc(p)}</span>' for p in parts)
    out += "".join(f'<span class="did failed">error in {esc(s.kind)} {esc(s.name)}</span>' for s in errors)
    return out


def point_value(s: SpanView) -> Any:
    """What a point holds: its output, else its input, else its attributes."""
    for v in (s.output, s.input):
        if v is not None:
            return v
    return s.attributes or ""


def _turn(t: Turn) -> str:
    s = t.summary
    spans = flatten(t.roots)
    root = t.roots[0] if t.roots else None
    asked = [p.input for p in _points(spans, "user.input")] or ([_said(root.input, "user")] if root else [])
    answered = [p.output if p.output is not None else p.input for p in _points(spans, "agent.response")] \
        or ([_said(root.output, "assistant")] if root and root.output is not None else [])
    out = [f'<section class="turn" data-trace="{esc(s["trace_id"])}">']
    out += [f'<div class="msg role-user said"><div class="role">user</div>{text_block(as_text(v), "text")}</div>'
            for v in asked if v is not None]
    out.append(f'<div class="did-line"><a class="trace-link" href="{trace_url(s["trace_id"])}">'
               f'{esc(s["name"] or "(unnamed)")}</a>{_did(spans)}'
               f'<span class="did">{esc(fmt.duration(s["duration_ms"]))}</span>'
               f'<span class="did">{esc(fmt.tokens_in_out(s["input_tokens"], s["output_tokens"]))} tok</span>'
               f'<span class="did">{esc(fmt.cost(s["cost_usd"]))}</span>{status_cell(s["status"], s.get("failed"))}</div>')
    out += [f'<div class="msg role-assistant said"><div class="role">assistant</div>{text_block(as_text(v), "text")}</div>'
            for v in answered if v is not None]
    if t.scores:
        # a span's score links to its span
        chips = [f'<a class="score-at" href="{trace_url(s["trace_id"], sc["span_id"])}#pane">{score_chip(sc)}</a>'
                 if sc.get("span_id") else score_chip(sc) for sc in t.scores]
        out.append(f'<div class="scores-line turn-scores"><span class="k">scores</span>{"".join(chips)}</div>')
    for p in (p for p in spans if p.status == "point" and p.type in NOTED_POINTS):
        out.append(f'<div class="point"><span class="kind">{esc(p.type)}</span> <span class="name">{esc(p.name)}</span>'
                   f'{text_block(point_value(p), "point-value")}</div>')
    out.append("</section>")
    return "".join(out)


def session_page(session_id: str, turns: list[Turn], where: str, *, cut: bool = False, scores: Scores = ()) -> str:
    """`turns` oldest first; `cut` says older traces were left out (past SESSION_TRACES); `scores`: the
    session's own."""
    rows = [t.summary for t in turns]
    latency = sum(r["duration_ms"] or 0 for r in rows)
    facts = [("traces", str(len(rows))), ("LLM calls", str(sum(r["llm_calls"] for r in rows))),
             ("tokens in / out", fmt.tokens_in_out(sum(r["input_tokens"] for r in rows),
                                                   sum(r["output_tokens"] for r in rows))),
             ("cost", fmt.cost(sum(r["cost_usd"] or 0 for r in rows))), ("latency", fmt.duration(latency)),
             ("errors", str(sum(r["status"] == "error" for r in rows)))]
    noted = Counter(p.type for t in turns for p in flatten(t.roots) if p.status == "point" and p.type in NOTED_POINTS)
    facts += [("feedback" if kind == "user.feedback" else "metrics", str(noted[kind])) for kind in NOTED_POINTS
              if noted[kind]]
    users = sorted({r["user_id"] for r in rows if r.get("user_id")})
    if users:
        facts.append(("user", ", ".join(users)))
    head = "".join(f'<span class="fact" data-fact="{esc(k)}"><span class="k">{esc(k)}</span> '
                   f'<span class="v">{esc(v)}</span></span>' for k, v in facts)
    note = f'<p class="empty">Showing the latest {SESSION_TRACES} traces.</p>' if cut else ""
    if scores:
        head += (f'<div class="scores-line" id="session-scores"><span class="k">scores</span>'
                 f'{"".join(map(score_chip, scores))}</div>')
    body = (f'<h1>Session <code>{esc(session_id)}</code></h1><div class="facts-line totals">{head}</div>'
            f'<p><a href="{url("/", {"session": session_id})}">its traces in the list</a></p>{note}'
            f'<div class="session-turns">{"".join(map(_turn, turns))}</div>')
    return page(f"Session {session_id}", body, subtitle=where)
