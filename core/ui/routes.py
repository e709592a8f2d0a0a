"""The viewer's pages by path, over any `ReadSource`: the one rendering path of the local `tracewire ui`
and of the collector's `/ui/`. `respond` maps a GET (path and query string) to a `Reply`; the server
that calls it sends the reply with `HEADERS`, which keep captured content inert (a strict CSP, no
sniffing, no framing)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote

from tracewire.read import formats as fmt
from tracewire.read.fold import summarize_tree, tree
from tracewire.read.query import AmbiguousId, IdNotFound
from tracewire.read.stats import Dashboard
from tracewire.ui import (
    assets,
    dashboard_page,
    experiments_page,
    list_page,
    login_page,
    sessions_page,
    trace_page,
)
from tracewire.ui.listing import Filters
from tracewire.ui.source import ReadSource

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
HTML = "text/html; charset=utf-8"
STATIC = {"/static/ui.css": ("text/css; charset=utf-8", assets.CSS.encode()),
          "/static/ui.js": ("text/javascript; charset=utf-8", assets.JS.encode())}
SESSIONS_SHOWN = 100  # most recently active first
_TRACE_PATH = re.compile(r"^/traces/([^/]+)$")
_SESSION_PATH = re.compile(r"^/sessions/([^/]+)$")
_EXPERIMENT_PATH = re.compile(r"^/experiments/([^/]+)$")
# A link or form target the pages write: an attribute value starting with "/". Captured text cannot
# match, since `esc` turns its quotes into `&quot;`.
_OWN_LINK = re.compile(r'(\s(?:href|src|action)=")/')


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = HTML
    headers: dict[str, str] = field(default_factory=dict)


def static(path: str) -> Reply | None:
    """The stylesheet or the script (no store read, no login needed: they are the package's own files)."""
    if path not in STATIC:
        return None
    ctype, body = STATIC[path]
    return Reply(HTTPStatus.OK, body, ctype, {"Cache-Control": "max-age=300"})


def under(prefix: str, html: str) -> str:
    """The page as served below `prefix` (e.g. "/ui"): the pages link from the root, as the local viewer
    serves them, so every own link and form target gains the prefix."""
    return _OWN_LINK.sub(lambda m: m.group(1) + prefix + "/", html)


def login(message: str = "", next_path: str = "", where: str = "", status: int = HTTPStatus.OK) -> Reply:
    """The sign-in form of a viewer that asks for an API key (the collector's)."""
    return Reply(status, login_page.render(message, next_path, where).encode())


# Opens the store for one request; None when there is none yet (the local viewer before anything was recorded).
OpenSource = Callable[[], "ReadSource | None"]


def respond(open_source: OpenSource, path: str, query_string: str, where: str) -> Reply:
    """The page at `path` (everything but the static files); `where` is the subtitle naming the store."""
    query = parse_qs(query_string)
    trace = _TRACE_PATH.match(path)
    session = _SESSION_PATH.match(path)
    if path == "/":
        return _list(open_source, query, where)
    if path == "/live":
        return _live(open_source, query)
    if path == "/dashboard":
        return _dashboard(open_source, query, where)
    if path == "/sessions":
        return _sessions(open_source, where)
    if path == "/experiments" or _EXPERIMENT_PATH.match(path):
        return _experiments(open_source, path, query, where)
    if session:
        return _session(open_source, unquote(session.group(1)), where)
    if trace:
        return _trace(open_source, unquote(trace.group(1)), (query.get("span") or [""])[0] or None, query_string,
                      (query.get("view") or ["tree"])[0], where)
    return Reply(HTTPStatus.NOT_FOUND, trace_page.page_not_found(path, where).encode())


def _list(open_source: OpenSource, query: dict[str, list[str]], where: str) -> Reply:
    store = open_source()
    if store is None:
        return Reply(HTTPStatus.OK, list_page.no_store(where).encode())
    try:
        f = Filters.from_query(query)
        page_text = (query.get("page") or ["1"])[0]
        page_no = max(1, int(page_text)) if page_text.isdigit() else 1
        return Reply(HTTPStatus.OK, list_page.listing(store, f, page_no, where).encode())
    finally:
        store.close()


def _live(open_source: OpenSource, query: dict[str, list[str]]) -> Reply:
    """Rows of traces newer than `after` (the newest the page shows), as table rows to put on top."""
    store = open_source()
    if store is None:
        return Reply(HTTPStatus.OK, b"")
    try:
        return Reply(HTTPStatus.OK, list_page.live(store, Filters.from_query(query), query).encode())
    finally:
        store.close()


def _dashboard(open_source: OpenSource, query: dict[str, list[str]], where: str) -> Reply:
    """The range takes the CLI's --since/--until forms; a bad one is said on the page, not raised."""
    since = (query.get("since") or [""])[0].strip()
    until = (query.get("until") or [""])[0].strip()
    now = time.time_ns()
    try:
        since_ns = fmt.parse_when(since or dashboard_page.DEFAULT_SINCE, now)
        until_ns = fmt.parse_when(until, now) if until else now
    except ValueError as exc:
        return Reply(HTTPStatus.BAD_REQUEST, dashboard_page.bad_range(str(exc), since, until, where).encode())
    store = open_source()
    if store is None:
        d = Dashboard(since_ns, until_ns, 1)
    else:
        try:
            d = store.dashboard(since_ns, until_ns)
        finally:
            store.close()
    return Reply(HTTPStatus.OK, dashboard_page.render(d, since, until, where).encode())


def _sessions(open_source: OpenSource, where: str) -> Reply:
    store = open_source()
    if store is None:
        return Reply(HTTPStatus.OK, sessions_page.list_page([], where).encode())
    try:
        return Reply(HTTPStatus.OK, sessions_page.list_page(store.sessions(SESSIONS_SHOWN), where).encode())
    finally:
        store.close()


def _session(open_source: OpenSource, session_id: str, where: str) -> Reply:
    store = open_source()
    rows: list[dict[str, Any]] = []
    turns: list[sessions_page.Turn] = []
    session_scores: list[dict[str, Any]] = []
    if store is not None:
        try:
            rows = store.list_traces(sessions_page.SESSION_TRACES + 1, session_id=session_id)
            shown = rows[:sessions_page.SESSION_TRACES]
            scored: dict[str, list[dict[str, Any]]] = {}
            for sc in store.scores(trace_ids=[r["trace_id"] for r in shown]):
                scored.setdefault(sc["trace_id"], []).append(sc)
            turns = [sessions_page.Turn(r, tree(store.trace_events(r["trace_id"])), scored.get(r["trace_id"], []))
                     for r in reversed(shown)]  # oldest first: a conversation
            session_scores = store.scores(session_id=session_id)
        finally:
            store.close()
    if not turns:
        return Reply(HTTPStatus.NOT_FOUND, trace_page.page_not_found(f"/sessions/{session_id}", where).encode())
    html = sessions_page.session_page(session_id, turns, where, cut=len(rows) > sessions_page.SESSION_TRACES,
                                      scores=session_scores)
    return Reply(HTTPStatus.OK, html.encode())


def _trace(open_source: OpenSource, trace_id: str, span_id: str | None, query: str, view: str, where: str) -> Reply:
    """The trace's page; a prefix that names exactly one trace redirects to it, as the CLI takes one."""
    store = open_source()
    events: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []
    found: str | None = None
    matches: list[str] = []
    count = 0
    if store is not None:
        try:
            found = store.resolve(trace_id)
            events = store.trace_events(found)
            scores = store.scores(trace_ids=[found])
        except AmbiguousId as exc:
            matches, count = exc.ids, exc.count
        except (IdNotFound, ValueError):  # no such id, or not an id at all
            pass
        finally:
            store.close()
    if found is not None and found != trace_id:
        return Reply(HTTPStatus.FOUND, b"", headers={"Location": trace_page.trace_url_plain(found, query)})
    if not events:
        return Reply(HTTPStatus.NOT_FOUND, trace_page.not_found(trace_id, where, matches, count).encode())
    summary, roots = summarize_tree(trace_id, events)
    html = trace_page.render(summary, roots, span_id, where, view, scores)
    return Reply(HTTPStatus.OK, html.encode())


def _experiments(open_source: OpenSource, path: str, query: dict[str, list[str]], where: str) -> Reply:
    """The runs, one run, or two compared, read from the store's own file; a source without experiments
    (the collector's) says where they are instead. An unknown or ambiguous run is a 404 naming it."""
    store = open_source()
    if store is None:  # the local viewer before anything was recorded
        return Reply(HTTPStatus.OK, experiments_page.runs_page([], where).encode())
    try:
        db = store.experiments_db()
    finally:
        store.close()
    if db is None:
        return Reply(HTTPStatus.OK, experiments_page.elsewhere(where).encode())
    try:
        if path == "/experiments":
            html = experiments_page.listing(db, where)
        elif path == "/experiments/compare":
            a, b = ((query.get(k) or [""])[0].strip() for k in ("a", "b"))
            html = experiments_page.comparison(db, a, b, where)
        else:
            html = experiments_page.one_run(db, unquote(path.removeprefix("/experiments/")), where)
    except LookupError as exc:
        return Reply(HTTPStatus.NOT_FOUND, experiments_page.not_found(str(exc.args[0] if exc.args else exc),
                                                                      where).encode())
    except (sqlite3.Error, RuntimeError) as exc:  # tables of a newer tracewire, a file not ours to write
        return Reply(HTTPStatus.SERVICE_UNAVAILABLE, experiments_page.unreadable(str(exc), where).encode())
    return Reply(HTTPStatus.OK, html.encode())
