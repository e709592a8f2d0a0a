"""`/`: the trace list, with its filters in the query string and paging."""

from __future__ import annotations

from typing import Any

from tracewire.read import formats as fmt
from tracewire.ui.listing import STATUSES, Filters
from tracewire.ui.markup import esc, page, trace_url, url

PAGE_SIZE = 50


def status_cell(status: str, failed: str | None) -> str:
    """`error (tool get_weather)`: the status, and for a failure the span it started in (the summary's `failed`)."""
    if status == "error" and failed:
        return f'<span class="status error">error ({esc(failed)})</span>'
    return f'<span class="status {esc(status)}">{esc(status)}</span>'


def _filter_form(f: Filters) -> str:
    options = "".join(
        f'<option value="{s}"{" selected" if f.status == s else ""}>{s or "any"}</option>' for s in ("", *STATUSES))
    return (
        '<form class="filters" method="get" action="/">'
        f'<label>name <input name="name" value="{esc(f.name)}" placeholder="contains"></label>'
        f'<label>session <input name="session" value="{esc(f.session)}"></label>'
        f'<label>user <input name="user" value="{esc(f.user)}"></label>'
        f'<label>status <select name="status">{options}</select></label>'
        '<button type="submit">Filter</button> <a href="/">clear</a></form>'
    )


def _row(s: dict[str, Any]) -> str:
    """One trace summary (read.fold.TraceSummary's fields) as a table row."""
    session = s["session_id"]
    session_cell = f'<a class="session" href="{url("/", {"session": session})}">{esc(session)}</a>' if session else "-"
    return (
        f'<tr class="trace {esc(s["status"])}" data-trace="{esc(s["trace_id"])}">'
        f'<td><a class="trace-link" href="{trace_url(s["trace_id"])}">{esc(s["name"] or "(unnamed)")}</a>'
        f'<div class="id">{esc(s.get("short_id") or s["trace_id"])}</div></td>'
        f'<td class="start">{esc(fmt.when(s["start_ns"]))}</td>'
        f'<td class="num duration">{esc(fmt.duration(s["duration_ms"]))}</td>'
        f'<td class="num spans">{s["spans"]}</td><td class="num llm">{s["llm_calls"]}</td>'
        f'<td class="num tokens">{esc(fmt.tokens_in_out(s["input_tokens"], s["output_tokens"]))}</td>'
        f'<td class="num cost">{esc(fmt.cost(s["cost_usd"]))}</td><td>{session_cell}</td>'
        f'<td>{status_cell(s["status"], s.get("failed"))}</td></tr>'
    )


def render(rows: list[dict[str, Any]], f: Filters, page_no: int, more: bool, where: str) -> str:
    """One page of the list; `more` says an older page exists."""
    head = "".join(f"<th>{h}</th>" for h in
                   ("Trace", "Start", "Duration", "Spans", "LLM calls", "Tokens in / out", "Cost", "Session", "Status"))
    if rows:
        table = f'<table class="traces"><thead><tr>{head}</tr></thead><tbody>{"".join(map(_row, rows))}</tbody></table>'
    else:
        table = '<p class="empty">No traces match these filters.</p>' if f.as_query() else \
            '<p class="empty">No traces recorded yet.</p>'
    nav = []
    if page_no > 1:
        nav.append(f'<a class="newer" href="{url("/", {**f.as_query(), "page": page_no - 1})}">← newer</a>')
    nav.append(f'<span class="page-no">page {page_no}</span>')
    if more:
        nav.append(f'<a class="older" href="{url("/", {**f.as_query(), "page": page_no + 1})}">older →</a>')
    body = f'<h1>Traces</h1>{_filter_form(f)}{table}<nav class="pager">{" ".join(nav)}</nav>'
    return page("Traces", body, subtitle=where)


def no_store(path: str) -> str:
    return page("Traces", f'<h1>Traces</h1><p class="empty">No traces recorded yet: there is no store at '
                          f'<code>{esc(path)}</code>.</p>', subtitle=path)
