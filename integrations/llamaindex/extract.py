"""LlamaIndex objects -> tracewire's kinds, content and attributes: pure functions, no state.

Everything here is duck-typed and cheap: attribute reads and small dicts, no serialization.

Which LlamaIndex spans become tracewire spans, and of what kind (`kind_of`). LlamaIndex opens a span for nearly every method of every component (`RetrieverQueryEngine._query`,
`SentenceSplitter.__call__`, `CompactAndRefine.get_response` recursing into itself, …). Recording
them all buries the few operations a reader cares about, so only the public entry point of each
component kind is kept; every other span is skipped and its children are re-linked to the
nearest kept ancestor:

    agent      BaseWorkflowAgent / AgentWorkflow `.run`
    chain      other Workflow `.run` and its steps; query engine `query`; synthesizer
               `synthesize`; chat engine `chat`/`stream_chat`
    retriever  BaseRetriever `retrieve`
    reranker   node postprocessors whose class name says "rerank" (others are chains)
    embedding  BaseEmbedding `get_*_embedding*`
    llm        BaseLLM `chat`/`complete` and their async/stream variants (`predict` and
               `structured_predict` are recorded as the chat/complete call they make)
    tool       BaseTool `call`/`acall`

An llm, embedding or tool span directly inside one of the same kind (an LLM whose `achat` calls
its own `chat`, a tool wrapping a tool) is one operation, so only the outer one is kept.
Classes are matched by their module-qualified base-class names, so nothing extra is imported.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from llama_index.core.instrumentation.dispatcher import active_instrument_tags
from workflows.events import StopEvent

from tracewire.adapters import UNSET
from tracewire.model import attributes as A
from tracewire.model.genai import message, tool_call, usage_attributes

# ------------------------------------------------------------------ which spans are kept
# (module-qualified base class) -> {method name -> kind}
_LLM = dict.fromkeys(
    ("chat", "achat", "stream_chat", "astream_chat", "complete", "acomplete", "stream_complete", "astream_complete"),
    "llm",
)
_EMBEDDING = dict.fromkeys(
    (
        "get_query_embedding", "aget_query_embedding", "get_text_embedding", "aget_text_embedding",
        "get_text_embedding_batch", "aget_text_embedding_batch", "get_agg_embedding_from_queries",
        "aget_agg_embedding_from_queries",
    ),
    "embedding",
)
_BASES: dict[str, dict[str, str]] = {
    "llama_index.core.agent.workflow.base_agent.BaseWorkflowAgent": {"run": "agent"},
    "llama_index.core.agent.workflow.multi_agent_workflow.AgentWorkflow": {"run": "agent"},
    "workflows.workflow.Workflow": {"run": "chain"},
    "llama_index.core.base.llms.base.BaseLLM": _LLM,
    "llama_index.core.base.embeddings.base.BaseEmbedding": _EMBEDDING,
    "llama_index.core.base.base_retriever.BaseRetriever": dict.fromkeys(("retrieve", "aretrieve"), "retriever"),
    "llama_index.core.base.base_query_engine.BaseQueryEngine": dict.fromkeys(("query", "aquery"), "chain"),
    "llama_index.core.response_synthesizers.base.BaseSynthesizer": dict.fromkeys(("synthesize", "asynthesize"), "chain"),
    "llama_index.core.chat_engine.types.BaseChatEngine": dict.fromkeys(
        ("chat", "achat", "stream_chat", "astream_chat"), "chain"
    ),
    "llama_index.core.postprocessor.types.BaseNodePostprocessor": dict.fromkeys(
        ("postprocess_nodes", "apostprocess_nodes"), "chain"
    ),
    "llama_index.core.tools.types.BaseTool": dict.fromkeys(("call", "acall"), "tool"),
}
# kinds where a span directly inside a span of the same kind is the same operation
COLLAPSE_NESTED = frozenset(("llm", "embedding", "tool"))

_by_class: dict[type, dict[str, str] | None] = {}


def _methods_of(cls: type) -> dict[str, str] | None:
    """Method -> kind for one class (first matching base wins, most derived first); cached."""
    try:
        return _by_class[cls]
    except KeyError:
        pass
    found: dict[str, str] = {}
    for base in cls.__mro__:
        table = _BASES.get(f"{base.__module__}.{base.__qualname__}")
        if table:
            for method, kind in table.items():
                found.setdefault(method, kind)
    result = found or None
    if result is not None and "postprocess_nodes" in result and "rerank" in cls.__name__.lower():
        result = {**result, "postprocess_nodes": "reranker", "apostprocess_nodes": "reranker"}
    if len(_by_class) < 4096:  # bounded: one entry per component class seen
        _by_class[cls] = result
    return result


def method_name(span_id: str) -> str:
    """`"<Class>.<method>-<uuid4>"` -> `"<Class>.<method>"`."""
    return span_id[:-37] if len(span_id) > 37 and span_id[-37] == "-" else span_id


def kind_of(instance: Any, span_id: str) -> str | None:
    """The tracewire kind for a span on `instance`, or None when the span is not kept."""
    if instance is None:
        return None
    methods = _methods_of(type(instance))
    if not methods:
        return None
    qual = method_name(span_id)
    return methods.get(qual[qual.rfind(".") + 1:])


# ------------------------------------------------------------------ content and attributes
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


# ------------------------------------------------------------------ what a kept span records
_STEP_INPUT_TAG = "llamaindex.step.input_summary"
_RUN_INPUT_TAG = "llamaindex.start_event"


def describe(
    kind: str, instance: Any, span_id: str, args: Mapping[str, Any], tags: dict[str, Any] | None,
    agent_name: str | None, tool_call_id: str | None, capture: bool,
) -> tuple[str, dict[str, Any], Any, str | None, bool]:
    """(name, attributes, input, request model, whether it is a workflow run) of a kept span of
    `kind` on `instance` (None: a workflow step). `agent_name` / `tool_call_id`: what the
    skipped span it runs in says (an agent's run_agent_step, an agent's call_tool step)."""
    name = method_name(span_id)
    method = name[name.rfind(".") + 1:]
    attrs: dict[str, Any] = {}
    inp: Any = UNSET
    model: str | None = None
    workflow = False
    if kind == "llm":
        name = type(instance).__name__
        attrs = llm_attributes(instance, method)
        if agent_name:
            attrs[A.AGENT_NAME] = agent_name
        model = attrs.get(A.REQUEST_MODEL)
        if capture:
            inp = llm_input(args)
    elif kind == "embedding":
        name = type(instance).__name__
        model = getattr(instance, "model_name", None)
        if isinstance(model, str) and model != "unknown":
            attrs[A.REQUEST_MODEL] = model
        attrs[A.OPERATION_NAME] = "embeddings"
        if capture:
            inp = embedding_input(args)
    elif kind == "retriever":
        name = type(instance).__name__
        if capture:
            inp = retriever_input(args)
    elif kind == "reranker":
        name = type(instance).__name__
        if capture:
            inp = chain_input(args)
    elif kind == "tool":
        meta = getattr(instance, "metadata", None)
        name = getattr(meta, "name", None) or type(instance).__name__
        attrs[A.TOOL_NAME] = name
        if tool_call_id:
            attrs[A.TOOL_CALL_ID] = tool_call_id
        if capture:
            inp = tool_input(args)
    elif kind == "agent":
        name = getattr(instance, "name", None) or type(instance).__name__
        attrs[A.AGENT_NAME] = name
        workflow = True
        if capture:
            inp = agent_input(args)
    elif instance is not None and method == "run":  # a workflow
        name = type(instance).__name__
        workflow = True
        if capture:  # the run span is entered without tags; its start-event summary is in the context's
            inp = (tags or active_instrument_tags.get()).get(_RUN_INPUT_TAG, UNSET)
    elif instance is None:  # a workflow step
        if capture and tags:
            inp = tags.get(_STEP_INPUT_TAG, UNSET)
    elif capture:
        inp = chain_input(args)
    return name, attrs, inp, model, workflow


def is_stream(result: Any) -> bool:
    return inspect.isgenerator(result) or inspect.isasyncgen(result)


def has_token(resp: Any) -> bool:
    """A streamed chunk carrying text or a tool call (OpenAI's first chunk carries only the role)."""
    if getattr(resp, "delta", None):
        return True
    msg = getattr(resp, "message", None)
    return any(getattr(b, "block_type", None) == "tool_call" for b in getattr(msg, "blocks", None) or ())
