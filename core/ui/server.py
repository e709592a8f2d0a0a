"""The local viewer's HTTP server: the standard library's threading server, GET only, one read-only
store connection per request, the pages of `routes` with its headers. Requests whose Host is not
loopback are refused unless remote access was allowed, so a web page cannot reach the store by
pointing its own domain name at 127.0.0.1."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tracewire.read.index import TraceIndex
from tracewire.ui import routes
from tracewire.ui.indexed import IndexedStore
from tracewire.ui.routes import CSP, Reply

__all__ = ["CSP", "ViewerServer", "is_loopback"]
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

    def open_store(self) -> IndexedStore | None:
        """A read-only connection for one request; None before anything was recorded."""
        try:
            return IndexedStore(self.db, self.index)
        except FileNotFoundError:
            return None


class ViewerHandler(BaseHTTPRequestHandler):
    server: ViewerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        if os.environ.get("TRACEWIRE_UI_LOG"):
            sys.stderr.write("%s %s\n" % (self.address_string(), format % args))  # noqa: UP031

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for k, v in {**routes.HEADERS, "Content-Type": reply.content_type, "Content-Length": str(len(reply.body)),
                     **reply.headers}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def do_HEAD(self) -> None:  # noqa: N802 - the base class's naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - the base class's naming
        host = urlsplit("//" + (self.headers.get("Host") or "")).hostname or ""
        if not self.server.allow_remote and not is_loopback(host):
            self._send(Reply(HTTPStatus.FORBIDDEN, b"this viewer answers only on a loopback address\n",
                             "text/plain; charset=utf-8"))
            return
        parts = urlsplit(self.path)
        if parts.path == "/favicon.ico":
            self._send(Reply(HTTPStatus.NO_CONTENT, b"", "image/x-icon"))
            return
        self._send(routes.static(parts.path)
                   or routes.respond(self.server.open_store, parts.path, parts.query, self.server.db))
