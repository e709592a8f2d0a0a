"""What an Anthropic Messages call recorded: request attributes and input messages from the call's
keyword arguments, output and usage from the `Message` (or the stream events folded into one).
Never from `extra_headers` or the client, which hold the API key and auth headers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from tracewire.model import attributes as A
from tracewire.model.genai import message, tool_call, usage_attributes

PROVIDER = "anthropic"
ERROR_TYPE = "anthropic.error.type"  # the API's error type: overloaded_error, rate_limit_error, …
# The same keys as the OpenAI integration's, linking a response's tool calls to the request that
# answers them.

# Request parameters worth recording (older SDKs take temperature, top_p and top_k as arguments,
# newer ones through `extra_body`); everything else, `extra_headers` first, stays out.
_PARAMS = ("max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "stream", "tool_choice",
           "thinking", "service_tier", "speed", "inference_geo")
_OTEL_PARAMS = {"temperature": A.REQUEST_TEMPERATURE, "max_tokens": A.REQUEST_MAX_TOKENS,
                "top_p": A.REQUEST_TOP_P, "stop_sequences": A.REQUEST_STOP}
# An error event inside a 200 stream has no HTTP status of its own: the one the API gives the type.
_STATUS_OF_TYPE = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                   "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
                   "api_error": 500, "timeout_error": 504, "overloaded_error": 529}


def get(obj: Any, key: str) -> Any:
    """`obj.key`, or `obj[key]` of a dict: the SDK's objects and the caller's plain dicts alike.
    (genai.field's Mapping test is an ABC check: this runs on every call's hot path.)"""
    if type(obj) is dict:
        return obj.get(key)
    return getattr(obj, key, None)


def given(value: Any) -> bool:
    """Whether an argument was given: the SDK's `omit` / `NOT_GIVEN` sentinels mean it was not."""
    return value is not None and type(value).__name__ not in ("Omit", "NotGiven")


