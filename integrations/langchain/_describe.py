"""What a LangChain run records, worked out on the client's worker from what its hooks held.

A start hook holds its raw arguments (`tracewire.model.content`: containers copied, LangChain's objects
kept); a `describe_*` function turns them into the span's (kind, name, attributes, input, model).
An end hook does the same with an `end_*` function: (output, attributes, late input); its first
argument after the model is what the run returned (counted against the queue's byte limit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.outputs import LLMResult

from tracewire.engine.client import UNSET
from tracewire.integrations.langchain._convert import content, document, llm_result, snapshot, tool_output
from tracewire.model import attributes as A
from tracewire.model.genai import message, ttft_ms

# Tags LangChain/LangGraph add for their own bookkeeping; the user's tags are kept.
_INTERNAL_TAGS = ("seq:step:", "graph:step:", "map:key:", "langsmith:", "branch:")
# Metadata keys LangChain/LangGraph add to every run; recorded as attributes where they matter.
_INTERNAL_KEYS = ("langgraph_", "ls_", "lc_", "checkpoint_", "__")
# Where LangGraph's root run says it is a graph (`add_metadata({"ls_integration": ...})`).
_GRAPH_INTEGRATIONS = frozenset({"langgraph", "langchain_create_agent"})
UNAVAILABLE = "<content unavailable: it changed while it was being recorded>"

Described = tuple[str, str, "dict[str, Any] | None", Any, "str | None"]
Ended = tuple[Any, "dict[str, Any] | None", Any]


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
def end_chain(model: str | None, outputs: Any, inputs: Any) -> Ended:
    """`inputs`: what a streamed chain really consumed (it starts with a `{'input': ''}` placeholder)."""
    return converted(outputs), None, converted(inputs)


def end_llm(model: str | None, response: LLMResult, capture: bool, start_ns: int, first_token_ns: int | None) -> Ended:
    output, attrs = llm_result(response, model, capture)
    if first_token_ns is not None:
        attrs.update(ttft_ms(start_ns, first_token_ns))
    return (output if capture else UNSET), attrs, UNSET


def end_llm_failed(model: str | None, partial: Any, start_ns: int, first_token_ns: int | None) -> Ended:
    """A failed call: what streamed before the failure (`partial`, when captured), and its TTFT."""
    output: Any = UNSET
    if isinstance(partial, LLMResult) and partial.generations and partial.generations[0]:
        output, _ = llm_result(partial, None, True)
    attrs = ttft_ms(start_ns, first_token_ns) if first_token_ns is not None else None
    return output, attrs, UNSET


def end_tool(model: str | None, output: Any) -> Ended:
    return converted(output, tool_output), None, UNSET


def end_retriever(model: str | None, documents: Sequence[Any], capture: bool) -> Ended:
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
