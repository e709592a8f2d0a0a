"""tracewire spans as OpenTelemetry spans, for the `otlp` sink: GenAI semantic-convention attributes (plus the
OpenInference keys Phoenix reads). Works on plain folded events: needs no OpenTelemetry package.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from tracewire.model import attributes as A
from tracewire.model import codec as _json
from tracewire.model.context import SpanContext

# OpenTelemetry keys the core does not record itself (only the exporter writes them)
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
RETRIEVAL_QUERY_TEXT = "gen_ai.retrieval.query.text"
ERROR_TYPE = "error.type"
USER_ID = "user.id"
# tracewire envelope fields without an OpenTelemetry key
TW_KIND = "tracewire.kind"
TW_FRAMEWORK = "tracewire.framework"
TW_TAGS = "tracewire.tags"
TW_EVENT_TYPE = "tracewire.event.type"
# OpenInference (Phoenix, Arize): span kind drives Phoenix's agent/LLM/tool/retriever views
OI_SPAN_KIND = "openinference.span.kind"
OI_INPUT_VALUE = "input.value"
OI_INPUT_MIME = "input.mime_type"
OI_OUTPUT_VALUE = "output.value"
OI_OUTPUT_MIME = "output.mime_type"
OI_MODEL_NAME = "llm.model_name"
OI_PROVIDER = "llm.provider"
OI_TOKENS_PROMPT = "llm.token_count.prompt"
OI_TOKENS_COMPLETION = "llm.token_count.completion"
OI_TOKENS_TOTAL = "llm.token_count.total"
OI_TOOL_NAME = "tool.name"
OI_SESSION_ID = "session.id"
OI_USER_ID = "user.id"
OI_METADATA = "metadata"
OI_TAGS = "tag.tags"

# tracewire kind -> (gen_ai.operation.name, OpenInference span kind)
_OPERATIONS: dict[str, tuple[str | None, str]] = {
    "llm": ("chat", "LLM"),
    "embedding": ("embeddings", "EMBEDDING"),
    "tool": ("execute_tool", "TOOL"),
    "agent": ("invoke_agent", "AGENT"),
    "retriever": ("retrieval", "RETRIEVER"),
    "reranker": (None, "RERANKER"),
    "chain": (None, "CHAIN"),
}
_NO_OPERATION: tuple[str | None, str] = (None, "CHAIN")
# operations whose span name is "{operation} {model}"
_MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})


CAPTURE_MESSAGE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# booleans, and the enum newer OpenTelemetry GenAI instrumentations read from the same variable
# (content in spans: SPAN_ONLY / SPAN_AND_EVENT; tracewire writes no log events, so EVENT_ONLY is off)
_CONTENT_ON = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})
_CONTENT_OFF = frozenset({"false", "0", "no", "off", "", "no_content", "event_only"})


def content_export_allowed(
    capture_content: bool, otlp_capture_content: bool | None = None, environ: Mapping[str, str] | None = None,
) -> bool:
    """Whether content goes out over OTLP. Opt-in, as the GenAI conventions say: the
    `otlp_capture_content` setting, else `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`,
    else off; never when tracewire itself does not capture content."""
    env = os.environ if environ is None else environ
    raw = env.get(CAPTURE_MESSAGE_CONTENT, "").strip()
    if raw.lower() not in _CONTENT_ON and raw.lower() not in _CONTENT_OFF:  # a bad value fails even when unused
        from tracewire.config import ConfigError

        raise ConfigError(
            f"tracewire: invalid value {raw!r} for {CAPTURE_MESSAGE_CONTENT}; expected true/false (or NO_CONTENT, "
            "SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT) (setting 'otlp_capture_content')"
        )
    if not capture_content:
        return False
    if otlp_capture_content is not None:
        return bool(otlp_capture_content)
    return raw.lower() in _CONTENT_ON


def span_name(kind: str, name: str, attrs: Mapping[str, Any]) -> str:
    """`chat {model}`, `embeddings {model}`, `execute_tool {tool}`, `invoke_agent {agent}`; else the name."""
    op = attrs.get(A.OPERATION_NAME) or _OPERATIONS.get(kind, (None, ""))[0]
    if op in _MODEL_OPERATIONS:
        model = attrs.get(A.REQUEST_MODEL) or attrs.get(A.RESPONSE_MODEL) or name
        return f"{op} {model}" if model else str(op)
    if op == "execute_tool":
        return f"execute_tool {attrs.get(A.TOOL_NAME) or name}"
    if op == "invoke_agent":
        return f"invoke_agent {attrs.get(A.AGENT_NAME) or name}"
    return name or kind


def span_attributes(
    start: Mapping[str, Any] | None, end: Mapping[str, Any] | None, *, content: bool,
) -> dict[str, Any]:
    """OpenTelemetry attributes of one folded span (start and/or end/error event; a point event
    passes itself as `end`). Values are OTLP-valid: str, bool, int, float or lists of one of them."""
    first = start or end or {}
    last = end or start or {}
    kind = str(first.get("kind") or "custom")
    given = start.get("attributes") if start else None
    later = end.get("attributes") if end else None
    op, oi_kind = _OPERATIONS.get(kind, _NO_OPERATION)
    out: dict[str, Any] = {TW_KIND: kind, OI_SPAN_KIND: oi_kind}
    if op:
        # what the span says itself wins (a key of the start's or the end's attributes)
        if not ((given and A.OPERATION_NAME in given) or (later and A.OPERATION_NAME in later)):
            out[A.OPERATION_NAME] = op
        if kind == "tool" and not ((given and A.TOOL_NAME in given) or (later and A.TOOL_NAME in later)):
            out[A.TOOL_NAME] = str(first.get("name") or "")
            out[TOOL_TYPE] = "function"
        elif kind == "agent" and not ((given and A.AGENT_NAME in given) or (later and A.AGENT_NAME in later)):
            out[A.AGENT_NAME] = str(first.get("name") or "")
    if first.get("framework"):
        out[TW_FRAMEWORK] = first["framework"]
    for attrs in (given, later):  # the end's value of a key wins, in the start's place
        if attrs:
            for key, value in attrs.items():
                v = value if type(value) in _SCALARS else otel_value(value)
                if v is not None:
                    out[key] = v
                elif attrs is later:
                    out.pop(key, None)
    if A.PROVIDER_NAME not in out and isinstance(out.get(A.SYSTEM), str):
        out[A.PROVIDER_NAME] = out[A.SYSTEM]
    session = last.get("session_id") or first.get("session_id")
    if session:
        out[A.CONVERSATION_ID] = out[OI_SESSION_ID] = str(session)
    user = last.get("user_id") or first.get("user_id")
    if user:
        out[USER_ID] = str(user)
    if first.get("tags") or last.get("tags"):
        tags = [str(t) for t in dict.fromkeys([*(first.get("tags") or []), *(last.get("tags") or [])])]
        out[TW_TAGS] = out[OI_TAGS] = tags
    if first.get("metadata") or last.get("metadata"):
        out[OI_METADATA] = _json_text({**(first.get("metadata") or {}), **(last.get("metadata") or {})})
    _openinference_llm(out)
    err = (end or {}).get("error")
    if err:
        out[ERROR_TYPE] = str(err.get("type") or "Error")
    if content:
        _content(out, kind, op, _input_of(start, end), (end or {}).get("output"))
    return out


def _input_of(start: Mapping[str, Any] | None, end: Mapping[str, Any] | None) -> Any:
    """An input the end carries (known only then, e.g. a streamed chain's) wins over the start's."""
    if end is not None and end is not start and "input" in end:
        return end["input"]
    return (start or {}).get("input", (end or {}).get("input"))


def event_attributes(point: Mapping[str, Any], *, content: bool) -> dict[str, Any]:
    """Attributes of a point event (`user.input`, `agent.response`, …) kept as a span event."""
    out: dict[str, Any] = {TW_EVENT_TYPE: str(point.get("type") or "")}
    if point.get("name") and point.get("name") != point.get("type"):
        out["tracewire.name"] = str(point["name"])
    for key, value in (point.get("attributes") or {}).items():
        v = value if type(value) in _SCALARS else otel_value(value)
        if v is not None:
            out[key] = v
    if point.get("error"):
        out[ERROR_TYPE] = str(point["error"].get("type") or "Error")
    if content:
        input, output = _unraw(point.get("input"), False), _unraw(point.get("output"), False)
        if input is not None:
            out[OI_INPUT_VALUE] = _text_and_mime(input)[0]
        if output is not None:
            out[OI_OUTPUT_VALUE] = _text_and_mime(output)[0]
    return out


_TOKEN_KEYS = ((A.USAGE_INPUT_TOKENS, OI_TOKENS_PROMPT), (A.USAGE_OUTPUT_TOKENS, OI_TOKENS_COMPLETION),
               (A.USAGE_TOTAL_TOKENS, OI_TOKENS_TOTAL))


# the keys _openinference_llm copies from: most spans (chains, agents) have none of them
_OI_SOURCES = frozenset({A.RESPONSE_MODEL, A.REQUEST_MODEL, A.PROVIDER_NAME, A.TOOL_NAME, *(k for k, _ in _TOKEN_KEYS)})


def _openinference_llm(out: dict[str, Any]) -> None:
    if _OI_SOURCES.isdisjoint(out):
        return
    get = out.get
    model = get(A.RESPONSE_MODEL) or get(A.REQUEST_MODEL)
    if model:
        out[OI_MODEL_NAME] = model
    provider = get(A.PROVIDER_NAME)
    if provider:
        out[OI_PROVIDER] = provider
    for gen_ai, oi in _TOKEN_KEYS:
        tokens = get(gen_ai)
        if isinstance(tokens, int):
            out[oi] = tokens
    tool = get(A.TOOL_NAME)
    if tool and get(OI_SPAN_KIND) == "TOOL":
        out[OI_TOOL_NAME] = tool


def _content(out: dict[str, Any], kind: str, op: str | None, input: Any, output: Any) -> None:
    raw_in, raw_out = _unraw(input, False), _unraw(output, False)
    if raw_in is not None:  # the pipeline's JSON text as it is: not parsed and written again
        out[OI_INPUT_VALUE], out[OI_INPUT_MIME] = _text_and_mime(raw_in)
    if raw_out is not None:
        out[OI_OUTPUT_VALUE], out[OI_OUTPUT_MIME] = _text_and_mime(raw_out)
    if kind == "llm":  # the messages' structure is needed
        input, output = _unraw(raw_in, True), _unraw(raw_out, True)
        system, messages = input_messages(input)
        if system:
            out[SYSTEM_INSTRUCTIONS] = _json_text(system)
        if messages:
            out[INPUT_MESSAGES] = _json_text(messages)
        produced = output_messages(output, out.get(A.RESPONSE_FINISH_REASONS))
        if produced:
            out[OUTPUT_MESSAGES] = _json_text(produced)
    elif kind == "tool":
        if raw_in is not None:
            out[TOOL_CALL_ARGUMENTS] = out[OI_INPUT_VALUE]
        if raw_out is not None:
            out[TOOL_CALL_RESULT] = out[OI_OUTPUT_VALUE]
    elif kind == "retriever" and isinstance(raw_in, str):
        out[RETRIEVAL_QUERY_TEXT] = raw_in


# ---------------------------------------------------------------- messages (GenAI conventions)
def input_messages(value: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instruction parts, chat messages) in the conventions' parts shape, from a
    tracewire LLM input: a message list, {"messages": [...]}, a prompt string or prompt list."""
    msgs = _message_list(value)
    system: list[dict[str, Any]] = []
    chat: list[dict[str, Any]] = []
    for m in msgs:
        converted = _message(m)
        if converted["role"] == "system":
            system.extend(converted["parts"])
        else:
            chat.append(converted)
    return system, chat


def output_messages(value: Any, finish_reasons: Any = None) -> list[dict[str, Any]]:
    """Output messages: each with role, parts and finish_reason."""
    msgs = _message_list(value, default_role="assistant")
    reasons = finish_reasons if isinstance(finish_reasons, list) else []
    out = []
    for i, m in enumerate(msgs):
        converted = _message(m, default_role="assistant")
        converted["finish_reason"] = str(reasons[i] if i < len(reasons) else (reasons[-1] if reasons else "stop"))
        out.append(converted)
    return out


def _message_list(value: Any, default_role: str = "user") -> list[Any]:
    if value is None:
        return []
    if type(value) is list:  # decoded JSON: lists and dicts, told apart without the ABC's check
        return _flatten(value)
    if _is_mapping(value):
        for key in ("messages", "choices", "generations"):
            if isinstance(value.get(key), list):
                return _flatten(value[key])
        if "role" in value or "content" in value:
            return [value]
        return [{"role": default_role, "content": value}]
    if isinstance(value, list):
        return _flatten(value)
    return [{"role": default_role, "content": value}]


def _flatten(items: list[Any]) -> list[Any]:
    # LangChain batches arrive as a list of message lists
    out: list[Any] = []
    for item in items:
        if isinstance(item, list):
            out.extend(item)
        elif _is_mapping(item) and _is_mapping(item.get("message")):  # choices[i].message
            out.append(item["message"])
        else:
            out.append(item)
    return out


_ROLES = {"human": "user", "ai": "assistant", "function": "tool"}  # LangChain's message types


def _is_mapping(value: Any) -> bool:
    """A dict, or another Mapping: the ABC's check (a Python-level call) only for what is neither
    a dict nor None (decoded JSON is made of dicts, and a missing key gives None)."""
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def _message(m: Any, default_role: str = "user") -> dict[str, Any]:
    if not _is_mapping(m):
        return {"role": default_role, "parts": [{"type": "text", "content": m if isinstance(m, str) else _json_text(m)}]}
    role = str(m.get("role") or m.get("type") or default_role)
    role = _ROLES.get(role, role)
    parts: list[dict[str, Any]] = []
    content = m.get("content")
    if role == "tool" and (m.get("tool_call_id") or m.get("id")):
        parts.append({"type": "tool_call_response", "id": m.get("tool_call_id") or m.get("id"), "response": content})
    elif isinstance(content, list):
        for piece in content:
            if _is_mapping(piece) and piece.get("type") == "text":
                parts.append({"type": "text", "content": piece.get("text", piece.get("content"))})
            elif isinstance(piece, str):
                parts.append({"type": "text", "content": piece})
            elif piece is not None:
                parts.append({"type": str(piece.get("type", "data")) if isinstance(piece, Mapping) else "data",
                              "content": piece})
    elif content not in (None, ""):
        parts.append({"type": "text", "content": content if isinstance(content, str) else _json_text(content)})
    for call in m.get("tool_calls") or []:
        if _is_mapping(call):
            fn: Mapping[str, Any] = call["function"] if _is_mapping(call.get("function")) else call
            parts.append({"type": "tool_call", "id": call.get("id"), "name": fn.get("name"), "arguments": fn.get("arguments")})
    msg: dict[str, Any] = {"role": role, "parts": parts}
    if m.get("name"):
        msg["name"] = m["name"]
    return msg


# ---------------------------------------------------------------- values
_SCALARS = frozenset({str, bool, int, float})  # exact types: most attribute values, taken as they are


def otel_value(value: Any) -> Any:
    """An OTLP attribute value: scalars as they are, homogeneous scalar lists as lists, the
    rest as JSON text; None (and empty containers) become None, meaning 'leave out'."""
    if value is None:
        return None
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        types = {type(v) for v in value}
        if len(types) == 1 and types <= {str, bool, int, float}:
            return list(value)
        return _json_text(list(value))
    if _is_mapping(value) and not value:
        return None
    return _json_text(value)


_dumps = _json.dumps_strict


def _json_text(value: Any) -> str:
    try:
        return _dumps(value)
    except Exception:  # noqa: BLE001 - content is JSON-safe after the core's processors; be sure anyway
        return str(value)


def _text_and_mime(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        return value, "text/plain"
    if type(value) is _json.RawJSON:  # what the pipeline serialized: its text is the JSON text
        return value.text, "application/json"
    return _json_text(value), "application/json"


def _unraw(value: Any, need_value: bool) -> Any:
    """Content the pipeline hands over as its JSON text (`RawJSON`), kept as text unless it is a
    string or null (a value the mapping treats apart) or its structure is needed (`need_value`)."""
    if type(value) is not _json.RawJSON:
        return value
    text = value.text
    return _json.loads(text) if need_value or text[0] == '"' or text == "null" else value


def active_span_parent(is_sampled: Callable[[str], bool]) -> Callable[[], SpanContext | None]:
    """A root parent provider: the active, valid OpenTelemetry span (if any) as a tracewire
    parent, so a tracewire root span becomes its child in the same trace. `is_sampled`: the
    client's sampling, which still decides for its own records."""
    from opentelemetry import trace as otel_trace

    get_current_span = otel_trace.get_current_span

    def provider() -> SpanContext | None:
        ctx = get_current_span().get_span_context()
        if not ctx.is_valid:
            return None
        trace_id = f"{ctx.trace_id:032x}"
        return SpanContext(trace_id, f"{ctx.span_id:016x}", is_sampled(trace_id))

    return provider


__all__ = [
    "span_name", "span_attributes", "event_attributes", "content_export_allowed", "active_span_parent",
]


# -- scores -------------------------------------------------------------------------------------------
# A score is the GenAI conventions' `gen_ai.evaluation.result` event: an event of the span it judges
# while that span is still open in the sink, else a zero-length span of its own in the scored trace,
# parented to the scored span (docs/scores.md, "OpenTelemetry").
EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"
TW_SCORE_ID = "tracewire.score.id"
TW_SCORE_SOURCE = "tracewire.score.source"


def score_attributes(score: Mapping[str, Any]) -> dict[str, Any]:
    """A score record's `gen_ai.evaluation.result` attributes (a bool value as 1.0 / 0.0: the
    convention's value is a double)."""
    out: dict[str, Any] = {EVALUATION_NAME: str(score.get("name") or ""), TW_SCORE_ID: str(score.get("id") or ""),
                           TW_SCORE_SOURCE: str(score.get("source") or "code")}
    value = score.get("value")
    if isinstance(value, (bool, int, float)):
        out[EVALUATION_SCORE_VALUE] = float(value)
    for key, field in ((EVALUATION_SCORE_LABEL, "label"), (EVALUATION_EXPLANATION, "comment"),
                       (OI_SESSION_ID, "session_id")):
        if isinstance(score.get(field), str):
            out[key] = score[field]
    if isinstance(score.get("metadata"), Mapping) and score["metadata"]:
        out[OI_METADATA] = _json_text(score["metadata"])
    return out
