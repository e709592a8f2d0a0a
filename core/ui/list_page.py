"""`/`: the trace list, with its search, filters and order in the query string, paging, and the rows that
`/live` adds to the top of a first page while it is open."""

from __future__ import annotations

from typing import Any

from tracewire.read import formats as fmt
from tracewire.read.local import IndexMissing
from tracewire.read.query import SORTS
from tracewire.ui.listing import DIRECTIONS, STATUSES, Filters
from tracewire.ui.markup import esc, page, trace_url, url
from tracewire.ui.source import ReadSource

PAGE_SIZE = 50
LIVE_ROWS = 50  # the most rows one poll of a live list adds


def status_cell(status: str, failed: str | None) -> str:
    """`error (tool get_weather)`: the status, and for a failure the span it started in (the summary's `failed`)."""
    if status == "error" and failed:
        return f'<span class="status error">error ({esc(failed)})</span>'
    return f'<span class="status {esc(status)}">{esc(status)}</span>'


def _options(chosen: str, values: tuple[str, ...], labels: tuple[str, ...]) -> str:
    return "".join(f'<option value="{v}"{" selected" if chosen == v else ""}>{esc(t)}</option>'
                   for v, t in zip(values, labels, strict=True))


def _filter_form(f: Filters) -> str:
    def box(label: str, name: str, value: str, hint: str = "") -> str:
        placeholder = f' placeholder="{esc(hint)}"' if hint else ""
        return f'<label>{label} <input name="{name}" value="{esc(value)}"{placeholder}></label>'

    return (
        '<form class="filters" method="get" action="/">'
        f'<label class="search">Search <input type="search" name="q" value="{esc(f.q)}" '
        'placeholder="a phrase in inputs or outputs"></label>'
        + box("name", "name", f.name, "contains")
        + f'<label>status <select name="status">{_options(f.status, ("", *STATUSES), ("any", *STATUSES))}</select></label>'
        + box("session", "session", f.session) + box("user", "user", f.user) + box("tag", "tag", f.tag)
        + box("model", "model", f.model, "contains") + box("framework", "framework", f.framework)
        + box("meta", "meta", f.meta, "key=value") + box("from", "from", f.since, "1h, 7d, 2026-12-01")
        + box("to", "to", f.until, "ISO time or age")
        + f'<label>sort <select name="sort">{_options(f.sort or "start", SORTS, SORTS)}</select></label>'
        + f'<label>order <select name="dir">{_options(f.dir or "desc", DIRECTIONS, ("newest / most first", "oldest / least first"))}</select></label>'
        + '<button type="submit">Filter</button> <a href="/">clear</a></form>'
    )


def _head(f: Filters) -> str:
    """Column headers; the sortable ones link to the list ordered by them (again: the other way round)."""
    cells = []
    for title, sort in (("Trace", None), ("Start", "start"), ("Duration", "latency"), ("Spans", None),
                        ("LLM calls", None), ("Tokens in / out", "tokens"), ("Cost", "cost"), ("Session", None),
                        ("Status", None)):
        if sort is None:
            cells.append(f"<th>{title}</th>")
            continue
        current = (f.sort or "start") == sort
        way = ("asc" if (f.dir or "desc") == "desc" else "desc") if current else "desc"
        mark = (" ↓" if (f.dir or "desc") == "desc" else " ↑") if current else ""
        link = url("/", {**f.as_query(), "sort": sort, "dir": way})
        cells.append(f'<th><a class="sort{" chosen" if current else ""}" data-sort="{sort}" href="{link}">'
                     f"{title}{mark}</a></th>")
    return "".join(cells)


