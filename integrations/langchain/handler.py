"""`TracewireCallbackHandler`: LangChain / LangGraph callbacks -> tracewire spans.

One instance serves any number of concurrent runs: every piece of per-run state lives in a
`SpanRegistry` keyed by LangChain's `run_id`, and is freed at the run's end or error (or, for a
run whose end never comes, evicted after `run_ttl` seconds / beyond `max_open_runs`).

The hooks run on the user's hot path, so they do only what must happen when they fire: decide
the run's ids, parent and session, and `hold` its raw arguments (containers copied, LangChain's
objects kept). Everything else is handed to the client's worker with `Client.defer`, in order:
working out the span's kind, name and attributes (`_describe`), converting the content, and
building the span and its events. The worker keeps the open spans in `_spans`, closed in step
with the registry.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables.config import var_child_runnable_config

from tracewire import _state
from tracewire._ids import new_span_id
from tracewire.client import CURRENT, UNSET, Client, Span, error_info, who
from tracewire.context import SpanContext, current_session, current_span, parent_resolvers
from tracewire.event import ENVELOPE_BYTES
from tracewire.hold import held_size, hold
from tracewire.registry import ABANDONED, SpanRegistry

from . import _describe as D
from ._convert import content, first_chunk_has_content

FRAMEWORK = "langchain"
# LangGraph control flow (interrupts, Command(graph=PARENT)) travels as exceptions: not failures.
_CONTROL_FLOW = frozenset({"GraphBubbleUp", "GraphInterrupt", "ParentCommand", "NodeInterrupt"})
_UNDESCRIBED: D.Described = ("chain", "run", None, D.UNAVAILABLE, None)


class _Run(SpanContext):
    """A LangChain run as the caller's thread knows it: its span's identity (decided when its start
    hook fires, so spans that user code opens inside the run can nest under it at once) and, for
    LLM runs, the first-token time. The span itself lives on the worker."""

    __slots__ = ("handler", "run_id", "client", "start_ns", "first_token_ns", "lost")

    def __init__(
        self, handler: TracewireCallbackHandler, run_id: Any, client: Client, trace_id: str, sampled: bool,
        session_id: str | None, user_id: str | None, start_ns: int,
    ) -> None:
        SpanContext.__init__(self, trace_id, new_span_id(), sampled, session_id, user_id)
        self.handler = handler
        self.run_id = run_id
        self.client = client
        self.start_ns = start_ns
        self.first_token_ns: int | None = None
        self.lost = False  # its start was refused (queue full): its end is counted as dropped too

    def fail(self, error: Mapping[str, Any]) -> None:
        """Evicted by the registry (its end never came): close the span as unfinished."""
        self.handler._close(self, "error", error, None, None)


class _Open:
    """A run's span on the worker, with what its children's tags and metadata are compared to."""

    __slots__ = ("span", "tags", "metadata", "model")

    def __init__(self, span: Span, tags: Sequence[str] | None, metadata: Mapping[str, Any] | None,
                 model: str | None) -> None:
        self.span = span
        self.tags = tags
        self.metadata = metadata
        self.model = model


class TracewireCallbackHandler(BaseCallbackHandler):
    """Records every LangChain / LangGraph run it sees as a tracewire span.

    Pass it at invocation (`config={"callbacks": [handler]}`) or at construction
    (`ChatOpenAI(callbacks=[handler])`). `session_id` / `user_id` / `tags` / `metadata` apply to
    the runs this handler records; without a `session_id`, an enclosing `tracewire.session()`
    wins, else LangGraph's `configurable.thread_id` becomes the session.

    A hook decides the run's ids, parent and session and holds its arguments as they are when it
    fires; the client's worker builds the span from them (`Client.defer`), in order.
    """

    # The hooks only hold and enqueue: run them right in the caller's task rather than hopping to
    # an executor thread per callback under the async callback manager.
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
        self._spans: dict[Any, _Open] = {}
        _handlers.add(self)

    @property
    def open_runs(self) -> int:
        """Runs started and not yet ended (per-run state held by this handler)."""
        return len(self._runs)

    # ------------------------------------------------------------------ on the caller's thread
    def _get_client(self) -> Client:
        return self._client or _state.client or _state.get_client()

    def _start(
        self, client: Client, run_id: UUID, parent_run_id: UUID | None, tags: list[str] | None,
        metadata: dict[str, Any] | None, describe: Callable[..., D.Described], held: Any, *args: Any,
    ) -> None:
        """Open a run: `describe(metadata, held, *args)` works out its span on the worker, `held`
        being its content (or UNSET when content is not captured)."""
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
        run = _Run(self, key, client, trace_id, sampled, session_id, user_id, now)
        if sampled:
            # LangChain's tags and metadata are copied like the content: the worker reads them later
            work = (_open, self, run, parent, None if parent_run is None else parent_run.run_id,
                    tuple(tags) if tags else None, dict(metadata) if metadata else None, sess, describe, held, *args)
            run.lost = not client.defer(work, ENVELOPE_BYTES + held_size(held))
        else:
            client.stats_.sampled_out += 1
        self._runs.put(key, run)

    def _ended(self, run_id: UUID) -> _Run | None:
        """The run leaving the open set at its end or error hook (None: not one of ours)."""
        entry = self._runs.pop(_key(run_id))
        return entry[0] if entry is not None else None

    def _close(
        self, run: _Run, phase: str, error: Any, now: int | None, end: Callable[..., D.Ended] | None, *args: Any,
    ) -> None:
        """Hand the run's end ("end") or failure ("error") to the worker: `end(model, *args)` works
        out its output and attributes there (None: it has none)."""
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
                phase, error = "end", None  # an interrupt or a jump to the parent graph
            else:
                error = error_info(error)
        size = ENVELOPE_BYTES + (held_size(args[0]) if args else 0)  # an `end_*`'s first argument: the output
        # forced: a span whose start was admitted must be closed on the worker, queue full or not
        client.defer((_finish, self, run.run_id, phase, error, now, end, *args), size, force=True)

    def _capture(self, client: Client) -> bool:
        return client.capture_content and not client.disabled

    def _internal_error(self, where: str, exc: BaseException) -> None:
        try:
            self._get_client().stats_.internal_error(f"langchain:{where}", exc)
        except Exception:  # noqa: BLE001 - never raise into LangChain
            pass

    # ------------------------------------------------------------------ on the worker's thread
    def _open(
        self, run: _Run, parent: SpanContext | None, parent_key: Any, tags: tuple[str, ...] | None,
        metadata: dict[str, Any] | None, sess: Any, describe: Callable[..., D.Described], held: Any, *args: Any,
    ) -> None:
        client = run.client
        try:
            kind, name, attrs, input, model = describe(metadata, held, *args)
        except Exception as exc:  # noqa: BLE001 - the span is still recorded, as what is known
            client.stats_.internal_error("langchain:describe", exc)
            kind, name, attrs, input, model = _UNDESCRIBED
        spans = self._spans
        if parent_key is not None:  # what the run adds to its parent run's tags and metadata
            up = spans.get(parent_key)
            span_tags = D.own_tags(tags, up.tags if up else None) if tags else None
            span_md = D.own_metadata(metadata, up.metadata if up else None) if metadata else None
        else:
            span_tags = self.tags + (D.own_tags(tags, None) or ()) if tags else self.tags
            span_md = D.own_metadata(metadata, None) if metadata else None
            if self.metadata:
                span_md = {**self.metadata, **span_md} if span_md else self.metadata
        span = client.start_span(
            kind, name, input=input, parent=parent, attributes=attrs, framework=FRAMEWORK, tags=span_tags,
            metadata=span_md, session_id=run.session_id, user_id=run.user_id, start_ns=run.start_ns,
            span_id=run.span_id, trace_id=run.trace_id, session=sess,
        )
        spans[run.run_id] = _Open(span, tags, metadata, model)
        if len(spans) > self._runs.max_open:  # a safety net: every admitted start is closed (`_close`)
            spans.pop(next(iter(spans))).span.fail(ABANDONED)

    def _finish(
        self, run_id: Any, phase: str, error: Any, now: int, end: Callable[..., D.Ended] | None, *args: Any,
    ) -> None:
        opened = self._spans.pop(run_id, None)  # run_id: the `_key` the run was opened under
        if opened is None:
            return
        span = opened.span
        output: Any = UNSET
        attrs: dict[str, Any] | None = None
        input: Any = UNSET
        if end is not None:
            try:
                output, attrs, input = end(opened.model, *args)
            except Exception as exc:  # noqa: BLE001 - the span is still closed, its output unknown
                if span._client is not None:
                    span._client.stats_.internal_error("langchain:describe_end", exc)
                output = D.UNAVAILABLE
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
            client = self._get_client()
            if client.disabled:
                return
            self._start(client, run_id, parent_run_id, tags, metadata, D.describe_chain,
                        hold(inputs) if client.capture_content else UNSET, serialized, kwargs.get("name"),
                        parent_run_id is None)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_chain_start", exc)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        try:
            run = self._ended(run_id)
            if run is not None:
                capture = self._capture(run.client)
                self._close(run, "end", None, None, D.end_chain, hold(outputs) if capture else UNSET,
                            _late_input(capture, inputs))
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_chain_end", exc)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        try:
            run = self._ended(run_id)
            if run is not None:
                self._close(run, "error", error, None, D.end_chain, UNSET, _late_input(self._capture(run.client), inputs))
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
            held = hold(messages[0]) if client.capture_content and messages else UNSET
            self._start(client, run_id, parent_run_id, tags, metadata, D.describe_chat_model, held, serialized,
                        kwargs.get("name"), kwargs.get("invocation_params"))
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
            held = hold(prompts) if client.capture_content else UNSET
            self._start(client, run_id, parent_run_id, tags, metadata, D.describe_llm, held, serialized,
                        kwargs.get("name"), kwargs.get("invocation_params"))
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
            if run is not None:
                # LangChain hands each callback an LLMResult of its own: held as it is
                self._close(run, "end", None, now, D.end_llm, response, self._capture(run.client), run.start_ns,
                            run.first_token_ns)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_end", exc)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            now = time.time_ns()
            run = self._ended(run_id)
            if run is not None:
                partial = kwargs.get("response") if self._capture(run.client) else None
                self._close(run, "error", error, now, D.end_llm_failed, partial, run.start_ns, run.first_token_ns)
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
            held = (hold(inputs) if inputs is not None else input_str) if client.capture_content else UNSET
            self._start(client, run_id, parent_run_id, tags, metadata, D.describe_tool, held, serialized,
                        kwargs.get("name"), kwargs.get("tool_call_id"))
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_tool_start", exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            now = time.time_ns()
            run = self._ended(run_id)
            if run is None:
                return
            out = hold(output) if self._capture(run.client) else UNSET
            if isinstance(output, ToolMessage) and output.status == "error":  # the tool's handle_tool_error answered
                error = {"type": "ToolError", "message": str(output.content)}
                self._close(run, "error", error, now, D.end_tool, out)
            else:
                self._close(run, "end", None, now, D.end_tool, out)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_tool_end", exc)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._ended(run_id)
            if run is not None:
                self._close(run, "error", error, None, None)
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
            self._start(client, run_id, parent_run_id, tags, metadata, D.describe_retriever,
                        query if client.capture_content else UNSET, serialized, kwargs.get("name"))
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_retriever_start", exc)

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        try:
            now = time.time_ns()
            run = self._ended(run_id)
            if run is not None:
                self._close(run, "end", None, now, D.end_retriever, hold(documents), self._capture(run.client))
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_retriever_end", exc)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._ended(run_id)
            if run is not None:
                self._close(run, "error", error, None, None)
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
    return hold(inputs)


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

