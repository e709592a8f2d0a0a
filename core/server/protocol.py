"""Connection limits for `tracewire serve`: uvicorn's HTTP protocol, bounded against slow clients.

uvicorn closes an idle keep-alive connection (`timeout_keep_alive`), but nothing bounds the time a
client takes to send a request: one that sends a header byte every few seconds (slowloris), or
that trickles a body, holds its connection and a file descriptor for as long as it likes. Here:

- headers: from the connection's first byte (or a kept-alive connection's next byte) the request
  line and headers must arrive within `header_timeout` and within `max_header_bytes`; else the
  client gets 408 / 431 and the connection is closed;
- body: the time the app spends waiting for body bytes is bounded by `body_timeout` (the server's
  own slowness is not counted); past it the client gets 408 and the connection is closed. A body
  still arriving after the response was sent (an early 4xx) must also finish within `body_timeout`.

The limits reach every worker process through an environment variable (`serve --workers N`
starts workers that import this module afresh).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

ENV = "TRACEWIRE_SERVE_CONNECTION_LIMITS"


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_header_bytes: int = 64 * 1024


def configure(limits: ConnectionLimits) -> None:
    os.environ[ENV] = json.dumps(asdict(limits))


def current() -> ConnectionLimits:
    try:
        return ConnectionLimits(**json.loads(os.environ[ENV]))
    except (KeyError, ValueError, TypeError):
        return ConnectionLimits()


def _response(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class BodyTimeout:
    """ASGI middleware: bounds the time the app waits in `receive()` for the request body."""

    def __init__(self, app: Any, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = self.timeout
        body_done = False
        timed_out = False
        started = False
        loop = asyncio.get_running_loop()

        async def bounded_receive() -> Any:
            nonlocal budget, body_done, timed_out
            if body_done or timed_out:
                return await receive()
            t0 = loop.time()
            try:
                message = await asyncio.wait_for(receive(), max(budget, 0.0))
            except asyncio.TimeoutError:
                timed_out = True
                return {"type": "http.disconnect"}  # the app stops reading; we answer below
            budget -= loop.time() - t0
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if timed_out and not started:
                return  # the app's reply to the disconnect we made up: the 408 goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, guarded_send)
        except Exception:
            if not timed_out:
                raise
        if timed_out and not started:
            body = json.dumps({"error": {"code": "body_timeout",
                                         "message": f"request body not received within {self.timeout:g} s"}}).encode()
            await send({"type": "http.response.start", "status": 408,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})


class _Guard:
    """Mixed in front of a uvicorn HTTP protocol class (h11 or httptools)."""

    # provided by the uvicorn protocol class
    app: Any
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = current()
        self.app = BodyTimeout(self.app, self._limits.body_timeout)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_phase: str | None = None
        self._header_bytes = 0

    def _phase(self) -> str | None:
        cycle = self.cycle
        if cycle is None or (cycle.response_complete and not cycle.more_body):
            return "headers"  # between requests: the next one's headers
        if cycle.response_complete:
            return "body"  # answered before its body arrived: the rest must come in time
        return None  # the app is handling it; BodyTimeout bounds its waits

    def _arm(self, phase: str) -> None:
        if self._timer_phase == phase:
            return
        self._disarm()
        delay = self._limits.header_timeout if phase == "headers" else self._limits.body_timeout
        self._timer = self.loop.call_later(delay, self._expired, phase)
        self._timer_phase = phase

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_phase = None

    def _expired(self, phase: str) -> None:
        self._timer = None
        self._timer_phase = None
        if self.transport.is_closing() or self._phase() != phase:
            return
        if phase == "headers":
            self._refuse(_response(408, "Request Timeout", "header_timeout",
                                   f"request headers not received within {self._limits.header_timeout:g} s"))
        else:
            self.transport.close()

    def _refuse(self, response: bytes) -> None:
        self._disarm()
        try:
            self.transport.write(response)
        finally:
            self.transport.close()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm("headers")  # a connection that never sends a byte is bounded too

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        if self._phase() == "headers":
            self._arm("headers")
            self._header_bytes += len(data)
        super().data_received(data)  # type: ignore[misc]
        if self.transport.is_closing():
            self._disarm()
            return
        if self.cycle is not before:
            self._header_bytes = 0
        phase = self._phase()
        if phase is None:
            self._disarm()
        elif phase == "body":
            self._arm("body")
        elif self.cycle is before and self._header_bytes > self._limits.max_header_bytes:
            self._refuse(_response(431, "Request Header Fields Too Large", "headers_too_large",
                                   f"request line and headers exceed {self._limits.max_header_bytes} bytes"))

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._header_bytes = 0
        phase = self._phase()
        if phase == "body":
            self._arm("body")
        else:
            self._disarm()  # idle: uvicorn's keep-alive timeout; the header timer starts with the next byte

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]


def _guarded(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    return type(f"Guarded{base.__name__}", (_Guard, base), {"__module__": __name__})


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    GuardedHttpToolsProtocol = _guarded(HttpToolsProtocol)
except ImportError:  # pragma: no cover - httptools is optional: h11 then
    GuardedHttpToolsProtocol = None  # type: ignore[assignment]

from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: E402

GuardedH11Protocol = _guarded(H11Protocol)


def protocol_class_path() -> str:
    """uvicorn's `http` option: the fastest available implementation, guarded (a string, so worker
    processes import it themselves)."""
    name = "GuardedHttpToolsProtocol" if GuardedHttpToolsProtocol is not None else "GuardedH11Protocol"
    return f"{__name__}:{name}"
