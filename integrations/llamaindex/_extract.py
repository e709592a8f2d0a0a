"""Small translations from LlamaIndex objects to tracewire's shapes. Everything here is
duck-typed and cheap: attribute reads and small dicts, no serialization."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from workflows.events import StopEvent

from tracewire.model import attributes as A
from tracewire.model.genai import message, tool_call, usage_attributes

_provider_by_class: dict[type, str | None] = {}


def _role(msg: Any) -> str:
    role = getattr(msg, "role", None)
    return str(getattr(role, "value", role) or "user")


def _text(obj: Any) -> Any:
    """The text of a ChatMessage / QueryBundle / response-ish object, else the object."""
    if obj is None or isinstance(obj, str):
        return obj
    for attr in ("query_str", "content", "response", "text"):
        value = getattr(obj, attr, None)
        if isinstance(value, str):
            return value
    return obj


def chat_message(msg: Any) -> dict[str, Any]:
    """A LlamaIndex ChatMessage as tracewire's message shape (tool calls from ToolCallBlocks)."""
    calls = []
    for block in getattr(msg, "blocks", None) or ():
        if getattr(block, "block_type", None) == "tool_call":
            calls.append(tool_call(block.tool_call_id, block.tool_name, block.tool_kwargs))
    extra = getattr(msg, "additional_kwargs", None) or {}
    try:
        content = msg.content
    except Exception:  # noqa: BLE001 - a block type without text
        content = None
    return message(
        _role(msg), content, tool_calls=calls or None, tool_call_id=extra.get("tool_call_id"), name=extra.get("name"),
    )


def llm_input(args: Mapping[str, Any]) -> Any:
    messages = args.get("messages")
    if messages is not None:
        return [chat_message(m) for m in messages]
    if "prompt" in args:
        return args["prompt"]
    pos = args.get("args") or ()  # the completion decorator's signature is (*args, **kwargs)
    return pos[0] if pos else (args.get("kwargs") or {}).get("prompt")


_LLM_ATTRS = (("temperature", A.REQUEST_TEMPERATURE), ("max_tokens", A.REQUEST_MAX_TOKENS))
_llm_layout: dict[type, tuple[str | None, tuple[tuple[str, str], ...]]] = {}


def _layout(cls: type) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """Which model / parameter attributes an LLM class has: looked up once per class, because a
    missing attribute on a pydantic model is an expensive AttributeError."""
    try:
        return _llm_layout[cls]
    except KeyError:
        pass
    fields = getattr(cls, "model_fields", None) or {}

    def has(name: str) -> bool:
        return name in fields or isinstance(getattr(cls, name, None), property)

    model_attr = next((n for n in ("model", "model_name") if has(n)), None)
    layout = (model_attr, tuple((n, k) for n, k in _LLM_ATTRS if has(n)))
    if len(_llm_layout) < 1024:
        _llm_layout[cls] = layout
    return layout


