"""`TracewireCallbackHandler`: LangChain / LangGraph callbacks -> tracewire spans.

One instance serves any number of concurrent runs: every piece of per-run state lives in a
`SpanRegistry` keyed by LangChain's `run_id`, and is freed at the run's end or error (or, for a
run whose end never comes, evicted after `run_ttl` seconds / beyond `max_open_runs`).

The hooks run on the user's hot path, so they split their work: on the caller's thread, what the
recorded tree depends on (ids, parent, session, a snapshot of the content); on the client's
worker (`Client.defer`), building the span and its events. The worker keeps the open spans in
`_spans`, closed in step with the registry.
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
from tracewire._ids import new_span_id
from tracewire.client import CURRENT, UNSET, Client, Span, error_info, frozen_size, thaw, who
from tracewire.context import SpanContext, current_session, current_span, parent_resolvers
from tracewire.event import ENVELOPE_BYTES
from tracewire.genai import message, ttft_ms
from tracewire.registry import ABANDONED, SpanRegistry

from ._convert import (
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


class _Run(SpanContext):
    """A LangChain run as the caller's thread knows it: its span's identity (decided when its start
    hook fires, so spans that user code opens inside the run can nest under it at once), the
    run's own LangChain tags/metadata (a child records only what it adds) and, for LLM runs,
    the requested model and the first-token time. The span itself lives on the worker."""

    __slots__ = ("handler", "run_id", "client", "start_ns", "tags", "metadata", "model", "first_token_ns", "lost")

    def __init__(
        self, handler: TracewireCallbackHandler, run_id: Any, client: Client, trace_id: str, sampled: bool,
        session_id: str | None, user_id: str | None, start_ns: int, tags: list[str] | None,
        metadata: dict[str, Any] | None, model: str | None,
    ) -> None:
        SpanContext.__init__(self, trace_id, new_span_id(), sampled, session_id, user_id)
        self.handler = handler
        self.run_id = run_id
        self.client = client
        self.start_ns = start_ns
        self.tags = tags
        self.metadata = metadata
        self.model = model
        self.first_token_ns: int | None = None
        self.lost = False  # its start was refused (queue full): its end is counted as dropped too

    def fail(self, error: Mapping[str, Any]) -> None:
        """Evicted by the registry (its end never came): close the span as unfinished."""
        self.handler._close(self, "error", error=error)


class TracewireCallbackHandler(BaseCallbackHandler):
    """Records every LangChain / LangGraph run it sees as a tracewire span.

    Pass it at invocation (`config={"callbacks": [handler]}`) or at construction
    (`ChatOpenAI(callbacks=[handler])`). `session_id` / `user_id` / `tags` / `metadata` apply to
    the runs this handler records; without a `session_id`, an enclosing `tracewire.session()`
    wins, else LangGraph's `configurable.thread_id` becomes the session.

    What a hook does on the caller's thread is kept to what must happen there: the run's ids,
    parent and session are decided, content is snapshotted, and the rest (building the span and
    its events) is handed to the client's worker with `Client.defer`, in order.
    """

    # The hooks only snapshot and enqueue: run them right in the caller's task rather than
    # hopping to an executor thread per callback under the async callback manager.
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
        # open runs, on the caller's side (bounded: see SpanRegistry) ...
        self._runs: SpanRegistry[_Run] = SpanRegistry(max_open=max_open_runs, ttl=run_ttl, names=("max_open_runs", "run_ttl"))
        # ... and their spans, on the worker's: every run that leaves `_runs` is closed here too
        self._spans: dict[Any, Span] = {}
        _handlers.add(self)

    @property
    def open_runs(self) -> int:
        """Runs started and not yet ended (per-run state held by this handler)."""
        return len(self._runs)

    # ------------------------------------------------------------------ on the caller's thread
    def _get_client(self) -> Client:
        return self._client or _state.client or _state.get_client()

    def _start(
        self, client: Client, kind: str, name: str, run_id: UUID, parent_run_id: UUID | None, input: Any,
        attrs: dict[str, Any] | None, tags: list[str] | None, metadata: dict[str, Any] | None,
        model: str | None = None,
    ) -> None:
        now = time.time_ns()
        parent_run = self._runs.get(_key(parent_run_id)) if parent_run_id is not None else None
        sess = current_session.get()
        session_id = None
        parent: SpanContext | None
        if parent_run is not None:
            parent = parent_run
            cur = current_span.get()
            # A tracewire span opened inside the parent run (a @trace'd function in a tool, say)
            # is the closer parent: LangChain does not know about it.
            if (cur is not None and cur.trace_id == parent_run.trace_id
                    and getattr(cur, "start_ns", 0) > parent_run.start_ns):
                parent = cur
            trace_id, sampled = parent_run.trace_id, parent_run.sampled
        else:
            # A root run (or one whose parent this handler never saw): nest under the caller's span.
            parent = client._parent(CURRENT)
            session_id = self.session_id
            if session_id is None and metadata and sess is None:
                cur = current_span.get()
                thread_id = metadata.get("thread_id") if cur is None or cur.session_id is None else None
                if thread_id is not None:
                    session_id = str(thread_id)
            trace_id, sampled = client.trace_of(parent)
        session_id, user_id = who(parent, sess, session_id, self.user_id)
        key = _key(run_id)
        run = _Run(self, key, client, trace_id, sampled, session_id, user_id, now, tags, metadata, model)
        if sampled:
            # what the run adds to its parent's tags and metadata, copied now like the content
            if parent_run is not None:
                span_tags = _own_tags(tags, parent_run.tags) if tags else None
                span_md = _own_metadata(metadata, parent_run.metadata) if metadata else None
            else:
                span_tags = self.tags + tuple(t for t in tags if not t.startswith(_INTERNAL_TAGS)) if tags else self.tags
                span_md = _own_metadata(metadata, None) if metadata else None
                if self.metadata:
                    span_md = {**self.metadata, **span_md} if span_md else self.metadata
            input = client.frozen(input)
            work = (_open, self, run, kind, name, parent, input, attrs, span_tags, span_md, sess)
            run.lost = not client.defer(work, ENVELOPE_BYTES + frozen_size(input))
        else:
            client.stats_.sampled_out += 1
        self._runs.put(key, run)

    def _ended(self, run_id: UUID) -> _Run | None:
        """The run leaving the open set at its end or error hook (None: not one of ours)."""
        entry = self._runs.pop(_key(run_id))
        return entry[0] if entry is not None else None

    def _close(
        self, run: _Run, phase: str, output: Any = UNSET, attrs: dict[str, Any] | None = None, error: Any = None,
        now: int | None = None, input: Any = UNSET,
    ) -> None:
        """Hand the run's end ("end") or failure ("error") to the worker."""
        if now is None:
            now = time.time_ns()
        if not run.sampled:
            return
        client = run.client
        if run.lost:
            client.count_dropped("queue_full")
            return
        if isinstance(error, BaseException):  # described now: its traceback and notes change later
            if any(c.__name__ in _CONTROL_FLOW for c in type(error).__mro__):
                phase, output, error = "end", UNSET, None  # an interrupt or a jump to the parent graph
            else:
                error = error_info(error)
        output, input = client.frozen(output), client.frozen(input)
        # forced: a span whose start was admitted must be closed on the worker, queue full or not
        client.defer((_finish, self, run.run_id, phase, output, attrs, error, now, input),
                     ENVELOPE_BYTES + frozen_size(output) + frozen_size(input), force=True)

    def _capture(self, client: Client) -> bool:
        return client.capture_content and not client.disabled

    def _internal_error(self, where: str, exc: BaseException) -> None:
        try:
            self._get_client().stats_.internal_error(f"langchain:{where}", exc)
        except Exception:  # noqa: BLE001 - never raise into LangChain
            pass

    # ------------------------------------------------------------------ on the worker's thread
    def _open(
        self, run: _Run, kind: str, name: str, parent: SpanContext | None, input: Any, attrs: dict[str, Any] | None,
        span_tags: tuple[str, ...] | None, span_md: dict[str, Any] | None, sess: Any,
    ) -> None:
        spans = self._spans
        spans[run.run_id] = run.client.start_span(
            kind, name, input=thaw(input), parent=parent, attributes=attrs, framework=FRAMEWORK, tags=span_tags,
            metadata=span_md, session_id=run.session_id, user_id=run.user_id, start_ns=run.start_ns,
            span_id=run.span_id, trace_id=run.trace_id, session=sess,
        )
        if len(spans) > self._runs.max_open:  # a safety net: every admitted start is closed (`_close`)
            stale = spans.pop(next(iter(spans)))
            stale.fail(ABANDONED)

    def _finish(
        self, run_id: Any, phase: str, output: Any, attrs: dict[str, Any] | None, error: Any, now: int, input: Any,
    ) -> None:
        span = self._spans.pop(run_id, None)  # run_id: the `_key` the run was opened under
        if span is None:
            return
        output, input = thaw(output), thaw(input)
        if phase == "end":
            span.end(output, attributes=attrs, end_ns=now, input=input)
        else:
            span.fail(error, output=output, attributes=attrs, end_ns=now, input=input)

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
            if client.disabled:
                return
            self._start(client, kind, name, run_id, parent_run_id, snapshot(inputs) if client.capture_content else UNSET,
                        attrs, tags, metadata)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_chain_start", exc)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        try:
            run = self._ended(run_id)
            if run is not None:
                capture = self._capture(run.client)
                self._close(run, "end", snapshot(outputs) if capture else UNSET, input=_late_input(capture, inputs))
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_chain_end", exc)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        try:
            run = self._ended(run_id)
            if run is not None:
                self._close(run, "error", error=error, input=_late_input(self._capture(run.client), inputs))
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
            if client.disabled:
                return
            attrs, model = _request_attributes("chat", metadata, kwargs.get("invocation_params"))
            inp = snapshot(messages[0]) if client.capture_content and messages else UNSET
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
            if client.disabled:
                return
            attrs, model = _request_attributes("text_completion", metadata, kwargs.get("invocation_params"))
            inp = [message("user", p) for p in prompts] if client.capture_content else UNSET
            name = kwargs.get("name") or _serialized_name(serialized) or "llm"
            self._start(client, "llm", name, run_id, parent_run_id, inp, attrs, tags, metadata, model)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_start", exc)

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._runs.get(_key(run_id))
            if run is not None and run.first_token_ns is None and first_chunk_has_content(token, chunk):
                run.first_token_ns = time.time_ns()
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_new_token", exc)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            now = time.time_ns()
            run = self._ended(run_id)
            if run is None:
                return
            capture = self._capture(run.client)
            output, attrs = llm_result(response, run.model, capture)
            if run.first_token_ns is not None:
                attrs.update(ttft_ms(run.start_ns, run.first_token_ns))
            self._close(run, "end", output if capture else UNSET, attrs, now=now)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_end", exc)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            now = time.time_ns()
            run = self._ended(run_id)
            if run is None:
                return
            partial = kwargs.get("response")
            output: Any = UNSET
            if (self._capture(run.client) and isinstance(partial, LLMResult)
                    and partial.generations and partial.generations[0]):
                output, _ = llm_result(partial, None, True)  # what streamed before the failure
            attrs = ttft_ms(run.start_ns, run.first_token_ns) if run.first_token_ns is not None else None
            self._close(run, "error", output, attrs, error, now)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_error", exc)

    # ------------------------------------------------------------------ tools
    def on_tool_start(
        self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        try:
            client = self._get_client()
            if client.disabled:
                return
            name = kwargs.get("name") or _serialized_name(serialized) or "tool"
            attrs = {A.TOOL_NAME: name}
            call_id = kwargs.get("tool_call_id")
            if call_id:
                attrs[A.TOOL_CALL_ID] = call_id
            if serialized and serialized.get("description"):
                attrs[A.TOOL_DESCRIPTION] = serialized["description"]
            inp = (snapshot(inputs) if inputs is not None else input_str) if client.capture_content else UNSET
            self._start(client, "tool", name, run_id, parent_run_id, inp, attrs, tags, metadata)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_tool_start", exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            now = time.time_ns()
            run = self._ended(run_id)
            if run is None:
                return
            out = tool_output(output) if self._capture(run.client) else UNSET
            if isinstance(output, ToolMessage) and output.status == "error":  # the tool's handle_tool_error answered
                self._close(run, "error", out, error={"type": "ToolError", "message": str(output.content)}, now=now)
            else:
                self._close(run, "end", out, now=now)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_tool_end", exc)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._ended(run_id)
            if run is not None:
                self._close(run, "error", error=error)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_tool_error", exc)

    # ------------------------------------------------------------------ retrievers
    def on_retriever_start(
        self, serialized: dict[str, Any] | None, query: str, *, run_id: UUID, parent_run_id: UUID | None = None,
        tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        try:
            client = self._get_client()
            if client.disabled:
                return
            name = kwargs.get("name") or _serialized_name(serialized) or "retriever"
            inp = {"query": query} if client.capture_content else UNSET
            self._start(client, "retriever", name, run_id, parent_run_id, inp, None, tags, metadata)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_retriever_start", exc)

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        try:
            now = time.time_ns()
            run = self._ended(run_id)
            if run is None:
                return
            capture = self._capture(run.client)
            out = [document(d) if isinstance(d, Document) else content(d) for d in documents] if capture else UNSET
            self._close(run, "end", out, {A.DOCUMENT_COUNT: len(documents)}, now=now)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_retriever_end", exc)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._ended(run_id)
            if run is not None:
                self._close(run, "error", error=error)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_retriever_error", exc)

    # ------------------------------------------------------------------ events
    def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        try:
            client = self._get_client()
            parent = self._runs.get(_key(run_id))
            client.point(
                "custom", name=name, input=content(data) if client.capture_content else UNSET,
                parent=parent if parent is not None else CURRENT, framework=FRAMEWORK,
            )
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_custom_event", exc)


# deferred work is queued as plain functions: a bound method would be one more object to track
_open = TracewireCallbackHandler._open
_finish = TracewireCallbackHandler._finish


def _key(run_id: Any) -> Any:
    """A run id as the handler's dicts key it: a UUID by its int (UUID's `__hash__` is Python
    code, run at every lookup)."""
    return run_id.int if type(run_id) is UUID else run_id


def _late_input(capture: bool, inputs: Any) -> Any:
    """A streamed chain (`stream` / `astream` / `transform`) starts with LangChain's `{'input': ''}`
    placeholder and reports what it really consumed only at its end, as `inputs=`."""
    if inputs is None or not capture:
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
            span = handler._runs.get(_key(run_id))
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


