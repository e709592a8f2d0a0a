"""Which LlamaIndex spans become tracewire spans, and of what kind.

LlamaIndex opens a span for nearly every method of every component (`RetrieverQueryEngine._query`,
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

from typing import Any

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