def request_attributes(kwargs: Mapping[str, Any], streaming: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {A.OPERATION_NAME: "chat", A.PROVIDER_NAME: PROVIDER, A.SYSTEM: PROVIDER}
    model = kwargs.get("model")
    if given(model):
        attrs[A.REQUEST_MODEL] = str(model)
    extra = kwargs.get("extra_body")
    # (an ABC check is a Python-level call: skipped for the usual absent extra_body)
    sources = (kwargs, extra) if extra is not None and isinstance(extra, Mapping) else (kwargs,)
    picked = {k: src[k] for src in sources for k in _PARAMS if k in src and given(src[k])}
    if streaming:
        picked["stream"] = True
        attrs[A.STREAMING] = True
    for k, key in _OTEL_PARAMS.items():
        if k in picked:
            attrs[key] = picked[k]
    if picked:
        attrs[A.INVOCATION_PARAMS] = picked
    tools = kwargs.get("tools")
    if given(tools) and isinstance(tools, Iterable):
        attrs[A.TOOL_DEFINITIONS] = [_tool_definition(t) for t in tools]
    return attrs


def _tool_definition(tool: Any) -> dict[str, Any]:
    d = {"name": get(tool, "name"), "description": get(tool, "description"), "parameters": get(tool, "input_schema")}
    kind = get(tool, "type")
    if kind and kind != "custom":  # a server tool (web_search_20250305, …)
        d["type"] = kind
    return d


def result_ids(messages: list[Any]) -> list[str]:
    """The ids the request's tool results answer, those after its last assistant message (the
    history's earlier ones were linked by the request that first sent them)."""
    ids: list[str] = []
    for m in messages:
        role = m.get("role") if isinstance(m, dict) else None
        if role == "assistant":
            ids = []
        elif role == "tool" and m.get("tool_call_id"):
            ids.append(str(m["tool_call_id"]))
    return ids


def input_messages(messages: Any, system: Any = None) -> list[Any]:
    """The system prompt and the request's messages in the shared shape: an assistant turn's
    tool_use blocks as tool calls (ids kept), a user turn's tool_result blocks as `tool` messages
    answering those ids, ahead of the turn's own text."""
    out: list[Any] = []
    if given(system):
        out.append(message("system", system if isinstance(system, str) else _content(system)[0]))
    iterable = type(messages) is list or isinstance(messages, Iterable) and not isinstance(messages, (str, bytes))
    for m in messages if iterable else ():
        if type(m) is dict and len(m) == 2 and type(m.get("content")) is str and type(m.get("role")) is str and m["role"]:
            out.append(m)  # {role, content: text}: already the shared shape (the span's start snapshots it)
            continue
        role = str(get(m, "role") or "user")
        content = get(m, "content")
        if isinstance(content, str) or not isinstance(content, Iterable):
            out.append(message(role, content))
            continue
        text, calls, results, thinking = _content(content)
        out.extend(results)
        if text is not None or calls or not results:
            out.append(_with_thinking(message(role, text, tool_calls=calls or None), thinking))
    return out


def output_message(content: Any) -> dict[str, Any]:
    """The assistant message a response's content blocks make: its text, its tool_use blocks as
    tool calls (ids and input kept), its thinking under `thinking`."""
    text, calls, _, thinking = _content(content or ())
    return _with_thinking(message("assistant", text, tool_calls=calls or None), thinking)


def _with_thinking(m: dict[str, Any], thinking: list[str]) -> dict[str, Any]:
    if thinking:
        m["thinking"] = "\n".join(thinking)
    return m


def _content(blocks: Iterable[Any]) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(content, tool calls, tool results, thinking) of a list of content blocks. The content is the
    text when every other block is a tool call or thinking, else the blocks themselves."""
    texts: list[str] = []
    parts: list[Any] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    thinking: list[str] = []
    plain = True
    for b in blocks:
        kind = get(b, "type")
        if kind == "text":
            texts.append(str(get(b, "text") or ""))
            parts.append({"type": "text", "text": get(b, "text")})
        elif kind in ("tool_use", "server_tool_use"):
            calls.append(tool_call(get(b, "id"), get(b, "name"), get(b, "input")))
        elif kind == "tool_result":
            result = get(b, "content")
            if not isinstance(result, str) and isinstance(result, Iterable):
                result = _content(result)[0]
            m = message("tool", result, tool_call_id=get(b, "tool_use_id"))
            if get(b, "is_error"):
                m["is_error"] = True
            results.append(m)
        elif kind == "thinking":
            thinking.append(str(get(b, "thinking") or ""))
        elif kind == "redacted_thinking":
            thinking.append("[redacted]")
        else:
            plain = False
            parts.append(_block(b))
    if not plain:
        return parts, calls, results, thinking
    return ("".join(texts) if texts else None), calls, results, thinking


def _block(b: Any) -> Any:
    if isinstance(b, Mapping):
        return dict(b)
    dump = getattr(b, "model_dump", None)
    return dump(exclude_none=True) if callable(dump) else b


def usage_of(usage: Any, model: Any) -> dict[str, Any]:
    """Usage attributes and cost. Anthropic counts cache reads and writes on top of `input_tokens`;
    the GenAI convention's input count includes them, so they are added in, and each part is
    priced on its own (writes kept an hour at their own price, thinking as output)."""
    if usage is None:
        return {}
    uncached = _int(get(usage, "input_tokens"))
    read = _int(get(usage, "cache_read_input_tokens"))
    written = _int(get(usage, "cache_creation_input_tokens"))
    written_1h = _int(get(get(usage, "cache_creation"), "ephemeral_1h_input_tokens"))
    out = get(usage, "output_tokens")
    thinking = get(get(usage, "output_tokens_details"), "thinking_tokens")
    total_in = uncached + read + written
    name = str(model) if model else None
    return usage_attributes(total_in, out, cache_read_tokens=read, cache_creation_tokens=written,
                            cache_creation_1h_tokens=written_1h, reasoning_tokens=thinking, model=name)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def response(msg: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attributes, output) of a complete `Message`."""
    return _result(get(msg, "model"), get(msg, "id"), get(msg, "stop_reason"), get(msg, "usage"), get(msg, "content"))


def _result(model: Any, msg_id: Any, stop: Any, usage: Any, content: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    attrs = usage_of(usage, model)
    if model:
        attrs[A.RESPONSE_MODEL] = str(model)
    if msg_id:
        attrs[A.RESPONSE_ID] = str(msg_id)
    if stop:
        attrs[A.RESPONSE_FINISH_REASONS] = [str(stop)]
    output = output_message(content)
    if output.get("tool_calls"):
        attrs[A.TOOL_CALL_IDS] = [c["id"] for c in output["tool_calls"]]
    return attrs, output


def error_attributes(exc: BaseException) -> dict[str, Any]:
    """The HTTP status of a failed call (for an error event inside a stream, the status the API
    gives its type) and the API's error type."""
    attrs: dict[str, Any] = {}
    body = getattr(exc, "body", None)
    kind = get(get(body, "error"), "type") if isinstance(body, Mapping) else None
    status = getattr(exc, "status_code", None)
    if isinstance(kind, str):
        attrs[ERROR_TYPE] = kind
        if status == 200:
            status = _STATUS_OF_TYPE.get(kind, status)
    if isinstance(status, int):
        attrs[A.ERROR_CODE] = status
    return attrs


class StreamFold:
    """A stream's events, folded when the span ends (on the worker), and when the first content
    delta came, for the time to first token. As events pass, a delta carrying a piece of a block's
    text, JSON or thinking is kept as that piece (after its block's index, when the index
    changes); any other event is kept whole, in the same list. Holding every event would cost the
    caller more than reading it (the objects kept alive for the garbage collector, the memory the
    SDK would reuse for the next one taken); the reads go through each model's `__dict__`, one
    attribute lookup per object (as ChatChunks does for OpenAI's chunks)."""

    __slots__ = ("parts", "index", "start", "first")

    def __init__(self, start: int) -> None:
        self.parts: list[Any] = []  # pieces (str), block indexes (int) before their pieces, whole events
        self.index: int | None = None  # the block the last piece kept belongs to
        self.start = start  # perf_counter_ns when the call began
        self.first: int | None = None

    def add(self, event: Any) -> bool:
        try:
            fields = event.__dict__
            if fields["type"] == "content_block_delta":
                if self.first is None:
                    self.first = time.perf_counter_ns()
                delta = fields["delta"].__dict__
                piece = delta.get(_DELTA_FIELD.get(delta["type"], ""))
                index = fields["index"]
                if type(piece) is str and type(index) is int:
                    parts = self.parts
                    if index != self.index:
                        self.index = index
                        parts.append(index)
                    parts.append(piece)
                    return True
        except (AttributeError, KeyError, TypeError):  # not an event as the SDK builds them: kept whole
            pass
        self.parts.append(event)
        return True

    def result(self) -> tuple[dict[str, Any], Any]:
        """(attributes, output) of the events seen so far: partial when the stream broke off.
        The SDK's event objects are read with getattr: this runs once per event."""
        model = msg_id = stop = None
        usage: dict[str, Any] = {}
        blocks: dict[Any, dict[str, Any]] = {}
        parts: dict[Any, list[str]] = {}  # a block's streamed pieces, by index
        into: list[str] = []  # the pieces of the block whose index came last
        for e in self.parts:
            if type(e) is str:
                into.append(e)
                continue
            if type(e) is int:
                into = parts.setdefault(e, [])
                continue
            kind = getattr(e, "type", None)
            if kind == "content_block_delta":
                d = getattr(e, "delta", None)
                name = _DELTA_FIELD.get(getattr(d, "type", None))
                if name is not None:
                    piece = getattr(d, name, None)
                    if isinstance(piece, str):
                        parts.setdefault(getattr(e, "index", None), []).append(piece)
            elif kind == "content_block_start":
                blocks[getattr(e, "index", None)] = _start_block(getattr(e, "content_block", None))
            elif kind == "message_start":
                m = getattr(e, "message", None)
                model, msg_id = getattr(m, "model", None), getattr(m, "id", None)
                usage = _usage_fields(getattr(m, "usage", None), usage)
            elif kind == "message_delta":
                stop = getattr(getattr(e, "delta", None), "stop_reason", None) or stop
                usage = _usage_fields(getattr(e, "usage", None), usage)
        content = [_finish_block(blocks[i], parts.get(i)) for i in sorted(blocks, key=_index)]
        attrs, output = _result(model, msg_id, stop, usage or None, content)
        if self.first is not None:
            attrs[A.TTFT_MS] = round((self.first - self.start) / 1e6, 3)
        return attrs, output


# the field of each delta type holding its piece of text
_DELTA_FIELD: dict[Any, str] = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}
# the field of each block type its pieces are joined into ("json": a tool's input, parsed at the end)
_BLOCK_FIELD = {"text": "text", "tool_use": "json", "server_tool_use": "json", "thinking": "thinking"}


def _index(i: Any) -> int:
    return i if isinstance(i, int) else -1


def _usage_fields(usage: Any, into: dict[str, Any]) -> dict[str, Any]:
    """`into` updated with the counts `usage` gives (message_delta's usage is cumulative, its
    absent counts None)."""
    for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                "cache_creation", "output_tokens_details"):
        value = get(usage, key)
        if value is not None:
            into[key] = value
    return into


def _start_block(block: Any) -> dict[str, Any]:
    kind = get(block, "type")
    if kind in ("tool_use", "server_tool_use"):
        return {"type": kind, "id": get(block, "id"), "name": get(block, "name"), "input": get(block, "input")}
    if kind == "thinking":
        return {"type": "thinking", "thinking": get(block, "thinking") or ""}
    if kind == "text":
        return {"type": "text", "text": get(block, "text") or ""}
    return {"type": kind}


def _finish_block(block: dict[str, Any], parts: list[str] | None) -> dict[str, Any]:
    """A block with its streamed pieces joined in. A tool_use block's input is parsed from its
    streamed JSON; a fragment that does not parse (the stream broke off) is kept as the text it is."""
    name = _BLOCK_FIELD.get(block["type"])
    if not parts or name is None:
        return block
    joined = "".join(parts)
    if name != "json":
        block[name] = block.get(name, "") + joined
        return block
    try:
        block["input"] = json.loads(joined)
    except ValueError:
        block["input"] = joined
    return block
