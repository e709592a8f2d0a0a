"""A scripted Anthropic Messages API server on 127.0.0.1, for tests and offline examples.

It speaks the real wire format (`POST /v1/messages` as JSON or as a server-sent event stream,
`POST /v1/messages/count_tokens`), so the real `anthropic` client runs unchanged against it.
Replies come from a script: a list of `Reply` (text, thinking, tool uses, usage with cache tokens,
or an error status) consumed in order, or a callable `(request_json) -> Reply`. Every request is
kept (path, headers, body) for assertions.

    with AnthropicServer([Reply(tool_uses=[ToolUse("add", {"a": 1})]), Reply("done")]) as srv:
        client = Anthropic(base_url=srv.base_url, api_key="sk-ant-fake")
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tracewire.testing.local_http import EventStream, JSONHandler, Request, ScriptedServer

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


@dataclass
class ToolUse:
    name: str
    input: dict[str, Any]
    id: str = field(default_factory=lambda: f"toolu_{uuid.uuid4().hex[:20]}")


@dataclass
class Reply:
    text: str | None = None
    tool_uses: Sequence[ToolUse] = ()
    thinking: str | None = None  # an extended-thinking block before the text
    input_tokens: int = 10  # uncached input, as the API counts it
    output_tokens: int = 5
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0  # 5-minute cache writes
    cache_creation_1h_tokens: int = 0
    thinking_tokens: int = 0  # the part of output_tokens spent thinking (usage.output_tokens_details)
    model: str | None = None  # default: the requested model
    stop_reason: str | None = None  # default: tool_use with tool uses, else end_turn
    status: int = 200  # non-200: an Anthropic error body with this status
    error_message: str = "scripted error"
    chunk_delay: float = 0.0  # seconds between streamed events
    error_after: int | None = None  # streams: an `error` event (overloaded) after this many events
    drop_after: int | None = None  # streams: the connection closes after this many events
    one_write: bool = False  # a stream sent in one write: what the client's reads get does not depend on timing

    @property
    def finish_reason(self) -> str:
        return self.stop_reason or ("tool_use" if self.tool_uses else "end_turn")


Script = Sequence[Reply] | Callable[[dict[str, Any]], Reply]


class AnthropicServer(ScriptedServer[Reply]):
    def __init__(self, script: Script = (), *, default: Reply | None = None) -> None:
        super().__init__(self._handler(), script, default or Reply("ok"))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                with server._lock:
                    server.requests.append(Request(self.path, dict(self.headers.items()), body))
                path = self.path.split("?")[0].rstrip("/")
                if path.endswith("/v1/messages/count_tokens"):
                    self._json(200, {"input_tokens": _count(body)})
                elif path.endswith("/v1/messages"):
                    reply = server.next_reply(body)
                    if reply.status != 200:
                        self._error(reply)
                    elif body.get("stream"):
                        self._stream(body, reply)
                    else:
                        self._json(200, message(body, reply))
                else:
                    self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": f"unknown path {self.path}"}})

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                self.send_json(status, json.dumps(payload).encode())

            def _error(self, reply: Reply) -> None:
                data = json.dumps({"type": "error", "error": {"type": _ERROR_TYPES.get(reply.status, "api_error"),
                                                              "message": reply.error_message}}).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
                self.send_header("retry-after-ms", "1")  # the SDK's retries wait a millisecond, not seconds
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                out = EventStream(self, reply.one_write)
                for n, (name, data) in enumerate(events(body, reply)):
                    if reply.drop_after is not None and n >= reply.drop_after:
                        break
                    if reply.error_after is not None and n >= reply.error_after:
                        name, data = "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                    if reply.chunk_delay:
                        time.sleep(reply.chunk_delay)
                    out.send(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                    if name == "error":
                        break
                out.end()

        return Handler


def _count(body: dict[str, Any]) -> int:
    return sum(len(json.dumps(m.get("content")).split()) for m in body.get("messages") or ())


def usage(reply: Reply) -> dict[str, Any]:
    details = {"output_tokens_details": {"thinking_tokens": reply.thinking_tokens}} if reply.thinking_tokens else {}
    return {**details,
        "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens,
        "cache_read_input_tokens": reply.cache_read_tokens,
        "cache_creation_input_tokens": reply.cache_creation_tokens + reply.cache_creation_1h_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": reply.cache_creation_tokens,
                           "ephemeral_1h_input_tokens": reply.cache_creation_1h_tokens},
    }


def blocks(reply: Reply) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if reply.thinking is not None:
        out.append({"type": "thinking", "thinking": reply.thinking, "signature": "sig-" + uuid.uuid4().hex[:8]})
    if reply.text is not None:
        out.append({"type": "text", "text": reply.text})
    out += [{"type": "tool_use", "id": t.id, "name": t.name, "input": t.input} for t in reply.tool_uses]
    return out


def message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """The JSON body of a non-streamed reply."""
    return {
        "id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant",
        "model": reply.model or body.get("model", "claude-sonnet-4-5"), "content": blocks(reply),
        "stop_reason": reply.finish_reason, "stop_sequence": None, "usage": usage(reply),
    }


def events(body: dict[str, Any], reply: Reply) -> Iterator[tuple[str, dict[str, Any]]]:
    """The (event name, data) pairs of a streamed reply, in the API's order: message_start, a ping,
    each content block (start, deltas, stop), message_delta with the final usage, message_stop."""
    start = message(body, reply)
    start_usage = {**start["usage"], "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": {**start, "content": [], "stop_reason": None, "usage": start_usage}}
    yield "ping", {"type": "ping"}
    for i, block in enumerate(start["content"]):
        kind = block["type"]
        if kind == "thinking":
            yield _block_start(i, {"type": "thinking", "thinking": "", "signature": ""})
            for piece in _pieces(block["thinking"]):
                yield _delta(i, {"type": "thinking_delta", "thinking": piece})
            yield _delta(i, {"type": "signature_delta", "signature": block["signature"]})
        elif kind == "text":
            yield _block_start(i, {"type": "text", "text": ""})
            for piece in _pieces(block["text"]):
                yield _delta(i, {"type": "text_delta", "text": piece})
        else:
            yield _block_start(i, {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}})
            text = json.dumps(block["input"])
            for j in range(0, len(text), 8):
                yield _delta(i, {"type": "input_json_delta", "partial_json": text[j:j + 8]})
        yield "content_block_stop", {"type": "content_block_stop", "index": i}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": reply.finish_reason, "stop_sequence": None},
                            "usage": start["usage"]}
    yield "message_stop", {"type": "message_stop"}


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
