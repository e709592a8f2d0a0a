"""`TracewireCallbackHandler`: LangChain / LangGraph callbacks -> tracewire spans.

One instance serves any number of concurrent runs: every piece of per-run state lives in a
`SpanRegistry` keyed by LangChain's `run_id`, and is freed at the run's end or error (or, for a
run whose end never comes, evicted after `run_ttl` seconds / beyond `max_open_runs`).

The hooks run on the user's hot path, so they do only what must happen when they fire: read
what the context says (the current tracewire span and session, a root's parent and session),
`hold` the run's raw arguments (containers copied, LangChain's objects kept) and hand them to the
client's worker with `Client.defer`, in order. The run's identity (ids, parent, sampling) is
worked out the first time it is needed (`_identity`): on the worker, or at once when user code
opens a tracewire span inside the run. The worker works out the span's kind, name and attributes
(`_describe`), converts the content and builds the span and its events; it keeps the open spans
in `_spans`, closed in step with the registry.
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

from tracewire.adapters.runs import ABANDONED, SpanRegistry
from tracewire.engine import state as _state
from tracewire.engine.client import CURRENT, DEFER_UNIT, UNSET, Client, Span, error_info
from tracewire.integrations.langchain import _describe as D
from tracewire.integrations.langchain._convert import content, first_chunk_has_content
from tracewire.model.content import SIZED, held_size, hold
from tracewire.model.context import SpanContext, current_session, current_span, parent_resolvers
from tracewire.model.context import session_user as who
from tracewire.model.event import ENVELOPE_BYTES
from tracewire.model.ids import new_span_id

FRAMEWORK = "langchain"
# LangGraph control flow (interrupts, Command(graph=PARENT)) travels as exceptions: not failures.
_CONTROL_FLOW = frozenset({"GraphBubbleUp", "GraphInterrupt", "ParentCommand", "NodeInterrupt"})
_UNDESCRIBED: D.Described = ("chain", "run", None, D.UNAVAILABLE, None)


# What a start hook keeps about an open run, on the caller's side: (parent run's key, or None for
# a root; start time; the context's span for a child, the resolved parent for a root; the
# session; a root's own session id; the client). Enough to work out the run's identity when it is
# first needed (`_identity`): on the worker, or by a span that user code opens inside the run.
_Entry = tuple[Any, int, "SpanContext | None", Any, "str | None", Client]


class _Run(SpanContext):
    """A run's span identity, decided once, by whichever thread needs it first."""

    __slots__ = ("start_ns", "parent")

    def __init__(
        self, parent: SpanContext | None, trace_id: str, sampled: bool, session_id: str | None,
        user_id: str | None, start_ns: int,
    ) -> None:
        SpanContext.__init__(self, trace_id, new_span_id(), sampled, session_id, user_id)
        self.parent = parent  # what its span nests under: its parent run, or a closer tracewire span
        self.start_ns = start_ns


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

    A hook reads the context and holds its arguments as they are when it fires; the client's
    worker builds the span from them (`Client.defer`), in order.
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
        self._runs: SpanRegistry[_Entry] = SpanRegistry(
            max_open=max_open_runs, ttl=run_ttl, names=("max_open_runs", "run_ttl"), on_evict=self._abandon)
        # ... their identities once decided (until the worker closes their span) ...
        self._ids: dict[Any, _Run] = {}
        self._first_token: dict[Any, int] = {}  # LLM runs streaming: when the first content came
        self._lost: set[Any] = set()  # runs whose start a full queue refused: their end is dropped too
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
        metadata: dict[str, Any] | None, describe: Callable[..., D.Described], held: Any, serialized: Any,
        name: Any, extra: Any,
    ) -> None:
        """Open a run: `describe(metadata, held, serialized, name, extra)` works out its span on the
        worker, `held` being its content (or UNSET when content is not captured). Only what the
        context says now is read here; the run's identity is worked out later (`_identity`)."""
        now = time.time_ns()
        key = run_id.int if type(run_id) is UUID else run_id  # see `_key`
        sess = current_session.get()
        pkey = None
        if parent_run_id is not None:
            pkey = parent_run_id.int if type(parent_run_id) is UUID else parent_run_id
            if self._runs.get(pkey) is None:
                pkey = None  # a parent this handler never saw: a root here
        entry: _Entry
        if pkey is not None:
            entry = (pkey, now, current_span.get(), sess, None, client)
        else:
            # A root run: nest under the caller's span. Its session: the handler's, else the
            # context's, else LangGraph's thread id.
            session_id = self.session_id
            if session_id is None and metadata and sess is None:
                cur = current_span.get()
                thread_id = metadata.get("thread_id") if cur is None or cur.session_id is None else None
                if thread_id is not None:
                    session_id = str(thread_id)
            entry = (None, now, client.parent_of(CURRENT), sess, session_id, client)
        # LangChain's tags and metadata are copied like the content: the worker reads them later
        # Into the registry without a call, before the worker can take the run up: its age starts
        # then (`_open`), or now if its start is refused.
        runs = self._runs
        runs.spans[key] = entry
        # the default size, unless the held content is text that counts by its length
        if not client.defer(
            _open, self, key, entry, tuple(tags) if tags else None, dict(metadata) if metadata else None,
            describe, held, serialized, name, extra,
            size=ENVELOPE_BYTES + held_size(held) if type(held) in SIZED else DEFER_UNIT,
        ):
            self._lost.add(key)
            runs.born(key)
        elif len(runs.spans) > runs.max_open:
            runs.born(key)

    def _identity(self, key: Any, entry: _Entry) -> _Run:
        """The run's span identity: ids, parent, sampling, session. Decided the first time it is
        asked for and kept until its span is closed, so every thread sees the same one."""
        run = self._ids.get(key)
        if run is not None:
            return run
        pkey, start_ns, parent, sess, session_id, client = entry
        if pkey is not None:
            up = self._ids.get(pkey)
            if up is None:
                up_entry = self._runs.get(pkey)
                up = self._identity(pkey, up_entry) if up_entry is not None else None
            # A tracewire span opened inside the parent run (a @trace'd function in a tool, say)
            # is the closer parent: LangChain does not know about it.
            if up is not None and not (parent is not None and parent.trace_id == up.trace_id
                                       and getattr(parent, "start_ns", 0) > up.start_ns):
                parent = up
        trace_id, sampled = client.trace_of(parent)
        session_id, user_id = who(parent, sess, session_id, self.user_id)
        return self._ids.setdefault(key, _Run(parent, trace_id, sampled, session_id, user_id, start_ns))

    def _close(
        self, key: Any, entry: _Entry, phase: str, error: Any, now: int | None, end: Callable[..., D.Ended] | None,
        *args: Any,
    ) -> None:
        """Hand the run's end ("end") or failure ("error") to the worker: `end(model, *args)` works
        out its output and attributes there (None: it has none)."""
        client = entry[5]
        if self._lost and key in self._lost:
            self._lost.discard(key)
            self._ids.pop(key, None)
            client.count_dropped("queue_full")
            return
        if error is not None and isinstance(error, BaseException):  # described now: its traceback changes later
            if any(c.__name__ in _CONTROL_FLOW for c in type(error).__mro__):
                phase, error = "end", None  # an interrupt or a jump to the parent graph
            else:
                error = error_info(error)
        # forced: a span whose start was admitted must be closed on the worker, queue full or not.
        # An `end_*`'s first argument is the output: text counts by its length.
        client.defer(
            _finish, self, key, phase, error, time.time_ns() if now is None else now, end, *args,
            size=ENVELOPE_BYTES + held_size(args[0]) if args and type(args[0]) in SIZED else DEFER_UNIT,
            force=True,
        )

    def _abandon(self, key: Any, entry: _Entry) -> None:
        """Evicted by the registry (its end never came): close the span as unfinished."""
        self._first_token.pop(key, None)
        self._close(key, entry, "error", ABANDONED, None, None)

    def _internal_error(self, where: str, exc: BaseException) -> None:
        try:
            self._get_client().report_error(f"langchain:{where}", exc)
        except Exception:  # noqa: BLE001 - never raise into LangChain
            pass

    # ------------------------------------------------------------------ on the worker's thread
    def _open(
        self, key: Any, entry: _Entry, tags: tuple[str, ...] | None, metadata: dict[str, Any] | None,
        describe: Callable[..., D.Described], held: Any, serialized: Any, name: Any, extra: Any,
    ) -> None:
        run = self._identity(key, entry)
        self._runs.born(key)  # its age counts from now (see `_start`)
        client = entry[5]
        try:
            kind, name, attrs, input, model = describe(metadata, held, serialized, name, extra)
        except Exception as exc:  # noqa: BLE001 - the span is still recorded, as what is known
            client.report_error("langchain:describe", exc)
            kind, name, attrs, input, model = _UNDESCRIBED
        spans = self._spans
        if entry[0] is not None:  # what the run adds to its parent run's tags and metadata
            up = spans.get(entry[0])
            span_tags = D.own_tags(tags, up.tags if up else None) if tags else None
            span_md = D.own_metadata(metadata, up.metadata if up else None) if metadata else None
        else:
            span_tags = self.tags + (D.own_tags(tags, None) or ()) if tags else self.tags
            span_md = D.own_metadata(metadata, None) if metadata else None
            if self.metadata:
                span_md = {**self.metadata, **span_md} if span_md else self.metadata
        span = client.start_span(
            kind, name, input=input, parent=run.parent, attributes=attrs, framework=FRAMEWORK, tags=span_tags,
            metadata=span_md, session_id=run.session_id, user_id=run.user_id, start_ns=run.start_ns,
            span_id=run.span_id, trace_id=run.trace_id, session=entry[3],
        )
        spans[key] = _Open(span, tags, metadata, model)
        if len(spans) > self._runs.max_open:  # a safety net: every admitted start is closed (`_close`)
            old = next(iter(spans))
            self._ids.pop(old, None)
            spans.pop(old).span.fail(ABANDONED)

    def _finish(
        self, run_id: Any, phase: str, error: Any, now: int, end: Callable[..., D.Ended] | None, *args: Any,
    ) -> None:
        self._ids.pop(run_id, None)
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
                    span._client.report_error("langchain:describe_end", exc)
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
            client = self._client or _state.client or _state.get_client()  # `_get_client`, inline
            if client.disabled:
                return
            self._start(client, run_id, parent_run_id, tags, metadata, D.describe_chain,
                        hold(inputs) if client.capture_content else UNSET, serialized, kwargs.get("name"),
                        parent_run_id is None)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_chain_start", exc)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        try:
            key = run_id.int if type(run_id) is UUID else run_id  # see `_key`
            entry = self._runs.take(key, None)
            if entry is not None:
                capture = entry[5].capture_content
                # A streamed chain (`stream` / `astream` / `transform`) starts with LangChain's
                # `{'input': ''}` placeholder and reports what it really consumed only here, as `inputs=`.
                self._close(key, entry, "end", None, None, D.end_chain, hold(outputs) if capture else UNSET,
                            hold(inputs) if capture and inputs is not None else UNSET)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_chain_end", exc)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        try:
            key = run_id.int if type(run_id) is UUID else run_id  # see `_key`
            entry = self._runs.take(key, None)
            if entry is not None:
                self._close(key, entry, "error", error, None, D.end_chain, UNSET,
                            hold(inputs) if entry[5].capture_content and inputs is not None else UNSET)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_chain_error", exc)

    # ------------------------------------------------------------------ models
    def on_chat_model_start(
        self, serialized: dict[str, Any] | None, messages: list[list[BaseMessage]], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            client = self._client or _state.client or _state.get_client()  # `_get_client`, inline
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
            client = self._client or _state.client or _state.get_client()  # `_get_client`, inline
            if client.disabled:
                return
            held = hold(prompts) if client.capture_content else UNSET
            self._start(client, run_id, parent_run_id, tags, metadata, D.describe_llm, held, serialized,
                        kwargs.get("name"), kwargs.get("invocation_params"))
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_start", exc)

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        try:
            key = _key(run_id)
            if (key not in self._first_token and first_chunk_has_content(token, chunk)
                    and self._runs.get(key) is not None):
                self._first_token[key] = time.time_ns()
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_new_token", exc)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            now = time.time_ns()
            key = run_id.int if type(run_id) is UUID else run_id  # see `_key`
            entry = self._runs.take(key, None)
            if entry is not None:
                # LangChain hands each callback an LLMResult of its own: held as it is
                self._close(key, entry, "end", None, now, D.end_llm, response, entry[5].capture_content, entry[1],
                            self._first_token.pop(key, None) if self._first_token else None)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_end", exc)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            now = time.time_ns()
            key = run_id.int if type(run_id) is UUID else run_id  # see `_key`
            entry = self._runs.take(key, None)
            if entry is not None:
                partial = kwargs.get("response") if entry[5].capture_content else None
                self._close(key, entry, "error", error, now, D.end_llm_failed, partial, entry[1],
                            self._first_token.pop(key, None) if self._first_token else None)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_llm_error", exc)

    # ------------------------------------------------------------------ tools
    def on_tool_start(
        self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        try:
            client = self._client or _state.client or _state.get_client()  # `_get_client`, inline
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
            key = run_id.int if type(run_id) is UUID else run_id  # see `_key`
            entry = self._runs.take(key, None)
            if entry is None:
                return
            out = hold(output) if entry[5].capture_content else UNSET
            if isinstance(output, ToolMessage) and output.status == "error":  # the tool's handle_tool_error answered
                error = {"type": "ToolError", "message": str(output.content)}
                self._close(key, entry, "error", error, now, D.end_tool, out)
            else:
                self._close(key, entry, "end", None, now, D.end_tool, out)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_tool_end", exc)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            key = run_id.int if type(run_id) is UUID else run_id  # see `_key`
            entry = self._runs.take(key, None)
            if entry is not None:
                self._close(key, entry, "error", error, None, None)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_tool_error", exc)

    # ------------------------------------------------------------------ retrievers
    def on_retriever_start(
        self, serialized: dict[str, Any] | None, query: str, *, run_id: UUID, parent_run_id: UUID | None = None,
        tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        try:
            client = self._client or _state.client or _state.get_client()  # `_get_client`, inline
            if client.disabled:
                return
            self._start(client, run_id, parent_run_id, tags, metadata, D.describe_retriever,
                        query if client.capture_content else UNSET, serialized, kwargs.get("name"), None)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_retriever_start", exc)

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        try:
            now = time.time_ns()
            key = run_id.int if type(run_id) is UUID else run_id  # see `_key`
            entry = self._runs.take(key, None)
            if entry is not None:
                self._close(key, entry, "end", None, now, D.end_retriever, hold(documents), entry[5].capture_content)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_retriever_end", exc)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            key = run_id.int if type(run_id) is UUID else run_id  # see `_key`
            entry = self._runs.take(key, None)
            if entry is not None:
                self._close(key, entry, "error", error, None, None)
        except Exception as exc:  # noqa: BLE001
            self._internal_error("on_retriever_error", exc)

    # ------------------------------------------------------------------ events
    def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        try:
            client = self._client or _state.client or _state.get_client()  # `_get_client`, inline
            key = _key(run_id)
            entry = self._runs.get(key)
            client.point(
                "custom", name=name, input=content(data) if client.capture_content else UNSET,
                parent=self._identity(key, entry) if entry is not None else CURRENT, framework=FRAMEWORK,
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
            key = _key(run_id)
            entry = handler._runs.get(key)
            if entry is not None:
                span = handler._identity(key, entry)
                if (current is not None and current.trace_id == span.trace_id
                        and getattr(current, "start_ns", 0) >= span.start_ns):
                    return None
                return span
    except Exception:  # noqa: BLE001 - a parent lookup must never break span creation
        return None
    return None


if _running_run_parent not in parent_resolvers:
    parent_resolvers.append(_running_run_parent)

