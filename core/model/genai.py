"""Shared shapes for LLM data, so every adapter records messages, usage and cost the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tracewire.model import attributes as A
from tracewire.model.pricing import cost_usd


def message(
    role: str, content: Any = None, *, tool_calls: Sequence[Mapping[str, Any]] | None = None,
    tool_call_id: str | None = None, name: str | None = None,
) -> dict[str, Any]:
    """One chat message: {role, content, tool_calls?: [{id, name, arguments}], tool_call_id?, name?}."""
    m: dict[str, Any] = {"role": role, "content": content}
    if tool_calls:
        m["tool_calls"] = [tool_call(c.get("id"), c.get("name"), c.get("arguments")) for c in tool_calls]
    if tool_call_id:
        m["tool_call_id"] = tool_call_id
    if name:
        m["name"] = name
    return m


def tool_call(call_id: str | None, name: str | None, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "name": name, "arguments": arguments}


def usage_attributes(
    input_tokens: int | None = None, output_tokens: int | None = None, total_tokens: int | None = None,
    *, cache_read_tokens: int | None = None, cache_creation_tokens: int | None = None,
    cache_creation_1h_tokens: int | None = None, reasoning_tokens: int | None = None,
    model: str | None = None, cost: float | None = None,
) -> dict[str, Any]:
    """Usage attributes; cost from `cost` if the framework gave one, else from the price table.
    `input_tokens` counts every input token, cached or not (the GenAI convention); cache reads and
    writes are parts of it, priced on their own (`cache_creation_1h_tokens`: the part of the writes
    kept an hour)."""
    out: dict[str, Any] = {}
    if input_tokens is not None:
        out[A.USAGE_INPUT_TOKENS] = int(input_tokens)
    if output_tokens is not None:
        out[A.USAGE_OUTPUT_TOKENS] = int(output_tokens)
    if total_tokens is None and input_tokens is not None and output_tokens is not None:
        total_tokens = int(input_tokens) + int(output_tokens)
    if total_tokens is not None:
        out[A.USAGE_TOTAL_TOKENS] = int(total_tokens)
    if cache_read_tokens:
        out[A.USAGE_CACHE_READ_TOKENS] = int(cache_read_tokens)
    if cache_creation_tokens:
        out[A.USAGE_CACHE_CREATION_TOKENS] = int(cache_creation_tokens)
    if reasoning_tokens:
        out[A.USAGE_REASONING_TOKENS] = int(reasoning_tokens)
    if cost is None:
        cost = cost_usd(model, input_tokens, output_tokens, cache_read_tokens,
                        cache_creation_tokens=cache_creation_tokens, cache_creation_1h_tokens=cache_creation_1h_tokens)
    if cost is not None:
        out[A.COST_USD] = float(cost)
    return out


def ttft_ms(start_ns: int, first_token_ns: int | None) -> dict[str, Any]:
    return {} if first_token_ns is None else {A.TTFT_MS: round((first_token_ns - start_ns) / 1e6, 3), A.STREAMING: True}


def field(obj: Any, key: str, default: Any = None) -> Any:
    """Attribute or mapping access: frameworks hand out pydantic objects and plain dicts alike."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def openai_tool_calls(calls: Any) -> list[dict[str, Any]]:
    """OpenAI-shaped tool calls (`{id, function: {name, arguments}}`, or flat `{id, name, arguments}`)
    in the shared shape."""
    out = []
    for c in calls or ():
        fn = field(c, "function")
        src = fn if fn is not None else c
        out.append(tool_call(field(c, "id"), field(src, "name"), field(src, "arguments")))
    return out


def openai_tool_definitions(tools: Any) -> list[dict[str, Any]]:
    """OpenAI-shaped tool definitions (`{type: function, function: {...}}` or flat) -> name,
    description, parameters."""
    out = []
    for t in tools if isinstance(tools, (list, tuple)) else ():
        fn = field(t, "function") or t
        out.append({"name": field(fn, "name"), "description": field(fn, "description"),
                    "parameters": field(fn, "parameters")})
    return out
