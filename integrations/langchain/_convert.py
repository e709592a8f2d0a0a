"""LangChain objects -> tracewire's small data shapes, built cheaply on the hot path.

Only translation happens here: no JSON, no deep copies. The core snapshots (pickles) what these
functions return, and makes it JSON-safe, scrubbed and size-capped on its worker thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.prompt_values import PromptValue

from tracewire import attributes as A
from tracewire.genai import message, tool_call, usage_attributes

_ROLES = {"human": "user", "ai": "assistant", "AIMessageChunk": "assistant", "HumanMessageChunk": "user",
          "system": "system", "tool": "tool", "function": "function", "developer": "developer"}
_PLAIN = frozenset({str, int, float, bool, type(None)})
_MAX_DEPTH = 8
# Message ids LangChain makes up itself (`lc_run--<run id>-0`): not the provider's response id.
_LOCAL_ID_PREFIXES = ("lc_run-", "run-")
_SCORE_KEYS = ("score", "relevance_score", "similarity_score", "_score", "distance")


def chat_message(m: BaseMessage) -> dict[str, Any]:
    """{role, content, tool_calls?, tool_call_id?, name?} — the shared genai message shape."""
    t = m.type
    role = _ROLES.get(t) or getattr(m, "role", None) or t
    out = message(role, m.content, tool_call_id=getattr(m, "tool_call_id", None), name=m.name)
    calls = getattr(m, "tool_calls", None)
    if calls:
        out["tool_calls"] = [tool_call(c.get("id"), c.get("name"), c.get("args")) for c in calls]
    return out


def document(d: Document) -> dict[str, Any]:
    out: dict[str, Any] = {"id": d.id, "metadata": d.metadata, "content": d.page_content}
    md = d.metadata
    if md:
        for key in _SCORE_KEYS:
            if key in md:
                out["score"] = md[key]
                break
    return out


def content(value: Any, depth: int = 0) -> Any:
    """Chain inputs/outputs with LangChain objects turned into plain shapes; other objects pass
    through as they are (the core snapshots them)."""
    t = type(value)
    if t in _PLAIN or depth > _MAX_DEPTH:
        return value
    if t is dict or isinstance(value, dict):
        return {k: content(v, depth + 1) for k, v in value.items()}
    if t is list or t is tuple:
        return [content(v, depth + 1) for v in value]
    if isinstance(value, BaseMessage):
        return chat_message(value)
    if isinstance(value, Document):
        return document(value)
    if isinstance(value, PromptValue):
        return [chat_message(m) for m in value.to_messages()]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # LangGraph's Command, Send
        return {f.name: content(v, depth + 1) for f in dataclasses.fields(value)
                if (v := getattr(value, f.name, None)) is not None}
    return value


def tool_output(output: Any) -> Any:
    """A tool's result: a ToolMessage's content (plus its artifact), else the value itself."""
    if isinstance(output, BaseMessage):
        artifact = getattr(output, "artifact", None)
        body = content(output.content)
        return body if artifact is None else {"content": body, "artifact": content(artifact)}
    return content(output)


def llm_result(
    response: LLMResult, request_model: str | None, capture: bool
) -> tuple[Any, dict[str, Any]]:
    """(output, attributes) of a finished LLM call: response model, finish reasons, usage
    (`usage_metadata` first, `llm_output` second), cost, and the output message(s)."""
    attrs: dict[str, Any] = {}
    gens = response.generations[0] if response.generations else []
    gen = gens[0] if gens else None
    msg = getattr(gen, "message", None)
    rm: Mapping[str, Any] = (getattr(msg, "response_metadata", None) or {}) if msg is not None else {}
    llm_output = response.llm_output or {}
    model = rm.get("model_name") or rm.get("model") or llm_output.get("model_name") or llm_output.get("model")
    if model:
        attrs[A.RESPONSE_MODEL] = model
    reasons = []
    for g in gens:
        info = g.generation_info
        reason = (info.get("finish_reason") if info else None) or rm.get("finish_reason") or rm.get("stop_reason")
        if reason:
            reasons.append(reason)
    if reasons:
        attrs[A.RESPONSE_FINISH_REASONS] = reasons
    resp_id = rm.get("id") or (msg.id if msg is not None else None)
    if resp_id and not resp_id.startswith(_LOCAL_ID_PREFIXES):
        attrs[A.RESPONSE_ID] = resp_id

    usage = getattr(msg, "usage_metadata", None) if msg is not None else None
    if usage:
        itd = usage.get("input_token_details") or {}
        otd = usage.get("output_token_details") or {}
        attrs.update(usage_attributes(
            usage.get("input_tokens"), usage.get("output_tokens"), usage.get("total_tokens"),
            cache_read_tokens=itd.get("cache_read"), cache_creation_tokens=itd.get("cache_creation"),
            reasoning_tokens=otd.get("reasoning"), model=model or request_model,
        ))
    else:
        tu = llm_output.get("token_usage") or llm_output.get("usage")
        if isinstance(tu, Mapping) and tu:
            ptd = tu.get("prompt_tokens_details") or {}
            ctd = tu.get("completion_tokens_details") or {}
            attrs.update(usage_attributes(
                tu.get("prompt_tokens", tu.get("input_tokens")), tu.get("completion_tokens", tu.get("output_tokens")),
                tu.get("total_tokens"), cache_read_tokens=ptd.get("cached_tokens") if isinstance(ptd, Mapping) else None,
                reasoning_tokens=ctd.get("reasoning_tokens") if isinstance(ctd, Mapping) else None,
                model=model or request_model,
            ))

    if not capture or gen is None:
        return None, attrs
    outs = [chat_message(g.message) if hasattr(g, "message") else message("assistant", g.text) for g in gens]
    return (outs[0] if len(outs) == 1 else outs), attrs


def first_chunk_has_content(token: Any, chunk: Any) -> bool:
    """A streamed chunk that carries output (text or a tool-call fragment), not just a role header."""
    if token:
        return True
    msg = getattr(chunk, "message", None)
    return bool(getattr(msg, "tool_call_chunks", None) or getattr(msg, "content", None))
