"""What a LiteLLM call recorded: attributes, input, output and error built from the call's model
and messages, LiteLLM's `standard_logging_object` and the response object. Never from raw `kwargs`,
which hold the API key (and, on the async path, the Authorization header) in clear."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from tracewire.adapters import error_info
from tracewire.model import attributes as A
from tracewire.model.genai import field as get
from tracewire.model.genai import (
    message,
    openai_tool_calls,
    openai_tool_definitions,
    ttft_ms,
    usage_attributes,
)

EMBEDDING_CALLS = frozenset({"embedding", "aembedding"})
# Request parameters worth recording; everything else in optional_params (extra_headers,
# api keys of some providers, clients) stays out.
_PARAMS = (
    "temperature", "max_tokens", "max_completion_tokens", "top_p", "stop", "n", "seed", "presence_penalty",
    "frequency_penalty", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort",
    "stream", "dimensions", "encoding_format", "logprobs", "top_logprobs",
)
_OTEL_PARAMS = {
    "temperature": A.REQUEST_TEMPERATURE, "max_tokens": A.REQUEST_MAX_TOKENS,
    "max_completion_tokens": A.REQUEST_MAX_TOKENS, "top_p": A.REQUEST_TOP_P, "stop": A.REQUEST_STOP,
}


def to_ns(value: Any) -> int | None:
    """LiteLLM's times: datetimes (hooks' start/end) or epoch floats (standard_logging_object)."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1e9)
    if isinstance(value, (int, float)) and value > 0:
        return int(value * 1e9)
    return None


def kind_of(call_type: Any) -> str:
    return "embedding" if call_type in EMBEDDING_CALLS else "llm"


def request_attributes(
    model: str | None, provider: str | None, params: Mapping[str, Any] | None, call_type: Any,
) -> dict[str, Any]:
    attrs: dict[str, Any] = {A.OPERATION_NAME: "embeddings" if call_type in EMBEDDING_CALLS else "chat"}
    if model:
        attrs[A.REQUEST_MODEL] = model
    if provider:
        attrs[A.PROVIDER_NAME] = provider
        attrs[A.SYSTEM] = provider
    if params:
        picked = {k: params[k] for k in _PARAMS if params.get(k) is not None}
        for k, key in _OTEL_PARAMS.items():
            if k in picked:
                attrs[key] = picked[k]
        if picked.get("stream"):
            attrs[A.STREAMING] = True
        if picked:
            attrs[A.INVOCATION_PARAMS] = picked
        tools = params.get("tools")
        if tools:
            attrs[A.TOOL_DEFINITIONS] = openai_tool_definitions(tools)
    return attrs


def input_messages(messages: Any) -> list[dict[str, Any]] | Any:
    """OpenAI-format messages in the shared shape; anything else as given (the core snapshots it)."""
    if isinstance(messages, str):
        return [message("user", messages)]
    if not isinstance(messages, (list, tuple)):
        return messages
    out = []
    for m in messages:
        if not isinstance(m, Mapping):
            out.append(m)
            continue
        calls = openai_tool_calls(m.get("tool_calls"))
        out.append(message(str(m.get("role")), m.get("content"), tool_calls=calls or None,
                           tool_call_id=m.get("tool_call_id"), name=m.get("name")))
    return out


def output_message(msg: Any) -> dict[str, Any]:
    calls = openai_tool_calls(get(msg, "tool_calls"))
    return message(str(get(msg, "role") or "assistant"), get(msg, "content"), tool_calls=calls or None)


