"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for tests and offline examples.

It speaks the real wire format (`/v1/chat/completions` and the Responses API's `/v1/responses`,
each as JSON or as a server-sent event stream, `/v1/embeddings`, `/v1/models`), so the real client
libraries run unchanged against it. Replies come from a script: a list of `Reply` (text or tool
calls, with usage, cached and reasoning tokens) consumed in order, or a callable
`(request_json) -> Reply`; a `Reply` with an error status answers with OpenAI's error body (and a
short `retry-after-ms`, so an SDK's retries are quick), and `error_after` breaks a stream with an
error event after that many chunks. Every request is kept (path, headers, body) for assertions.

    with OpenAIServer([Reply(tool_calls=[ToolCall("add", {"a": 1})]), Reply("done")]) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="sk-fake")
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tracewire.testing.local_http import EventStream, JSONHandler, Request, ScriptedServer


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any] | str
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")


@dataclass
class Reply:
    text: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    prompt_tokens: int = 10
    completion_tokens: int = 5
    model: str | None = None  # default: the requested model
    status: int = 200  # non-200: an OpenAI-style error body with this status
    error_message: str = "scripted error"
    chunk_delay: float = 0.0  # seconds between streamed chunks
    cached_tokens: int = 0  # of prompt_tokens, read from the prompt cache
    reasoning_tokens: int = 0  # of completion_tokens, spent on reasoning
    error_after: int | None = None  # a stream: an error event after this many chunks, then the end
    retry_after_ms: int = 5  # an error reply's `retry-after-ms` header
    one_write: bool = False  # a stream sent in one write: what the client's reads get does not depend on timing

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"


Script = Sequence[Reply] | Callable[[dict[str, Any]], Reply]


class OpenAIServer(ScriptedServer[Reply]):
    def __init__(self, script: Script = (), *, default: Reply | None = None) -> None:
        super().__init__(self._handler(), script, default or Reply("ok"))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(JSONHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

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
                if path.endswith("/embeddings"):
                    self._embeddings(body)
                elif path.endswith("/chat/completions") or path.endswith("/responses"):
                    chat = path.endswith("/chat/completions")
                    reply = server.next_reply(body)
                    if reply.status != 200:
                        self._error(reply)
                    elif body.get("stream"):
                        self._stream(body, reply, _chunks(body, reply) if chat else _response_events(body, reply), chat)
                    else:
                        self._json(200, _completion(body, reply) if chat else _response(body, reply))
                else:
                    self._json(404, {"error": {"message": f"unknown path {self.path}"}})

            def _error(self, reply: Reply) -> None:
                data = json.dumps({"error": {"message": reply.error_message, "type": "invalid_request_error",
                                             "code": str(reply.status)}}).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("retry-after-ms", str(reply.retry_after_ms))
                self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:12]}")
                self.end_headers()
                self.wfile.write(data)

            def _embeddings(self, body: dict[str, Any]) -> None:
                inputs = body.get("input")
                items = inputs if isinstance(inputs, list) else [inputs]
                dim = int(body.get("dimensions") or 8)
                data = [
                    {"object": "embedding", "index": i, "embedding": [((i + 1) * (j + 1) % 7) / 7 for j in range(dim)]}
                    for i in range(len(items))
                ]
                tokens = sum(len(str(x).split()) for x in items)
                self._json(200, {"object": "list", "data": data, "model": body.get("model", "text-embedding-3-small"),
                                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                self.send_json(status, json.dumps(payload).encode())

            def _stream(self, body: dict[str, Any], reply: Reply, chunks: list[dict[str, Any]], chat: bool) -> None:
                out = EventStream(self, reply.one_write)
                try:
                    for i, chunk in enumerate(chunks):
                        if reply.error_after is not None and i == reply.error_after:
                            # what OpenAI sends when a stream fails after it started
                            error = {"message": reply.error_message, "type": "server_error", "code": None}
                            out.send(f"data: {json.dumps({'error': error})}\n\n".encode())
                            break
                        if reply.chunk_delay:
                            time.sleep(reply.chunk_delay)
                        # the Responses API names each event; chat chunks are bare data lines
                        event = "" if chat else f"event: {chunk['type']}\n"
                        out.send(f"{event}data: {json.dumps(chunk)}\n\n".encode())
                    else:
                        if chat:
                            out.send(b"data: [DONE]\n\n")
                    out.end()
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
                    return

        return Handler


def _usage(reply: Reply) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                             "total_tokens": reply.prompt_tokens + reply.completion_tokens}
    if reply.cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens, "audio_tokens": 0}
    if reply.reasoning_tokens:
        usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    return usage


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {
            "name": c.name, "arguments": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments)}}
        for c in reply.tool_calls
    ]


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = _tool_calls(reply)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": "chat.completion", "created": int(time.time()),
        "model": reply.model or body.get("model", "gpt-4o-mini"),
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
        "usage": _usage(reply),
    }


