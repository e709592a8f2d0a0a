"""`TracewireCallbackHandler`: LangChain / LangGraph callbacks -> tracewire spans.

One instance serves any number of concurrent runs: every piece of per-run state lives in a
`SpanRegistry` keyed by LangChain's `run_id`, and is freed at the run's end or error (or, for a
run whose end never comes, evicted after `run_ttl` seconds / beyond `max_open_runs`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables.config import var_child_runnable_config

from tracewire import _state
from tracewire import attributes as A
from tracewire.client import CURRENT, UNSET, Client, Span
from tracewire.context import SpanContext, current_session, current_span, parent_resolvers
from tracewire.genai import message, ttft_ms
from tracewire.registry import SpanRegistry

from ._convert import (
    chat_message,
    content,
    document,
    first_chunk_has_content,
    llm_result,
    snapshot,
    tool_output,
)

FRAMEWORK = "langchain"
# Tags LangChain/LangGraph add for their own bookkeeping; the user's tags are kept.
_INTERNAL_TAGS = ("seq:step:", "graph:step:", "map:key:", "langsmith:", "branch:")
# Metadata keys LangChain/LangGraph add to every run; recorded as attributes where they matter.
_INTERNAL_KEYS = ("langgraph_", "ls_", "lc_", "checkpoint_", "__")
# Where LangGraph's root run says it is a graph (`add_metadata({"ls_integration": ...})`).
_GRAPH_INTEGRATIONS = frozenset({"langgraph", "langchain_create_agent"})
# LangGraph control flow (interrupts, Command(graph=PARENT)) travels as exceptions: not failures.
_CONTROL_FLOW = frozenset({"GraphBubbleUp", "GraphInterrupt", "ParentCommand", "NodeInterrupt"})


class _Run:
    """Per-run state kept next to the open span: the run's own LangChain tags/metadata (so a child
    records only what it adds) and, for LLM runs, the first-token time and requested model."""

    __slots__ = ("tags", "metadata", "first_token_ns", "model")

    def __init__(self, tags: list[str] | None, metadata: dict[str, Any] | None, model: str | None = None) -> None:
        self.tags = tags
        self.metadata = metadata
        self.first_token_ns: int | None = None
        self.model = model


class TracewireCallbackHandler(BaseCallbackHandler):
    """Records every LangChain / LangGraph run it sees as a tracewire span.

    Pass it at invocation (`config={"callbacks": [handler]}`) or at construction
    (`ChatOpenAI(callbacks=[handler])`). `session_id` / `user_id` / `tags` / `metadata` apply to
    the runs this handler records; without a `session_id`, an enclosing `tracewire.session()`
    wins, else LangGraph's `configurable.thread_id` becomes the session.
    """

    # The hooks only build small dicts and enqueue: run them right in the caller's task rather
    # than hopping to an executor thread per callback under the async callback manager.
    run_inline = True
    raise_error = False

    def __init__(
        self, session_id: str | None = None, user_id: str | None = None, tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None, *, client: Client | None = None,
        max_open_runs: int = 10_000, run_ttl: float = 3600.0,
    ) -> None:
        super().__init__()
        self.session_id = session_id
        self.user_id = user_id
        self.tags: tuple[str, ...] = tuple(tags or ())
        self.metadata: dict[str, Any] | None = dict(metadata) if metadata else None
        self._client = client
        self._runs = SpanRegistry(max_open=max_open_runs, ttl=run_ttl, names=("max_open_runs", "run_ttl"))
        _handlers.add(self)

    @property
    def open_runs(self) -> int:
        """Runs started and not yet ended (per-run state held by this handler)."""
        return len(self._runs)

    # ------------------------------------------------------------------ span plumbing
    def _get_client(self) -> Client:
        return self._client or _state.client or _state.get_client()

    def _start(
        self, client: Client, kind: str, name: str, run_id: UUID, parent_run_id: UUID | None, input: Any,
        attrs: dict[str, Any] | None, tags: list[str] | None, metadata: dict[str, Any] | None,
        model: str | None = None,
    ) -> Span:
        runs = self._runs
        entry = runs.entry(parent_run_id) if parent_run_id is not None else None
        session_id = None
        if entry is not None:
            parent_span, parent_run = entry
            parent: Any = parent_span
            cur = current_span.get()
            # A tracewire span opened inside the parent run (a @trace'd function in a tool, say)
            # is the closer parent: LangChain does not know about it.
            if (cur is not None and cur is not parent_span and cur.trace_id == parent_span.trace_id
                    and getattr(cur, "start_ns", 0) > parent_span.start_ns):
                parent = cur
            span_tags = _own_tags(tags, parent_run.tags) if tags else None
            span_md = _own_metadata(metadata, parent_run.metadata) if metadata else None
        else:
            # A root run (or one whose parent this handler never saw): nest under the caller's span.
            parent = CURRENT
            span_tags = self.tags + tuple(t for t in tags if not t.startswith(_INTERNAL_TAGS)) if tags else self.tags
            span_md = _own_metadata(metadata, None) if metadata else None
            if self.metadata:
                span_md = {**self.metadata, **span_md} if span_md else self.metadata
            session_id = self.session_id
            if session_id is None and metadata and current_session.get() is None:
                cur = current_span.get()
                thread_id = metadata.get("thread_id") if cur is None or cur.session_id is None else None
                if thread_id is not None:
                    session_id = str(thread_id)
        span = client.start_span(
            kind, name, input=input, parent=parent, attributes=attrs, framework=FRAMEWORK, tags=span_tags,
            metadata=span_md, session_id=session_id, user_id=self.user_id,
        )
        runs.put(run_id, span, _Run(tags, metadata, model))
        return span

    def _internal_error(self, where: str, exc: BaseException) -> None:
        try:
            self._get_client().stats_.internal_error(f"langchain:{where}", exc)
        except Exception:  # noqa: BLE001 - never raise into LangChain
            pass

    def _fail(self, run_id: UUID, error: BaseException, inputs: Any = None) -> None:
        entry = self._runs.pop(run_id)
        if entry is not None:
            span = entry[0]
            _close_failed(span, error, input=_late_input(span, inputs))

    # ------------------------------------------------------------------ chains, graphs, nodes
    def on_chain_start(
        self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
        tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        try:
            name = kwargs.get("name") or _serialized_name(serialized) or "chain"
            kind = "chain"
            attrs = None
            if metadata:
                node = metadata.get("langgraph_node")
                if node is not None and node == name:
                    attrs = {A.NODE: node, A.STEP: metadata.get("langgraph_step")}
                if parent_run_id is None and metadata.get("ls_integration") in _GRAPH_INTEGRATIONS:
                    kind = "agent"
            if kind == "chain" and parent_run_id is None and name == "LangGraph":
                kind = "agent"
            if kind == "agent":
                attrs = {A.AGENT_NAME: name}
            client = self._get_client()
            self._start(client, kind, name, run_id, parent_run_id, snapshot(inputs) if client.capture_content else UNSET,
                        attrs, tags, metadata)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_chain_start", exc)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        try:
            entry = self._runs.pop(run_id)
            if entry is not None:
                span = entry[0]
                capture = span._client is not None and span._client.capture_content
                span.end(snapshot(outputs) if capture else UNSET, input=_late_input(span, inputs))
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_chain_end", exc)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        try:
            self._fail(run_id, error, inputs)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_chain_error", exc)

    # ------------------------------------------------------------------ models
    def on_chat_model_start(
        self, serialized: dict[str, Any] | None, messages: list[list[BaseMessage]], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            client = self._get_client()
            attrs, model = _request_attributes("chat", metadata, kwargs.get("invocation_params"))
            inp = [chat_message(m) for m in messages[0]] if client.capture_content and messages else UNSET
            name = kwargs.get("name") or _serialized_name(serialized) or "chat_model"
            self._start(client, "llm", name, run_id, parent_run_id, inp, attrs, tags, metadata, model)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_chat_model_start", exc)

    def on_llm_start(
        self, serialized: dict[str, Any] | None, prompts: list[str], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            client = self._get_client()
            attrs, model = _request_attributes("text_completion", metadata, kwargs.get("invocation_params"))
            inp = [message("user", p) for p in prompts] if client.capture_content else UNSET
            name = kwargs.get("name") or _serialized_name(serialized) or "llm"
            self._start(client, "llm", name, run_id, parent_run_id, inp, attrs, tags, metadata, model)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_start", exc)

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._runs.state(run_id)
            if run is not None and run.first_token_ns is None and first_chunk_has_content(token, chunk):
                run.first_token_ns = time.time_ns()
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_new_token", exc)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            entry = self._runs.pop(run_id)
            if entry is None:
                return
            span, run = entry
            capture = span._client is not None and span._client.capture_content
            output, attrs = llm_result(response, run.model, capture)
            if run.first_token_ns is not None:
                attrs.update(ttft_ms(span.start_ns, run.first_token_ns))
            span.end(output if capture else UNSET, attributes=attrs)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_end", exc)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            entry = self._runs.pop(run_id)
            if entry is None:
                return
            span, run = entry
            partial = kwargs.get("response")
            output: Any = UNSET
            if (span._client is not None and span._client.capture_content and isinstance(partial, LLMResult)
                    and partial.generations and partial.generations[0]):
                output, _ = llm_result(partial, None, True)  # what streamed before the failure
            attrs = ttft_ms(span.start_ns, run.first_token_ns) if run.first_token_ns is not None else None
            _close_failed(span, error, output, attrs)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_error", exc)

    # ------------------------------------------------------------------ tools
    def on_tool_start(
        self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        try:
            name = kwargs.get("name") or _serialized_name(serialized) or "tool"
            attrs = {A.TOOL_NAME: name}
            call_id = kwargs.get("tool_call_id")
            if call_id:
                attrs[A.TOOL_CALL_ID] = call_id
            if serialized and serialized.get("description"):
                attrs[A.TOOL_DESCRIPTION] = serialized["description"]
            client = self._get_client()
            inp = (snapshot(inputs) if inputs is not None else input_str) if client.capture_content else UNSET
            self._start(client, "tool", name, run_id, parent_run_id, inp, attrs, tags, metadata)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_tool_start", exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            entry = self._runs.pop(run_id)
            if entry is None:
                return
            span = entry[0]
            out = tool_output(output) if span._client is not None and span._client.capture_content else UNSET
            if isinstance(output, ToolMessage) and output.status == "error":  # the tool's handle_tool_error answered
                span.fail({"type": "ToolError", "message": str(output.content)}, output=out)
            else:
                span.end(out)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_tool_end", exc)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._fail(run_id, error)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_tool_error", exc)

    # ------------------------------------------------------------------ retrievers
    def on_retriever_start(
        self, serialized: dict[str, Any] | None, query: str, *, run_id: UUID, parent_run_id: UUID | None = None,
        tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        try:
            name = kwargs.get("name") or _serialized_name(serialized) or "retriever"
            client = self._get_client()
            inp = {"query": query} if client.capture_content else UNSET
            self._start(client, "retriever", name, run_id, parent_run_id, inp, None, tags, metadata)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_retriever_start", exc)

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        try:
            entry = self._runs.pop(run_id)
            if entry is None:
                return
            span = entry[0]
            capture = span._client is not None and span._client.capture_content
            out = [document(d) if isinstance(d, Document) else content(d) for d in documents] if capture else UNSET
            span.end(out, attributes={A.DOCUMENT_COUNT: len(documents)})
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_retriever_end", exc)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._fail(run_id, error)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_retriever_error", exc)

    # ------------------------------------------------------------------ events
    def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        try:
            client = self._get_client()
            parent = self._runs.get(run_id)
            client.point(
                "custom", name=name, input=content(data) if client.capture_content else UNSET,
                parent=parent if parent is not None else CURRENT, framework=FRAMEWORK,
            )
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_custom_event", exc)


def _close_failed(
    span: Span, error: BaseException, output: Any = UNSET, attrs: dict[str, Any] | None = None, input: Any = UNSET,
) -> None:
    if any(c.__name__ in _CONTROL_FLOW for c in type(error).__mro__):
        span.end(attributes=attrs, input=input)  # an interrupt or a jump to the parent graph: control flow
    else:
        span.fail(error, output=output, attributes=attrs, input=input)


def _late_input(span: Span, inputs: Any) -> Any:
    """A streamed chain (`stream` / `astream` / `transform`) starts with LangChain's `{'input': ''}`
    placeholder and reports what it really consumed only at its end, as `inputs=`."""
    if inputs is None or span._client is None or not span._client.capture_content:
        return UNSET
    return snapshot(inputs)


_handlers: weakref.WeakSet[TracewireCallbackHandler] = weakref.WeakSet()


def _running_run_parent(current: SpanContext | None) -> SpanContext | None:
    """Parent resolver for spans opened by user code that LangChain is running (a tool's
    function, a RunnableLambda): the recorded span of that run, unless the current tracewire
    span was opened inside it. LangChain keeps the running run's child config in a contextvar."""
    try:
        config = var_child_runnable_config.get()
        if not config:
            return None
        run_id = getattr(config.get("callbacks"), "parent_run_id", None)
        if run_id is None:
            return None
        for handler in list(_handlers):
            span = handler._runs.get(run_id)
            if span is not None:
                if (current is not None and current.trace_id == span.trace_id
                        and getattr(current, "start_ns", 0) >= span.start_ns):
                    return None
                return span
    except Exception:  # noqa: BLE001 - a parent lookup must never break span creation
        return None
    return None


if _running_run_parent not in parent_resolvers:
    parent_resolvers.append(_running_run_parent)


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


def _own_tags(tags: list[str], inherited: list[str] | None) -> tuple[str, ...] | None:
    """A child run's tags minus LangChain's bookkeeping and what its parent run already had."""
    own = [t for t in tags if not t.startswith(_INTERNAL_TAGS) and not (inherited and t in inherited)]
    return tuple(own) if own else None


def _own_metadata(metadata: Mapping[str, Any], inherited: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """User metadata of a run: LangChain/LangGraph bookkeeping keys dropped and, for a child run,
    the keys it merely inherited from its parent run (LangChain passes them down unchanged)."""
    out: dict[str, Any] | None = None
    for k in (metadata.keys() - inherited.keys()) if inherited else metadata:
        if not k.startswith(_INTERNAL_KEYS):
            if out is None:
                out = {}
            out[k] = metadata[k]
    return out