def llm_attributes(llm: Any, method: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {A.OPERATION_NAME: "text_completion" if method.endswith("complete") else "chat"}
    model_attr, params = _layout(type(llm))
    model = getattr(llm, model_attr, None) if model_attr else None
    if not isinstance(model, str):
        try:
            model = llm.metadata.model_name
        except Exception:  # noqa: BLE001
            model = None
    if isinstance(model, str) and model != "unknown":
        attrs[A.REQUEST_MODEL] = model
    provider = _provider(llm)
    if provider:
        attrs[A.PROVIDER_NAME] = provider
    for attr, key in params:
        value = getattr(llm, attr, None)
        if isinstance(value, (int, float)):
            attrs[key] = value
    return attrs


def _provider(obj: Any) -> str | None:
    """`llama_index.llms.openai.base.OpenAI` -> "openai" (the integration package's name)."""
    cls = type(obj)
    try:
        return _provider_by_class[cls]
    except KeyError:
        pass
    parts = cls.__module__.split(".")
    provider = parts[2] if len(parts) > 2 and parts[0] == "llama_index" and parts[1] in ("llms", "embeddings") else None
    if len(_provider_by_class) < 1024:
        _provider_by_class[cls] = provider
    return provider


def llm_output(response: Any) -> Any:
    msg = getattr(response, "message", None)
    if msg is not None:
        return chat_message(msg)
    return getattr(response, "text", None)


def llm_response_attributes(response: Any, model: str | None, usage_seen: Mapping[str, Any] | None) -> dict[str, Any]:
    """Usage (ChatResponse.additional_kwargs, else raw.usage), response model, finish reason, cost."""
    attrs: dict[str, Any] = {}
    raw = getattr(response, "raw", None)
    resp_model = _get(raw, "model")
    if isinstance(resp_model, str):
        attrs[A.RESPONSE_MODEL] = resp_model
    resp_id = _get(raw, "id")
    if isinstance(resp_id, str):
        attrs[A.RESPONSE_ID] = resp_id
    choices = _get(raw, "choices")
    if choices:
        reason = _get(choices[0], "finish_reason")
        if isinstance(reason, str):
            attrs[A.RESPONSE_FINISH_REASONS] = [reason]
    usage = usage_seen or usage_of(response)
    if usage:
        attrs.update(usage_attributes(**usage, model=resp_model if isinstance(resp_model, str) else model))
    return attrs


def usage_of(response: Any) -> dict[str, Any] | None:
    """Token counts an LLM reported for one response, as `usage_attributes` keyword arguments."""
    extra = getattr(response, "additional_kwargs", None) or {}
    usage: Any = extra if "prompt_tokens" in extra or "input_tokens" in extra else None
    if usage is None:
        usage = _get(getattr(response, "raw", None), "usage")
    if not usage:
        return None
    inp = _get(usage, "prompt_tokens", _get(usage, "input_tokens"))
    out = _get(usage, "completion_tokens", _get(usage, "output_tokens"))
    if inp is None and out is None:
        return None
    return {
        "input_tokens": inp, "output_tokens": out, "total_tokens": _get(usage, "total_tokens"),
        "cache_read_tokens": _get(_get(usage, "prompt_tokens_details"), "cached_tokens"),
        "reasoning_tokens": _get(_get(usage, "completion_tokens_details"), "reasoning_tokens"),
    }


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    try:
        return getattr(obj, key, default)
    except Exception:  # noqa: BLE001
        return default


def retriever_input(args: Mapping[str, Any]) -> Any:
    return _text(args.get("str_or_query_bundle", args.get("query_bundle")))


def nodes_output(nodes: Any) -> list[dict[str, Any]]:
    out = []
    for n in nodes:
        node = getattr(n, "node", n)
        try:
            text = node.get_content()
        except Exception:  # noqa: BLE001
            text = None
        out.append({"id": getattr(node, "node_id", None), "score": getattr(n, "score", None),
                    "metadata": getattr(node, "metadata", None), "text": text})
    return out


def embedding_input(args: Mapping[str, Any]) -> Any:
    for key in ("query", "text", "texts", "queries"):
        if key in args:
            return args[key]
    return None


def embedding_shape(result: Any) -> tuple[int, int | None]:
    """(vector count, dimension) of an embedding call's result: one vector or a list of them."""
    if isinstance(result, list) and result:
        first = result[0]
        if isinstance(first, list):
            return len(result), len(first)
        return 1, len(result)
    return 0, None


def tool_input(args: Mapping[str, Any]) -> Any:
    pos = args.get("args") or ()
    kwargs = dict(args.get("kwargs") or {})
    if pos:
        return {"args": list(pos), **kwargs}
    return kwargs


def chain_input(args: Mapping[str, Any]) -> Any:
    """The query / message a query engine, synthesizer or chat engine was called with."""
    for key in ("str_or_query_bundle", "query_bundle", "query", "message"):
        if key in args:
            return _text(args[key])
    return None


def chain_output(result: Any) -> Any:
    if result is None or isinstance(result, (str, int, float, bool)):
        return result
    if inspect.isgenerator(result) or inspect.isasyncgen(result) or any(
        getattr(result, attr, None) is not None for attr in ("response_gen", "chat_stream", "achat_stream")
    ):
        return None  # a streaming response: its text is not known yet
    return _text(result)


def workflow_output(result: Any) -> Any:
    """A StopEvent's result; for agents the final message's text."""
    value = result.result if isinstance(result, StopEvent) else result
    response = getattr(value, "response", None)
    if response is not None and hasattr(response, "role"):
        return _text(response)
    return value


def agent_input(args: Mapping[str, Any]) -> Any:
    start = args.get("start_event")
    if start is None:
        return None
    try:
        user_msg = start.get("user_msg")
    except Exception:  # noqa: BLE001
        user_msg = None
    return _text(user_msg) if user_msg is not None else None
