"""LangChain objects -> tracewire's content and attributes: pure functions, no state.

Two layers. The converters (`content`, `snapshot`, `chat_message`, `llm_result`, ...) translate
LangChain objects into tracewire's small data shapes without deep copies: `snapshot` serializes
chain content at once (a C pass); the core makes what the others return JSON-safe, scrubbed and
size-capped on its worker thread. On top of them, what a run records, worked out on the client's
worker from what its hooks held (containers copied, LangChain's objects kept): a `describe_*`
function turns a start hook's arguments into the span's (kind, name, attributes, input, model);
an `end_*` function turns an end hook's into (output, attributes, late input), its first argument
after the model being what the run returned (counted against the queue's byte limit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
from langchain_core.prompt_values import PromptValue

from tracewire.adapters import UNSET, Snapshot, loads, serialize_with
from tracewire.model import attributes as A
from tracewire.model.genai import message, tool_call, ttft_ms, usage_attributes

_ROLES = {"human": "user", "HumanMessageChunk": "user", "system": "system", "SystemMessageChunk": "system",
          "function": "function", "developer": "developer"}
_PLAIN = frozenset({str, int, float, bool, type(None)})
_MAX_DEPTH = 8
# Message ids LangChain makes up itself (`lc_run--<run id>-0`): not the provider's response id.
_LOCAL_ID_PREFIXES = ("lc_run-", "run-")
_SCORE_KEYS = ("score", "relevance_score", "similarity_score", "_score", "distance")


def chat_message(m: BaseMessage, _depth: int = 0) -> dict[str, Any]:
    """{role, content, tool_calls?, tool_call_id?, name?} — the shared genai message shape.
    Attributes are read by message type: a missing attribute on a pydantic message costs an
    exception, many times the price of the whole conversion. (`_depth`: a converter's signature,
    so that `content` calls it with no lambda between.)"""
    t = m.type
    if t == "ai" or t == "AIMessageChunk":
        out = message("assistant", m.content, name=m.name)
        calls = m.tool_calls  # type: ignore[attr-defined]
        if calls:
            out["tool_calls"] = [tool_call(c.get("id"), c.get("name"), c.get("args")) for c in calls]
        return out
    if t == "tool":
        return message("tool", m.content, tool_call_id=m.tool_call_id, name=m.name)  # type: ignore[attr-defined]
    if t == "chat":
        return message(m.role, m.content, name=m.name)  # type: ignore[attr-defined]
    return message(_ROLES.get(t, t), m.content, name=m.name)


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
    through as they are (the core snapshots them). Leaves are checked inline and converters are
    looked up by exact type: this runs for every chain start and end."""
    t = type(value)
    if t in _PLAIN or depth > _MAX_DEPTH:
        return value
    depth += 1
    if t is dict:
        return {k: v if type(v) in _PLAIN else content(v, depth) for k, v in value.items()}
    if t is list or t is tuple:
        return [v if type(v) in _PLAIN else content(v, depth) for v in value]
    convert = _converters.get(t, _UNKNOWN)
    if convert is _UNKNOWN:
        convert = _converter(t)
    return value if convert is None else convert(value, depth)


_UNKNOWN: Any = object()
_converters: dict[type, Any] = {}


def snapshot(value: Any) -> Any:
    """`content(value)`, already serialized: orjson walks the plain dicts and lists in C and calls
    back only for the LangChain objects it meets. A value holding anything the converters do not
    know (a user's own class) takes `content` and the core's general path instead."""
    if type(value) is Snapshot:  # a long plain list `hold` serialized already
        return value
    if serialize_with is not None and type(value) not in _PLAIN:
        try:
            return serialize_with(value, _default)
        except Exception:  # noqa: BLE001 - not convertible here: the general path decides
            pass
    return content(value)


def _default(obj: Any) -> Any:
    convert = _converters.get(type(obj), _UNKNOWN)  # `_converter`, inline: orjson calls this per message
    if convert is _UNKNOWN:
        convert = _converter(type(obj))
    if convert is None:
        raise TypeError(type(obj).__name__)
    return convert(obj, 0)


def _converter(t: type) -> Any:
    convert = _converters.get(t, _UNKNOWN)
    if convert is _UNKNOWN:
        convert = _converters[t] = _converter_for(t)
    return convert


def _converter_for(t: type) -> Any:
    """How to convert values of type `t` (None: pass through). Decided once per type."""
    if t is Snapshot:  # held plain data inside held content
        return lambda v, depth: loads(v.text)
    if issubclass(t, BaseMessage):
        return chat_message
    if issubclass(t, Document):
        return lambda v, depth: document(v)
    if issubclass(t, PromptValue):
        return lambda v, depth: [chat_message(m) for m in v.to_messages()]
    if issubclass(t, dict):
        return lambda v, depth: {k: content(x, depth) for k, x in v.items()}
    if dataclasses.is_dataclass(t):  # LangGraph's Command, Send
        names = tuple(f.name for f in dataclasses.fields(t))
        return lambda v, depth: {n: content(x, depth) for n in names if (x := getattr(v, n, None)) is not None}
    return None