def success(slo: Mapping[str, Any] | None, response: Any, start_ns: int | None, capture: bool) -> tuple[dict[str, Any], Any, dict[str, Any] | None, int | None]:
    """(attributes, output, metadata, end_ns) of a successful call."""
    slo = slo or {}
    attrs: dict[str, Any] = {}
    if response is None:
        response = slo.get("response")
    usage = get(response, "usage")
    details_in = get(usage, "prompt_tokens_details")
    details_out = get(usage, "completion_tokens_details")
    cost = slo.get("response_cost")
    model = get(response, "model") or slo.get("model")
    attrs.update(usage_attributes(
        _int(slo.get("prompt_tokens"), get(usage, "prompt_tokens")),
        _int(slo.get("completion_tokens"), get(usage, "completion_tokens")),
        _int(slo.get("total_tokens"), get(usage, "total_tokens")),
        cache_read_tokens=get(details_in, "cached_tokens"),
        reasoning_tokens=get(details_out, "reasoning_tokens"),
        model=model, cost=cost if isinstance(cost, (int, float)) and cost > 0 else None,
    ))
    if model:
        attrs[A.RESPONSE_MODEL] = model
    rid = get(response, "id") or slo.get("id")
    if rid:
        attrs[A.RESPONSE_ID] = rid
    if slo.get("custom_llm_provider"):
        attrs[A.PROVIDER_NAME] = slo["custom_llm_provider"]
    attrs.update(_timing(slo, start_ns))
    output: Any = None
    data = get(response, "data")
    choices = get(response, "choices")
    if choices:
        attrs[A.RESPONSE_FINISH_REASONS] = [get(c, "finish_reason") for c in choices]
        if capture:
            msgs = [output_message(get(c, "message") or get(c, "delta")) for c in choices]
            output = msgs[0] if len(msgs) == 1 else msgs
    elif isinstance(data, list):  # embeddings: shape, not the vectors
        attrs[A.EMBEDDING_COUNT] = len(data)
        first = get(data[0], "embedding") if data else None
        if isinstance(first, list):
            attrs[A.EMBEDDINGS_DIMENSION] = len(first)
    return attrs, output, _metadata(slo), to_ns(slo.get("endTime"))


def failure(slo: Mapping[str, Any] | None, exc: BaseException | None, start_ns: int | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None, int | None]:
    """(attributes, error, metadata, end_ns) of a failed call."""
    slo = slo or {}
    info = slo.get("error_information") or {}
    if isinstance(exc, BaseException):
        error = error_info(exc)
    else:
        error = {"type": info.get("error_class") or "Error", "message": slo.get("error_str") or info.get("error_message") or "",
                 "stacktrace": info.get("traceback") or None}
    attrs: dict[str, Any] = {}
    code = info.get("error_code")
    if code:
        error["code"] = code
        attrs[A.ERROR_CODE] = code
    if info.get("error_class"):
        error.setdefault("class", info["error_class"])
    if slo.get("custom_llm_provider"):
        attrs[A.PROVIDER_NAME] = slo["custom_llm_provider"]
    attrs.update(_timing(slo, start_ns, first_token=False))
    return attrs, error, _metadata(slo), to_ns(slo.get("endTime"))


def _timing(slo: Mapping[str, Any], start_ns: int | None, first_token: bool = True) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    begin = to_ns(slo.get("startTime")) or start_ns
    end = to_ns(slo.get("endTime"))
    if begin and end:
        attrs[A.LATENCY_MS] = round((end - begin) / 1e6, 3)
    first = to_ns(slo.get("completionStartTime"))
    if first_token and slo.get("stream") and begin and first:
        attrs.update(ttft_ms(begin, first))
    return attrs


def _metadata(slo: Mapping[str, Any]) -> dict[str, Any] | None:
    meta: dict[str, Any] = {}
    if slo.get("trace_id"):
        meta["litellm.trace_id"] = slo["trace_id"]
    if slo.get("session_id"):
        meta["litellm.session_id"] = slo["session_id"]
    if slo.get("request_tags"):
        meta["litellm.request_tags"] = list(slo["request_tags"])
    if slo.get("litellm_call_id"):
        meta["litellm.call_id"] = slo["litellm_call_id"]
    return meta or None


def _int(*values: Any) -> int | None:
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return int(v)
    return None
