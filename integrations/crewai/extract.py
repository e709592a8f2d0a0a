"""CrewAI event payloads -> tracewire names, inputs, outputs and attributes (small dicts only)."""

from __future__ import annotations

import ast
import datetime
import inspect
from collections.abc import Mapping
from typing import Any

from tracewire.adapters import UNSET
from tracewire.model import attributes as A
from tracewire.model.genai import message, openai_tool_calls, openai_tool_definitions, usage_attributes

_PARAMS = ("temperature", "top_p", "max_tokens", "seed", "stop_sequences", "frequency_penalty", "presence_penalty", "n", "stream")
_OTEL = {"temperature": A.REQUEST_TEMPERATURE, "top_p": A.REQUEST_TOP_P, "max_tokens": A.REQUEST_MAX_TOKENS,
         "stop_sequences": A.REQUEST_STOP}


def _cut_depth() -> int | None:
    """CrewAI passes LLM messages and tools through `to_serializable()` before emitting, whose
    default `max_depth=5` replaces every value at depth 5 with its repr: a tool call's
    `function.name` arrives as "'add'", a parameter schema as "{'type': 'integer'}"."""
    try:
        from crewai.utilities.serialization import to_serializable

        depth = inspect.signature(to_serializable).parameters["max_depth"].default
    except Exception:  # noqa: BLE001 - another CrewAI: assume nothing is cut
        return None
    return depth if isinstance(depth, int) and depth > 0 else None


_CUT_DEPTH = _cut_depth()
# ToolFailure.reason -> the error type the ReAct path's own rejection events get
_FAILURE_TYPES = {"unknown_tool": "crewai.ToolSelectionError", "invalid_input": "crewai.ToolValidateInputError"}


def ts_ns(event: Any) -> int | None:
    t = getattr(event, "timestamp", None)
    return int(t.timestamp() * 1e9) if isinstance(t, datetime.datetime) else None


def split_model(model: Any) -> tuple[str, str | None]:
    """`openai/gpt-4o-mini` (LiteLLM route) and `gpt-4o-mini` (native) name the same model."""
    text = str(model or "llm")
    provider, sep, rest = text.partition("/")
    return (rest, provider) if sep and rest else (text, None)


def error_dict(event: Any, default_type: str) -> dict[str, Any]:
    err = getattr(event, "error", None)
    etype = getattr(event, "error_type", None)
    if isinstance(err, BaseException):
        etype, err = type(err), str(err)
    name = f"{etype.__module__}.{etype.__qualname__}".removeprefix("builtins.") if isinstance(etype, type) else default_type
    return {"type": name, "message": str(err) if err is not None else "", "stacktrace": None}


def failure_error(failure: Any) -> dict[str, Any]:
    """A CrewAI `ToolFailure` (a tool call that did not do the work) as an error: type from its reason."""
    reason = getattr(failure, "reason", None)
    reason = str(getattr(reason, "value", reason)) if reason is not None else None
    error: dict[str, Any] = {"type": _FAILURE_TYPES.get(reason or "", "crewai.ToolFailure"),
                             "message": str(getattr(failure, "message", failure)), "stacktrace": None}
    if reason:
        error["reason"] = reason
    code = getattr(failure, "code", None)
    if code:
        error["code"] = str(code)
    return error


def uncut(value: Any, depth: int = 0) -> Any:
    """Undo CrewAI's depth cut: read back the values at the cut depth that are reprs of literals
    (the repr check keeps a genuine string such as JSON arguments as it is)."""
    if _CUT_DEPTH is None:
        return value
    if depth == _CUT_DEPTH:
        if isinstance(value, str):
            try:
                literal = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return value
            return literal if repr(literal) == value else value
        return value
    if isinstance(value, Mapping):
        return {k: uncut(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [uncut(v, depth + 1) for v in value]
    return value


def input_messages(messages: Any) -> Any:
    """CrewAI's (OpenAI-format) messages in the shared shape; CrewAI's own keys
    (`cache_breakpoint`) dropped."""
    if isinstance(messages, str):
        return [message("user", messages)]
    if not isinstance(messages, list):
        return messages
    out = []
    for m in uncut(messages):
        if not isinstance(m, Mapping):
            out.append(m)
            continue
        out.append(message(str(m.get("role")), m.get("content"), tool_calls=openai_tool_calls(m.get("tool_calls")),
                           tool_call_id=m.get("tool_call_id"), name=m.get("name")))
    return out


def text_of(output: Any) -> Any:
    """TaskOutput / CrewOutput -> their text; anything else as is (the core snapshots it)."""
    raw = getattr(output, "raw", None)
    return raw if isinstance(raw, str) else output


def llm_start(event: Any, capture: bool) -> tuple[str, dict[str, Any], Any]:
    """(name, attributes, input) of an LLMCallStartedEvent; the messages only when content is captured."""
    name, provider = split_model(event.model)
    attrs: dict[str, Any] = {A.OPERATION_NAME: "chat", A.REQUEST_MODEL: name}
    if provider:
        attrs[A.PROVIDER_NAME] = provider
    params = {k: v for k in _PARAMS if (v := getattr(event, k, None)) is not None}
    for k, key in _OTEL.items():
        if k in params:
            attrs[key] = params[k]
    if params:
        attrs[A.INVOCATION_PARAMS] = params
    if params.get("stream"):
        attrs[A.STREAMING] = True
    tools = getattr(event, "tools", None)
    if tools:
        attrs[A.TOOL_DEFINITIONS] = openai_tool_definitions(uncut(tools))
    return name, attrs, input_messages(event.messages) if capture else UNSET


def llm_usage(usage: Any, model: str | None) -> dict[str, Any]:
    if not isinstance(usage, Mapping):
        return {}
    pin = _first(usage, "prompt_tokens", "input_tokens")
    pout = _first(usage, "completion_tokens", "output_tokens")
    details = usage.get("prompt_tokens_details")
    cached = _first(usage, "cached_prompt_tokens", "cached_tokens") or (
        details.get("cached_tokens") if isinstance(details, Mapping) else None)
    reasoning = _first(usage, "reasoning_tokens")
    if pin is None and pout is None:
        return {}
    return usage_attributes(pin, pout, _first(usage, "total_tokens"), cache_read_tokens=cached,
                            reasoning_tokens=reasoning, model=model)


def llm_output(response: Any) -> Any:
    """The answer as a chat message: text, or the tool calls the model asked for."""
    if isinstance(response, str) or response is None:
        return message("assistant", response)
    calls = response if isinstance(response, list) else None
    if calls and all(isinstance(c, Mapping) and ("function" in c or "name" in c) for c in calls):
        return message("assistant", None, tool_calls=openai_tool_calls(calls))
    return response


def _first(mapping: Mapping[str, Any], *keys: str) -> int | None:
    for k in keys:
        v = mapping.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return int(v)
    return None