def _chunks(body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    cid = f"chatcmpl-{uuid.uuid4().hex[:16]}"
    model = reply.model or body.get("model", "gpt-4o-mini")

    usage = (body.get("stream_options") or {}).get("include_usage")

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage:  # asked for: every chunk has the field, null until the last one
            out["usage"] = None
        return out

    out = [chunk({"role": "assistant", "content": ""})]
    if reply.text:
        words = reply.text.split(" ")
        out += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    for i, call in enumerate(_tool_calls(reply)):
        out.append(chunk({"tool_calls": [{"index": i, **call}]}))
    out.append(chunk({}, reply.finish_reason))
    if usage:
        out.append({"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                    "choices": [], "usage": _usage(reply)})
    return out


# ------------------------------------------------------------------ the Responses API


def _response_usage(reply: Reply) -> dict[str, Any]:
    return {"input_tokens": reply.prompt_tokens, "input_tokens_details": {"cached_tokens": reply.cached_tokens},
            "output_tokens": reply.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
            "total_tokens": reply.prompt_tokens + reply.completion_tokens}


def _output_items(reply: Reply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.text is not None:
        items.append({"type": "message", "id": f"msg_{uuid.uuid4().hex[:12]}", "status": "completed",
                      "role": "assistant",
                      "content": [{"type": "output_text", "text": reply.text, "annotations": []}]})
    for c in reply.tool_calls:
        items.append({"type": "function_call", "id": f"fc_{uuid.uuid4().hex[:12]}", "call_id": c.id,
                      "name": c.name, "status": "completed",
                      "arguments": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments)})
    return items


def _response(body: dict[str, Any], reply: Reply, *, status: str = "completed", rid: str | None = None,
              output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": rid or f"resp_{uuid.uuid4().hex[:16]}", "object": "response", "created_at": int(time.time()),
        "status": status, "model": reply.model or body.get("model", "gpt-4o-mini"),
        "output": _output_items(reply) if output is None else output,
        "usage": _response_usage(reply) if done else None,
        "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
        "metadata": {}, "parallel_tool_calls": True, "temperature": body.get("temperature", 1.0),
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0), "text": {"format": {"type": "text"}},
    }


def _response_events(body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    """The Responses API's event stream for `reply`: created, each output item added, its deltas and
    done events, then completed with the whole response and its usage."""
    rid = f"resp_{uuid.uuid4().hex[:16]}"
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response(body, reply, status="in_progress", rid=rid, output=[])},
        {"type": "response.in_progress", "response": _response(body, reply, status="in_progress", rid=rid, output=[])},
    ]
    items = _output_items(reply)
    for index, item in enumerate(items):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            events.append({"type": "response.output_item.added", "output_index": index,
                           "item": {**item, "status": "in_progress", "content": []}})
            part = {"type": "output_text", "text": "", "annotations": []}
            events.append({"type": "response.content_part.added", "item_id": item["id"], "output_index": index,
                           "content_index": 0, "part": part})
            words = text.split(" ")
            for i, w in enumerate(words):
                events.append({"type": "response.output_text.delta", "item_id": item["id"], "output_index": index,
                               "content_index": 0, "delta": w if i == 0 else " " + w, "logprobs": []})
            events.append({"type": "response.output_text.done", "item_id": item["id"], "output_index": index,
                           "content_index": 0, "text": text, "logprobs": []})
            events.append({"type": "response.content_part.done", "item_id": item["id"], "output_index": index,
                           "content_index": 0, "part": item["content"][0]})
        else:
            events.append({"type": "response.output_item.added", "output_index": index,
                           "item": {**item, "status": "in_progress", "arguments": ""}})
            events.append({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                           "output_index": index, "delta": item["arguments"]})
            events.append({"type": "response.function_call_arguments.done", "item_id": item["id"],
                           "output_index": index, "arguments": item["arguments"], "name": item["name"]})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    events.append({"type": "response.completed", "response": _response(body, reply, rid=rid, output=items)})
    for n, event in enumerate(events):
        event["sequence_number"] = n
    return events
