"""`TracewireCallbackHandler`: LangChain / LangGraph callbacks -> tracewire spans.

One instance serves any number of concurrent runs: every piece of per-run state lives in a
`SpanRegistry` keyed by LangChain's `run_id`, and is freed at the run's end or error (or, for a
run whose end never comes, evicted after `run_ttl` seconds / beyond `max_open_runs`).

The hooks run on the user's hot path, so they do only what must happen when they fire: read
what the context says (the current tracewire span and session, a root's parent and session),
`hold` the run's raw arguments (containers copied, LangChain's objects kept) and hand them to the
client's worker with `Client.defer`, in order. The rest is `runs`: the run's identity, worked out
the first time it is needed, and its span, built and closed on the worker from what `extract`
makes of the held arguments. The hooks' per-hook cost is counted by
benchmarks/langchain_instructions.py: they call no helper they can write out inline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult

from tracewire.adapters import (
    ABANDONED,
    CURRENT,
    DEFER_UNIT,
    ENVELOPE_BYTES,
    SIZED,
    UNSET,
    Client,
    SpanRegistry,
    current_session,
    current_span,
    error_info,
    held_size,
    hold,
    hook_failed,
    state,
)
from tracewire.adapters.sdk import Claim, claim_model_call
from tracewire.integrations.langchain.extract import (
    Described,
    Ended,
    content,
    describe_chain,
    describe_chat_model,
    describe_llm,
    describe_retriever,
    describe_tool,
    end_chain,
    end_llm,
    end_llm_failed,
    end_retriever,
    end_tool,
    first_chunk_has_content,
)
from tracewire.integrations.langchain.runs import (
    FRAMEWORK,
    Entry,
    Opened,
    Run,
    finish_run,
    identity,
    key_of,
    open_run,
    track,
)

# LangGraph control flow (interrupts, Command(graph=PARENT)) travels as exceptions: not failures.
_CONTROL_FLOW = frozenset({"GraphBubbleUp", "GraphInterrupt", "ParentCommand", "NodeInterrupt"})


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
        self._runs: SpanRegistry[Entry] = SpanRegistry(
            max_open=max_open_runs, ttl=run_ttl, names=("max_open_runs", "run_ttl"), on_evict=self._abandon)
        # ... their identities once decided (until the worker closes their span) ...
        self._ids: dict[Any, Run] = {}
        self._first_token: dict[Any, int] = {}  # LLM runs streaming: when the first content came
        self._lost: set[Any] = set()  # runs whose start a full queue refused: their end is dropped too
        # ... and their spans, on the worker's: every run that leaves `_runs` is closed here too
        self._spans: dict[Any, Opened] = {}
        # model runs recording their model call: the model SDK's own instrumentation stands back
        # (tracewire.adapters.sdk's rule); released when the run ends
        self._claims: dict[Any, Claim] = {}
        track(self)

    @property
    def open_runs(self) -> int:
        """Runs started and not yet ended (per-run state held by this handler)."""
        return len(self._runs)

    # ------------------------------------------------------------------ on the caller's thread
    def _start(
        self, where: str, run_id: UUID, parent_run_id: UUID | None, tags: list[str] | None,
        metadata: dict[str, Any] | None, describe: Callable[..., Described], raw: Any, how: str,
        serialized: Any, name: Any, extra: Any,
    ) -> None:
        """Open a run (every start hook is this call): `describe(metadata, held, serialized, name,
        extra)` works out its span on the worker, `held` being its content: `raw` held now ("hold"),
        its first item held ("first"), or `raw` itself ("as is": a str), and UNSET when content is
        not captured. Only what the context says now is read here; the run's identity is worked
        out later (`runs.identity`)."""
        try:
            client = self._client or state.client or state.get_client()  # `active_client()`, inline
            if client.disabled:
                return
            if not client.capture_content:
                held = UNSET
            elif how == "hold":
                held = hold(raw)
            elif how == "first":  # a chat model's messages: one list per prompt, and it has one prompt
                held = hold(raw[0]) if raw else UNSET
            else:
                held = raw
            now = time.time_ns()
            key = run_id.int if type(run_id) is UUID else run_id  # `key_of`, inline
            sess = current_session.get()
            pkey = None
            if parent_run_id is not None:
                pkey = parent_run_id.int if type(parent_run_id) is UUID else parent_run_id
                if self._runs.get(pkey) is None:
                    pkey = None  # a parent this handler never saw: a root here
            entry: Entry
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
            # Into the registry without a call, before the worker can take the run up: its age starts
            # then (`open_run`), or now if its start is refused.
            runs = self._runs
            runs.spans[key] = entry
            # LangChain's tags and metadata are copied like the content: the worker reads them later.
            # The size: the default, unless the held content is text that counts by its length.
            if not client.defer(
                open_run, self, key, entry, tuple(tags) if tags else None, dict(metadata) if metadata else None,
                describe, held, serialized, name, extra,
                size=ENVELOPE_BYTES + held_size(held) if type(held) in SIZED else DEFER_UNIT,
            ):
                self._lost.add(key)
                runs.born(key)
            elif len(runs.spans) > runs.max_open:
                runs.born(key)
        except Exception as exc:  # noqa: BLE001
            hook_failed(FRAMEWORK, where, exc, self._client)

    def _close(
        self, where: str, run_id: Any, phase: str, error: Any, now: int | None, end: Callable[..., Ended] | None,
        output: Any, inputs: Any, how: str, entry: Entry | None = None,
    ) -> None:
        """End a run (every end hook is this call): hand its end ("end") or failure ("error") to
        the worker, where `end(model, output, inputs, capture, start_ns, first_token_ns)` works out
        its output and attributes (None: it has none). `output` is held now if content is captured
        ("hold"), or whether it is or not ("always"), or kept "as is" (LangChain hands each callback
        an LLMResult of its own); `inputs` (what a streamed chain really consumed) is held when not
        None, else UNSET. `entry`: a run already taken out of the registry (evicted)."""
        try:
            key = run_id.int if type(run_id) is UUID else run_id  # `key_of`, inline
            if self._claims:
                claim = self._claims.pop(key, None)
                if claim is not None:
                    claim.release()
            if entry is None:
                entry = self._runs.take(key, None)
                if entry is None:
                    return  # a run this handler never saw, or one already ended
            client = entry[5]
            if self._lost and key in self._lost:  # its start was refused: its end is dropped too
                self._lost.discard(key)
                self._ids.pop(key, None)
                self._first_token.pop(key, None)
                client.count_dropped("queue_full")
                return
            capture = client.capture_content
            if how == "hold":
                output = hold(output) if capture else UNSET
            elif how == "always":
                output = hold(output)
            inputs = hold(inputs) if capture and inputs is not None else UNSET
            if error is not None and isinstance(error, BaseException):  # described now: its traceback changes later
                if any(c.__name__ in _CONTROL_FLOW for c in type(error).__mro__):
                    phase, error = "end", None  # an interrupt or a jump to the parent graph
                else:
                    error = error_info(error)
            # forced: a span whose start was admitted must be closed on the worker, queue full or not.
            # The output is what counts against the queue's bytes: text by its length.
            client.defer(
                finish_run, self, key, phase, error, time.time_ns() if now is None else now, end, output, inputs,
                capture, entry[1], self._first_token.pop(key, None) if self._first_token else None,
                size=ENVELOPE_BYTES + held_size(output) if type(output) in SIZED else DEFER_UNIT, force=True,
            )
        except Exception as exc:  # noqa: BLE001
            hook_failed(FRAMEWORK, where, exc, self._client)

    def _abandon(self, key: Any, entry: Entry) -> None:
        """Evicted by the registry (its end never came): close the span as unfinished."""
        self._close("abandon", key, "error", ABANDONED, None, None, UNSET, None, "as is", entry)

    # ------------------------------------------------------------------ chains, graphs, nodes
    def on_chain_start(
        self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
        tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        self._start("on_chain_start", run_id, parent_run_id, tags, metadata, describe_chain, inputs, "hold",
                    serialized, kwargs.get("name"), parent_run_id is None)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        # A streamed chain (`stream` / `astream` / `transform`) starts with LangChain's
        # `{'input': ''}` placeholder and reports what it really consumed only here, as `inputs=`.
        self._close("on_chain_end", run_id, "end", None, None, end_chain, outputs, inputs, "hold")

    def on_chain_error(self, error: BaseException, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        self._close("on_chain_error", run_id, "error", error, None, end_chain, UNSET, inputs, "as is")

    # ------------------------------------------------------------------ models
    def on_chat_model_start(
        self, serialized: dict[str, Any] | None, messages: list[list[BaseMessage]], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start("on_chat_model_start", run_id, parent_run_id, tags, metadata, describe_chat_model, messages,
                    "first", serialized, kwargs.get("name"), kwargs.get("invocation_params"))
        self._claim(run_id)

    def on_llm_start(
        self, serialized: dict[str, Any] | None, prompts: list[str], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start("on_llm_start", run_id, parent_run_id, tags, metadata, describe_llm, prompts, "hold", serialized,
                    kwargs.get("name"), kwargs.get("invocation_params"))
        self._claim(run_id)

    def _claim(self, run_id: UUID) -> None:
        """The model call this run makes is recorded by its span: claim it from the model SDK's
        instrumentation (the handler runs inline, in the context that makes the call)."""
        key = key_of(run_id)
        if self._runs.get(key) is not None:
            self._claims[key] = claim_model_call()

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        try:
            key = key_of(run_id)
            if (key not in self._first_token and first_chunk_has_content(token, chunk)
                    and self._runs.get(key) is not None):
                self._first_token[key] = time.time_ns()
        except Exception as exc:  # noqa: BLE001
            hook_failed(FRAMEWORK, "on_llm_new_token", exc, self._client)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._close("on_llm_end", run_id, "end", None, time.time_ns(), end_llm, response, None, "as is")

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        # what streamed before the failure, if anything
        self._close("on_llm_error", run_id, "error", error, time.time_ns(), end_llm_failed, kwargs.get("response"),
                    None, "as is")

    # ------------------------------------------------------------------ tools
    def on_tool_start(
        self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        # a tool called with a dict has it as `inputs`; `input_str` is its str()
        self._start("on_tool_start", run_id, parent_run_id, tags, metadata, describe_tool,
                    input_str if inputs is None else inputs, "as is" if inputs is None else "hold", serialized,
                    kwargs.get("name"), kwargs.get("tool_call_id"))

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        # a ToolMessage with status "error": the tool's handle_tool_error answered
        error = ({"type": "ToolError", "message": str(output.content)}
                 if isinstance(output, ToolMessage) and output.status == "error" else None)
        self._close("on_tool_end", run_id, "end" if error is None else "error", error, time.time_ns(), end_tool,
                    output, None, "hold")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close("on_tool_error", run_id, "error", error, None, None, UNSET, None, "as is")

    # ------------------------------------------------------------------ retrievers
    def on_retriever_start(
        self, serialized: dict[str, Any] | None, query: str, *, run_id: UUID, parent_run_id: UUID | None = None,
        tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        self._start("on_retriever_start", run_id, parent_run_id, tags, metadata, describe_retriever, query, "as is",
                    serialized, kwargs.get("name"), None)

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        # held whether content is captured or not: its length is the document count
        self._close("on_retriever_end", run_id, "end", None, time.time_ns(), end_retriever, documents, None,
                    "always")

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close("on_retriever_error", run_id, "error", error, None, None, UNSET, None, "as is")

    # ------------------------------------------------------------------ events
    def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        try:
            client = self._client or state.client or state.get_client()  # `active_client()`, inline
            key = key_of(run_id)
            entry = self._runs.get(key)
            client.point(
                "custom", name=name, input=content(data) if client.capture_content else UNSET,
                parent=identity(self, key, entry) if entry is not None else CURRENT, framework=FRAMEWORK,
            )
        except Exception as exc:  # noqa: BLE001
            hook_failed(FRAMEWORK, "on_custom_event", exc, self._client)