def tool_output(output: Any) -> Any:
    """A tool's result: a ToolMessage's content (plus its artifact), else the value itself."""
    if isinstance(output, BaseMessage):
        artifact = output.artifact if isinstance(output, ToolMessage) else None
        if artifact is None:
            return snapshot(output.content)
        return {"content": content(output.content), "artifact": content(artifact)}
    return snapshot(output)


def llm_result(
    response: LLMResult, request_model: str | None, capture: bool
) -> tuple[Any, dict[str, Any]]:
    """(output, attributes) of a finished LLM call: response model, finish reasons, usage
    (`usage_metadata` first, `llm_output` second), cost, and the output message(s)."""
    attrs: dict[str, Any] = {}
    gens = response.generations[0] if response.generations else []
    gen = gens[0] if gens else None
    msg = gen.message if isinstance(gen, ChatGeneration) else None
    rm: Mapping[str, Any] = (msg.response_metadata or {}) if msg is not None else {}
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

    usage = msg.usage_metadata if isinstance(msg, AIMessage) else None
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
    outs = [chat_message(g.message) if isinstance(g, ChatGeneration) else message("assistant", g.text) for g in gens]
    return (outs[0] if len(outs) == 1 else outs), attrs


def first_chunk_has_content(token: Any, chunk: Any) -> bool:
    """A streamed chunk that carries output (text or a tool-call fragment), not just a role header."""
    if token:
        return True
    if not isinstance(chunk, ChatGenerationChunk):
        return False
    msg = chunk.message
    return bool(msg.content or (msg.tool_call_chunks if isinstance(msg, AIMessageChunk) else None))


# ------------------------------------------------------------------ what a run records
# Tags LangChain/LangGraph add for their own bookkeeping; the user's tags are kept.
_INTERNAL_TAGS = ("seq:step:", "graph:step:", "map:key:", "langsmith:", "branch:")
# Metadata keys LangChain/LangGraph add to every run; recorded as attributes where they matter.
_INTERNAL_KEYS = ("langgraph_", "ls_", "lc_", "checkpoint_", "__")
# Where LangGraph's root run says it is a graph (`add_metadata({"ls_integration": ...})`).
_GRAPH_INTEGRATIONS = frozenset({"langgraph", "langchain_create_agent"})
UNAVAILABLE = "<content unavailable: it changed while it was being recorded>"

Described = tuple[str, str, "dict[str, Any] | None", Any, "str | None"]
Ended = tuple[Any, "dict[str, Any] | None", Any]
# what a run whose `describe_*` failed records: a span all the same
UNDESCRIBED: Described = ("chain", "run", None, UNAVAILABLE, None)


def converted(held: Any, convert: Callable[[Any], Any] = snapshot) -> Any:
    """Held content as the core records it (serialized when it can be, in one C pass)."""
    if held is UNSET or held is None:
        return held
    try:
        return convert(held)
    except Exception:  # noqa: BLE001 - e.g. a user object mutated by its own thread meanwhile
        return UNAVAILABLE


# ------------------------------------------------------------------ starts
def describe_chain(
    metadata: Mapping[str, Any] | None, inputs: Any, serialized: Mapping[str, Any] | None, name: str | None,
    root: bool,
) -> Described:
    name = name or _serialized_name(serialized) or "chain"
    kind = "chain"
    attrs = None
    if metadata:
        node = metadata.get("langgraph_node")
        if node is not None and node == name:
            attrs = {A.NODE: node, A.STEP: metadata.get("langgraph_step")}
        if root and metadata.get("ls_integration") in _GRAPH_INTEGRATIONS:
            kind = "agent"
    if kind == "chain" and root and name == "LangGraph":
        kind = "agent"
    if kind == "agent":
        attrs = {A.AGENT_NAME: name}
    return kind, name, attrs, converted(inputs), None


def describe_chat_model(
    metadata: Mapping[str, Any] | None, messages: Any, serialized: Mapping[str, Any] | None, name: str | None,
    params: Mapping[str, Any] | None,
) -> Described:
    attrs, model = _request_attributes("chat", metadata, params)
    return "llm", name or _serialized_name(serialized) or "chat_model", attrs, converted(messages), model


def describe_llm(
    metadata: Mapping[str, Any] | None, prompts: Any, serialized: Mapping[str, Any] | None, name: str | None,
    params: Mapping[str, Any] | None,
) -> Described:
    attrs, model = _request_attributes("text_completion", metadata, params)
    inp = UNSET if prompts is UNSET else [message("user", p) for p in prompts]
    return "llm", name or _serialized_name(serialized) or "llm", attrs, inp, model


def describe_tool(
    metadata: Mapping[str, Any] | None, inputs: Any, serialized: Mapping[str, Any] | None, name: str | None,
    call_id: str | None,
) -> Described:
    name = name or _serialized_name(serialized) or "tool"
    attrs: dict[str, Any] = {A.TOOL_NAME: name}
    if call_id:
        attrs[A.TOOL_CALL_ID] = call_id
    if serialized and serialized.get("description"):
        attrs[A.TOOL_DESCRIPTION] = serialized["description"]
    return "tool", name, attrs, converted(inputs), None


