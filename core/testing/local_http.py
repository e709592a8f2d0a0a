"""What the scripted HTTP fakes share: a server on 127.0.0.1, run from a daemon thread and used as a
context manager, a request handler that answers with JSON, a server-sent-event reply, and the script of replies a provider's
fake plays back (a list, or a function of the request body) with the requests it received."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

_S = TypeVar("_S", bound="LocalHTTPServer")  # typing.Self needs Python 3.11
R = TypeVar("R")  # a provider fake's scripted reply


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):  # a client hanging up is normal
            super().handle_error(request, client_address)


class JSONHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: Any) -> None:
        return None

    def send_json(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class EventStream:
    """A server-sent-event reply: its headers at once (the connection closes after it), then each
    event written and flushed as it comes, or (`one_write`) held and written at once by `end()`:
    what a client's reads then get does not depend on timing."""

    def __init__(self, handler: BaseHTTPRequestHandler, one_write: bool = False) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        self._out = handler.wfile
        self._held: list[bytes] | None = [] if one_write else None

    def send(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
            return
        self._out.write(data)
        self._out.flush()

    def end(self) -> None:
        if self._held:
            self._out.write(b"".join(self._held))
            self._out.flush()


class LocalHTTPServer:
    """Serves `handler` on 127.0.0.1 (a free port, a thread per request) until `stop()`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        # a short poll interval keeps stop() quick (serve_forever checks for shutdown between polls)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self: _S) -> _S:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class ScriptedServer(LocalHTTPServer, Generic[R]):
    """A provider's fake: answers each request with the next scripted reply (`default` once the list
    runs out), or with `script(body)`; keeps every request it received in `requests`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler],
                 script: Sequence[R] | Callable[[dict[str, Any]], R], default: R) -> None:
        self._script = list(script) if not callable(script) else script
        self._default = default
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        super().__init__(handler)

    def push(self, *replies: R) -> None:
        with self._lock:
            if callable(self._script):
                raise TypeError("the script is a callable")
            self._script.extend(replies)

    def next_reply(self, body: dict[str, Any]) -> R:
        with self._lock:
            if callable(self._script):
                return self._script(body)
            return self._script.pop(0) if self._script else self._default