def _row(s: dict[str, Any]) -> str:
    """One trace summary (read.fold.TraceSummary's fields) as a table row."""
    session = s["session_id"]
    session_cell = f'<a class="session" href="{url("/", {"session": session})}">{esc(session)}</a>' if session else "-"
    return (
        f'<tr class="trace {esc(s["status"])}" data-trace="{esc(s["trace_id"])}" data-start="{s["start_ns"] or ""}">'
        f'<td><a class="trace-link" href="{trace_url(s["trace_id"])}">{esc(s["name"] or "(unnamed)")}</a>'
        f'<div class="id">{esc(s.get("short_id") or s["trace_id"])}</div></td>'
        f'<td class="start">{esc(fmt.when(s["start_ns"]))}</td>'
        f'<td class="num duration">{esc(fmt.duration(s["duration_ms"]))}</td>'
        f'<td class="num spans">{s["spans"]}</td><td class="num llm">{s["llm_calls"]}</td>'
        f'<td class="num tokens">{esc(fmt.tokens_in_out(s["input_tokens"], s["output_tokens"]))}</td>'
        f'<td class="num cost">{esc(fmt.cost(s["cost_usd"]))}</td><td>{session_cell}</td>'
        f'<td>{status_cell(s["status"], s.get("failed"))}</td></tr>'
    )


def live_cursor(row: dict[str, Any] | None) -> str:
    """Where a live list goes on from: the newest row's start and trace id ("" for an empty list)."""
    return "" if row is None or row.get("start_ns") is None else f'{row["start_ns"]}:{row["trace_id"]}'


def rows_html(rows: list[dict[str, Any]]) -> str:
    return "".join(map(_row, rows))


def render(rows: list[dict[str, Any]], f: Filters, page_no: int, more: bool, where: str,
           notes: list[str] | None = None, live: bool = False) -> str:
    """One page of the list; `more` says an older page exists; `notes` (a bad filter, an index catching
    up) are said above the table; `live` asks the page's script to add newer traces at the top."""
    attrs = ""
    if live:
        attrs = (f' data-live="{url("/live", f.as_query())}" data-after="{esc(live_cursor(rows[0] if rows else None))}"')
    table = ""
    if rows or live:  # a live list needs its table even while empty, for the first rows to go in
        table = (f'<table class="traces"{attrs}><thead><tr>{_head(f)}</tr></thead>'
                 f'<tbody>{rows_html(rows)}</tbody></table>')
    if not rows:
        table += '<p class="empty">No traces match these filters.</p>' if f.filtering() else \
            '<p class="empty">No traces recorded yet.</p>'
    nav = []
    if page_no > 1:
        nav.append(f'<a class="newer" href="{url("/", {**f.as_query(), "page": page_no - 1})}">← newer</a>')
    nav.append(f'<span class="page-no">page {page_no}</span>')
    if more:
        nav.append(f'<a class="older" href="{url("/", {**f.as_query(), "page": page_no + 1})}">older →</a>')
    said = "".join(f'<p class="note">{esc(n)}</p>' for n in notes or ())
    body = f'<h1>Traces</h1>{_filter_form(f)}{said}{table}<nav class="pager">{" ".join(nav)}</nav>'
    return page("Traces", body, subtitle=where)


def listing(source: ReadSource, f: Filters, page_no: int, where: str) -> str:
    """The list page for these filters: a bad filter is said on the page and left out, never raised."""
    q, notes = f.trace_query()
    size = PAGE_SIZE
    try:
        rows = source.list_traces(size + 1, (page_no - 1) * size, query=q)
    except IndexMissing as exc:
        rows, notes = [], [*notes, str(exc)]
    notes += source.list_notes()
    live_list = page_no == 1 and q.sort == "start" and q.descending
    return render(rows[:size], f, page_no, len(rows) > size, where, notes, live_list)


def live(source: ReadSource, f: Filters, query: dict[str, list[str]]) -> str:
    """Rows of the traces matching `f` that started after the `after` cursor ("start_ns:trace_id")."""
    q, _ = f.trace_query()
    start, _, trace_id = (query.get("after") or [""])[0].partition(":")
    after = min(int(start), 2**63 - 1) if start.isdigit() else 0  # SQLite's integers end there
    return rows_html(source.newer_traces(q, after, trace_id, LIVE_ROWS))


def no_store(path: str) -> str:
    return page("Traces", f'<h1>Traces</h1><p class="empty">No traces recorded yet: there is no store at '
                          f'<code>{esc(path)}</code>.</p>', subtitle=path)