def describe_retriever(
    metadata: Mapping[str, Any] | None, query: Any, serialized: Mapping[str, Any] | None, name: str | None,
    _extra: None = None,  # the starts' common arity (see the handler's `_start`)
) -> Described:
    inp = UNSET if query is UNSET else {"query": query}
    return "retriever", name or _serialized_name(serialized) or "retriever", None, inp, None


# ------------------------------------------------------------------ ends
# Every `end_*` takes (model, output, inputs, capture, start_ns, first_token_ns): the request's
# model, what the run returned, what a streamed chain really consumed, whether content is
# captured, when the run started and when a streamed LLM call's first content came.
def end_chain(model: str | None, outputs: Any, inputs: Any, *_: Any) -> Ended:
    """`inputs`: what a streamed chain really consumed (it starts with a `{'input': ''}` placeholder)."""
    return converted(outputs), None, converted(inputs)


def end_llm(
    model: str | None, response: LLMResult, inputs: Any, capture: bool, start_ns: int, first_token_ns: int | None,
) -> Ended:
    output, attrs = llm_result(response, model, capture)
    if first_token_ns is not None:
        attrs.update(ttft_ms(start_ns, first_token_ns))
    return (output if capture else UNSET), attrs, UNSET


def end_llm_failed(
    model: str | None, partial: Any, inputs: Any, capture: bool, start_ns: int, first_token_ns: int | None,
) -> Ended:
    """A failed call: what streamed before the failure (`partial`, when captured), and its TTFT."""
    output: Any = UNSET
    if capture and isinstance(partial, LLMResult) and partial.generations and partial.generations[0]:
        output, _ = llm_result(partial, None, True)
    attrs = ttft_ms(start_ns, first_token_ns) if first_token_ns is not None else None
    return output, attrs, UNSET


def end_tool(model: str | None, output: Any, *_: Any) -> Ended:
    return converted(output, tool_output), None, UNSET


def end_retriever(model: str | None, documents: Sequence[Any], inputs: Any, capture: bool, *_: Any) -> Ended:
    out = [document(d) if isinstance(d, Document) else content(d) for d in documents] if capture else UNSET
    return out, {A.DOCUMENT_COUNT: len(documents)}, UNSET


# ------------------------------------------------------------------ helpers
def own_tags(tags: Sequence[str], inherited: Sequence[str] | None) -> tuple[str, ...] | None:
    """A child run's tags minus LangChain's bookkeeping and what its parent run already had."""
    own = [t for t in tags if not t.startswith(_INTERNAL_TAGS) and not (inherited and t in inherited)]
    return tuple(own) if own else None


def own_metadata(metadata: Mapping[str, Any], inherited: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """User metadata of a run: LangChain/LangGraph bookkeeping keys dropped and, for a child run,
    the keys it merely inherited from its parent run (LangChain passes them down unchanged)."""
    out: dict[str, Any] | None = None
    for k in (metadata.keys() - inherited.keys()) if inherited else metadata:
        if not k.startswith(_INTERNAL_KEYS):
            if out is None:
                out = {}
            out[k] = metadata[k]
    return out


def _serialized_name(serialized: Mapping[str, Any] | None) -> str | None:
    if not serialized:
        return None
    name = serialized.get("name")
    if name:
        return str(name)
    ids = serialized.get("id")
    return str(ids[-1]) if ids else None


def _request_attributes(
    operation: str, metadata: Mapping[str, Any] | None, params: Mapping[str, Any] | None
) -> tuple[dict[str, Any], str | None]:
    """Request-side LLM attributes from LangChain's `ls_*` metadata and invocation params."""
    md = metadata or {}
    p = params or {}
    attrs: dict[str, Any] = {A.OPERATION_NAME: operation}
    provider = md.get("ls_provider")
    if provider:
        attrs[A.PROVIDER_NAME] = provider
    model = md.get("ls_model_name") or p.get("model") or p.get("model_name")
    if model:
        attrs[A.REQUEST_MODEL] = model
    temperature = md.get("ls_temperature", p.get("temperature"))
    if temperature is not None:
        attrs[A.REQUEST_TEMPERATURE] = temperature
    max_tokens = md.get("ls_max_tokens") or p.get("max_tokens") or p.get("max_completion_tokens")
    if max_tokens is not None:
        attrs[A.REQUEST_MAX_TOKENS] = max_tokens
    if p.get("top_p") is not None:
        attrs[A.REQUEST_TOP_P] = p["top_p"]
    stop = md.get("ls_stop") or p.get("stop")
    if stop:
        attrs[A.REQUEST_STOP] = stop
    if p:
        tools = p.get("tools")
        if tools:
            attrs[A.TOOL_DEFINITIONS] = tools
            p = {k: v for k, v in p.items() if k != "tools"}
        attrs[A.INVOCATION_PARAMS] = p
    return attrs, model
