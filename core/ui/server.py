"""The viewer's HTTP server: the standard library's threading server, GET only, one read-only store
connection per request, and the headers that keep captured content inert (a strict CSP, no sniffing,
no framing). Requests whose Host is not loopback are refused unless remote access was allowed, so a
web page cannot reach the store by pointing its own domain name at 127.0.0.1."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tracewire.read import formats as fmt
from tracewire.read.fold import summarize, tree
from tracewire.read.index import TraceIndex
from tracewire.read.local import LocalStore
from tracewire.read.query import AmbiguousId, IdNotFound
from tracewire.read.stats import Dashboard
from tracewire.ui import assets, dashboard_page, list_page, sessions_page, trace_page
from tracewire.ui.listing import Filters

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC = {"/static/ui.css": ("text/css; charset=utf-8", assets.CSS.encode()),
           "/static/ui.js": ("text/javascript; charset=utf-8", assets.JS.encode())}
_TRACE_PATH = re.compile(r"^/traces/([^/]+)$")
_SESSION_PATH = re.compile(r"^/sessions/([^/]+)$")
SESSIONS_SHOWN = 100  # most recently active first
_LOOPBACK_NAMES = frozenset(("localhost", "localhost."))


def is_loopback(host: str) -> bool:
    """`127.0.0.1`, `::1`, `localhost`: names and addresses that never leave the machine."""
    host = host.strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ViewerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, db: str, host: str, port: int, *, allow_remote: bool = False) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.db = db
        self.allow_remote = allow_remote
        self.index = TraceIndex(db)  # the list's read model, kept current beside the app writing the store
        super().__init__((host, port), ViewerHandler)
        self.index.start()

    def server_close(self) -> None:
        self.index.stop()
        super().server_close()

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


class ViewerHandler(BaseHTTPRequestHandler):
    server: ViewerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        if os.environ.get("TRACEWIRE_UI_LOG"):
            sys.stderr.write("%s %s\n" % (self.address_string(), format % args))  # noqa: UP031

    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in {**_HEADERS, "Content-Type": content_type, "Content-Length": str(len(body)), **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802 - the base class's naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - the base class's naming
        host = urlsplit("//" + (self.headers.get("Host") or "")).hostname or ""
        if not self.server.allow_remote and not is_loopback(host):
            self._send(HTTPStatus.FORBIDDEN, b"this viewer answers only on a loopback address\n",
                       "text/plain; charset=utf-8")
            return
        parts = urlsplit(self.path)
        path = parts.path
        if path in _STATIC:
            ctype, body = _STATIC[path]
            self._send(HTTPStatus.OK, body, ctype, {"Cache-Control": "max-age=300"})
            return
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        query = parse_qs(parts.query)
        m = _TRACE_PATH.match(path)
        session = _SESSION_PATH.match(path)
        if path == "/":
            self._send(*self._list(query))
        elif path == "/live":
            self._send(*self._live(query))
        elif path == "/dashboard":
            self._send(*self._dashboard(query))
        elif path == "/sessions":
            self._send(*self._sessions())
        elif session:
            self._send(*self._session(unquote(session.group(1))))
        elif m:
            self._trace(unquote(m.group(1)), (query.get("span") or [""])[0] or None, parts.query,
                        (query.get("view") or ["tree"])[0])
        else:
            self._send(HTTPStatus.NOT_FOUND, trace_page.page_not_found(path, self.server.db).encode())

    def _store(self) -> LocalStore | None:
        try:
            return LocalStore(self.server.db)
        except FileNotFoundError:
            return None

    def _list(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        store = self._store()
        if store is None:
            return HTTPStatus.OK, list_page.no_store(self.server.db).encode()
        try:
            f = Filters.from_query(query)
            page_text = (query.get("page") or ["1"])[0]
            page_no = max(1, int(page_text)) if page_text.isdigit() else 1
            return HTTPStatus.OK, list_page.listing(store, self.server.index, f, page_no, self.server.db).encode()
        finally:
            store.close()

    def _live(self, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        """Rows of traces newer than `after` (the newest the page shows), as table rows to put on top."""
        store = self._store()
        if store is None:
            return HTTPStatus.OK, b"", "text/html; charset=utf-8"
        try:
            html = list_page.live(store, self.server.index, Filters.from_query(query), query)
            return HTTPStatus.OK, html.encode(), "text/html; charset=utf-8"
        finally:
            store.close()

    def _dashboard(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        """The range takes the CLI's --since/--until forms; a bad one is said on the page, not raised."""
        since = (query.get("since") or [""])[0].strip()
        until = (query.get("until") or [""])[0].strip()
        now = time.time_ns()
        try:
            since_ns = fmt.parse_when(since or dashboard_page.DEFAULT_SINCE, now)
            until_ns = fmt.parse_when(until, now) if until else now
        except ValueError as exc:
            return HTTPStatus.BAD_REQUEST, dashboard_page.bad_range(str(exc), since, until, self.server.db).encode()
        store = self._store()
        if store is None:
            d = Dashboard(since_ns, until_ns, 1)
        else:
            try:
                d = store.dashboard(since_ns, until_ns)
            finally:
                store.close()
        return HTTPStatus.OK, dashboard_page.render(d, since, until, self.server.db).encode()

    def _sessions(self) -> tuple[int, bytes]:
        store = self._store()
        if store is None:
            return HTTPStatus.OK, sessions_page.list_page([], self.server.db).encode()
        try:
            return HTTPStatus.OK, sessions_page.list_page(store.sessions(SESSIONS_SHOWN), self.server.db).encode()
        finally:
            store.close()

    def _session(self, session_id: str) -> tuple[int, bytes]:
        store = self._store()
        rows: list[dict[str, Any]] = []
        turns: list[sessions_page.Turn] = []
        if store is not None:
            try:
                rows = store.list_traces(sessions_page.SESSION_TRACES + 1, session_id=session_id)
                turns = [sessions_page.Turn(r, tree(store.trace_events(r["trace_id"])))
                         for r in reversed(rows[:sessions_page.SESSION_TRACES])]  # oldest first: a conversation
            finally:
                store.close()
        if not turns:
            return HTTPStatus.NOT_FOUND, trace_page.page_not_found(f"/sessions/{session_id}", self.server.db).encode()
        html = sessions_page.session_page(session_id, turns, self.server.db,
                                          cut=len(rows) > sessions_page.SESSION_TRACES)
        return HTTPStatus.OK, html.encode()

    def _trace(self, trace_id: str, span_id: str | None, query: str, view: str = "tree") -> None:
        """The trace's page; a prefix that names exactly one trace redirects to it, as the CLI takes one."""
        store = self._store()
        events: list[dict[str, Any]] = []
        found: str | None = None
        matches: list[str] = []
        count = 0
        if store is not None:
            try:
                found = store.resolve(trace_id)
                events = store.trace_events(found)
            except AmbiguousId as exc:
                matches, count = exc.ids, exc.count
            except (IdNotFound, ValueError):  # no such id, or not an id at all
                pass
            finally:
                store.close()
        if found is not None and found != trace_id:
            self._send(HTTPStatus.FOUND, b"", extra={"Location": trace_page.trace_url_plain(found, query)})
        elif not events:
            self._send(HTTPStatus.NOT_FOUND, trace_page.not_found(trace_id, self.server.db, matches, count).encode())
        else:
            html = trace_page.render(summarize(trace_id, events), tree(events), span_id, self.server.db, view)
            self._send(HTTPStatus.OK, html.encode())
