"""The run bookkeeping behind tracewire's LlamaIndex handlers (`hooks`).

`Tracker` owns all state: one tracewire span per kept LlamaIndex span (see `extract.kind_of`),
plus a link from every skipped span to its nearest kept ancestor so children re-attach there.
The event handler only forwards events to it: LLM output, usage, time to first token and the
true end of a streamed call arrive as events, after the LlamaIndex span may already have exited.
Every entry point (`enter`, `exit`, `drop`, `on_event`) is guarded: a failure is counted
(`hook_failed`), never raised into LlamaIndex.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections import OrderedDict
from typing import Any

from tracewire.adapters import CURRENT, UNSET, Span, SpanRegistry, active_client, current_span, hook_failed
from tracewire.integrations.llamaindex import extract as X
from tracewire.model import attributes as A
from tracewire.model.genai import ttft_ms

FRAMEWORK = "llamaindex"


class _Run:
    """State of one kept span until it is closed."""

    __slots__ = (
        "key", "span", "kind", "workflow", "token", "exited", "end_ns", "response", "last_response", "usage", "first_token_ns",
        "model", "aliases", "embed_count", "embed_dim", "output", "capture",
    )

    def __init__(
        self, key: str, span: Span, kind: str, workflow: bool = False, model: str | None = None, capture: bool = True,
    ) -> None:
        self.key = key  # the LlamaIndex span id it is registered under
        self.span = span
        self.capture = capture  # whether its client records content (the client's, when it started)
        self.kind = kind
        self.workflow = workflow  # a Workflow.run span: its steps are its children
        self.token: Any = None  # resets tracewire's current span when the LlamaIndex span exits
        self.exited = False  # the LlamaIndex span exited with a stream; the end event closes it
        self.end_ns: int | None = None
        self.response: Any = None  # from the LLM end event
        self.last_response: Any = None  # latest streamed chunk
        self.usage: dict[str, Any] | None = None  # from a streamed chunk that carried usage
        self.first_token_ns: int | None = None
        self.model = model
        self.aliases: list[str] | None = None  # skipped span ids kept alive for this run's events
        self.embed_count = 0
        self.embed_dim: int | None = None
        self.output: Any = UNSET  # from step.output / workflow.output events


class _Link:
    """A skipped span: where its children attach."""

    __slots__ = ("run", "tool_call_id", "agent_name")

    def __init__(self, run: _Run | None, tool_call_id: str | None = None, agent_name: str | None = None) -> None:
        self.run = run
        self.tool_call_id = tool_call_id  # an agent's call_tool step: the call its tool span answers
        self.agent_name = agent_name  # an agent's run_agent_step: which agent of an AgentWorkflow runs


class _Links:
    """Bounded map span id -> _Link; the oldest entries go first if spans are never closed."""

    def __init__(self, max_size: int = 50_000) -> None:
        self._d: OrderedDict[str, _Link] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_size

    def put(self, key: str, link: _Link) -> None:
        with self._lock:
            self._d[key] = link
            if len(self._d) > self._max:
                self._d.popitem(last=False)

    def get(self, key: str) -> _Link | None:
        return self._d.get(key)

    def pop(self, key: str) -> _Link | None:
        with self._lock:
            return self._d.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


class Tracker:
    """All state and logic of the span handler, kept out of pydantic for cheap attribute access."""

    def __init__(self, max_open: int = 10_000, ttl: float = 3600.0) -> None:
        self.runs: SpanRegistry[Span] = SpanRegistry(max_open=max_open, ttl=ttl, names=("max_open_spans", "span_ttl"))
        # Skipped spans outnumber kept ones several to one (every private method has a span).
        self.links = _Links(5 * max_open)

    def _lookup(self, span_id: str | None) -> tuple[_Run | None, _Link | None]:
        if span_id is None:
            return None, None
        run = self.runs.state(span_id)
        if run is not None:
            return run, None
        link = self.links.get(span_id)
        return (link.run, link) if link is not None else (None, None)

    @staticmethod
    def _parent(run: _Run | None) -> Any:
        if run is None or run.span.ended:
            return CURRENT  # a root LlamaIndex span (or a stale parent id): nest under the caller's span
        cur = current_span.get()
        # A tracewire span opened inside the kept ancestor (e.g. in a tool's code) is closer.
        if (
            cur is not None and cur is not run.span and isinstance(cur, Span) and not cur.ended
            and cur.trace_id == run.span.trace_id and cur.start_ns >= run.span.start_ns
        ):
            return cur
        return run.span

    def enter(
        self, id_: str, bound_args: inspect.BoundArguments, instance: Any, parent_id: str | None,
        tags: dict[str, Any] | None,
    ) -> None:
        """A LlamaIndex span opened: start a tracewire span if it is kept, else link it to the
        nearest kept ancestor."""
        try:
            parent_run, parent_link = self._lookup(parent_id)
            kind = X.kind_of(instance, id_)
            args = bound_args.arguments
            if kind is None:
                # A step of a plain workflow is a chain; an agent's steps are the agent's own business.
                if instance is None and parent_run is not None and parent_run.workflow and parent_run.kind == "chain" \
                        and self.runs.state(parent_id or "") is parent_run:
                    kind = "chain"
                else:
                    ev = args.get("ev")
                    if ev is None:
                        self.links.put(id_, _Link(parent_run))
                    else:
                        self.links.put(id_, _Link(parent_run, getattr(ev, "tool_id", None),
                                                  getattr(ev, "current_agent_name", None)))
                    return
            elif kind in X.COLLAPSE_NESTED and parent_run is not None and parent_run.kind == kind:
                self.links.put(id_, _Link(parent_run))
                return
            client = active_client()
            capture = client.capture_content
            name, attrs, inp, model, workflow = X.describe(
                kind, instance, id_, args, tags, parent_link.agent_name if parent_link is not None else None,
                parent_link.tool_call_id if parent_link is not None else None, capture,
            )
            span = client.start_span(
                kind, name, input=inp, parent=self._parent(parent_run), attributes=attrs, framework=FRAMEWORK,
            )
            run = _Run(id_, span, kind, workflow, model, capture)
            self.runs.put(id_, span, run)
            # Current for the span's duration, so spans that user code (a tool's function, a custom
            # component) or another integration opens inside it nest under it.
            run.token = current_span.set(span)
        except Exception as exc:  # noqa: BLE001 - never break the host
            hook_failed(FRAMEWORK, "new_span", exc)

    @staticmethod
    def _leave(run: _Run) -> None:
        token, run.token = run.token, None
        if token is not None:
            try:
                current_span.reset(token)
            except ValueError:  # exited in another context (a future's callback): nothing to restore here
                pass

    def exit(self, id_: str, result: Any) -> None:
        """A LlamaIndex span exited: close its span, unless the LLM call it made is still streaming."""
        try:
            run = self.runs.state(id_)
            if run is not None:
                self._leave(run)
            else:
                link = self.links.pop(id_)
                if link is not None and link.run is not None and link.run.kind == "llm" and X.is_stream(result):
                    # an inner streaming call: its events still name this span id
                    self.links.put(id_, link)
                    link.run.aliases = [*(link.run.aliases or ()), id_]
                return
            if run.kind == "llm" and run.end_ns is None and X.is_stream(result):
                run.exited = True  # the stream has not been read yet: the end event closes the span
                return
            self.runs.pop(id_)
            self._finish(run, result)
        except Exception as exc:  # noqa: BLE001
            hook_failed(FRAMEWORK, "exit_span", exc)

    def drop(self, id_: str, err: BaseException | None) -> None:
        """A LlamaIndex span dropped (it raised, or its dispatcher shut down): fail its span."""
        try:
            entry = self.runs.pop(id_)
            if entry is None:
                self.links.pop(id_)
                return
            _, run = entry
            self._leave(run)
            self._release(run)
            run.span.fail(err if err is not None else "span dropped", attributes=self._llm_attrs(run) or None)
        except Exception as exc:  # noqa: BLE001
            hook_failed(FRAMEWORK, "drop_span", exc)

    def _release(self, run: _Run) -> None:
        for alias in run.aliases or ():
            self.links.pop(alias)

    def _llm_attrs(self, run: _Run) -> dict[str, Any]:
        if run.kind != "llm":
            return {}
        resp = run.response if run.response is not None else run.last_response
        attrs = X.llm_response_attributes(resp, run.model, run.usage) if resp is not None else {}
        if run.first_token_ns is not None:
            attrs.update(ttft_ms(run.span.start_ns, run.first_token_ns))
        return attrs

    def _finish(self, run: _Run, result: Any) -> None:
        self._release(run)
        span = run.span
        capture = run.capture
        kind = run.kind
        attrs: dict[str, Any] = {}
        out: Any = UNSET
        if kind == "llm":
            if run.response is None and not X.is_stream(result):
                run.response = result
            attrs = self._llm_attrs(run)
            resp = run.response if run.response is not None else run.last_response
            if capture and resp is not None:
                out = X.llm_output(resp)
        elif kind in ("retriever", "reranker"):
            if isinstance(result, list):
                attrs[A.DOCUMENT_COUNT] = len(result)
                if capture:
                    out = X.nodes_output(result)
        elif kind == "embedding":
            count, dim = (run.embed_count, run.embed_dim) if run.embed_count else X.embedding_shape(result)
            attrs[A.EMBEDDING_COUNT] = count
            if dim is not None:
                attrs[A.EMBEDDINGS_DIMENSION] = dim
        elif kind == "tool":
            if getattr(result, "is_error", False):
                exc = getattr(result, "exception", None)
                content = getattr(result, "content", None)
                span.fail(exc if exc is not None else {"type": "ToolError", "message": str(content)},
                          output=content if capture else UNSET)
                return
            if capture:
                content = getattr(result, "content", UNSET)
                out = content if content is not UNSET else result
        elif capture:
            if run.workflow:
                out = X.workflow_output(result)
            elif run.output is not UNSET:
                out = run.output
            else:
                out = X.chain_output(result)
        span.end(out, attributes=attrs or None, end_ns=run.end_ns)

    # ------------------------------------------------------------------ events
    def on_event(self, event: Any) -> None:
        """A LlamaIndex event: handed to the run of the span it names, if that run is kept."""
        try:
            method = _event_method(type(event))
            if method is None:
                return
            span_id = event.span_id
            run, _ = self._lookup(span_id)
            if run is not None:
                method(self, run, span_id, event)
        except Exception as exc:  # noqa: BLE001 - never break the host
            hook_failed(FRAMEWORK, "event", exc)

    def _on_progress(self, run: _Run, span_id: str, event: Any) -> None:
        if run.kind != "llm":
            return
        resp = event.response
        if run.first_token_ns is None and X.has_token(resp):
            run.first_token_ns = time.time_ns()
        run.last_response = resp
        usage = X.usage_of(resp)
        if usage:
            run.usage = usage

    def _on_llm_end(self, run: _Run, span_id: str, event: Any) -> None:
        if run.kind != "llm":
            return
        run.end_ns = time.time_ns()
        if event.response is not None:
            run.response = event.response
        if run.exited and self.runs.pop(run.key) is not None:
            self._finish(run, None)

    def _on_exception(self, run: _Run, span_id: str, event: Any) -> None:
        if run.kind != "llm" or not run.exited:
            return  # a span still running reports its error through the drop hook
        if self.runs.pop(run.key) is None:
            return
        self._release(run)
        exc = event.exception
        run.end_ns = time.time_ns()
        if isinstance(exc, GeneratorExit) or type(exc).__name__ == "CancelledError":
            # the caller stopped reading the stream: not an LLM failure, but not a whole answer either
            attrs = {**self._llm_attrs(run), A.UNFINISHED: True}
            resp = run.last_response
            out = X.llm_output(resp) if resp is not None and run.capture else UNSET
            run.span.end(out, attributes=attrs, end_ns=run.end_ns)
        else:
            run.span.fail(exc, attributes=self._llm_attrs(run) or None, end_ns=run.end_ns)

    def _on_embedding_end(self, run: _Run, span_id: str, event: Any) -> None:
        if run.kind != "embedding":
            return
        vectors = event.embeddings or ()
        run.embed_count += len(vectors)
        if run.embed_dim is None and vectors:
            run.embed_dim = len(vectors[0])

    def _on_step_output(self, run: _Run, span_id: str, event: Any) -> None:
        if run.kind == "chain" and self.runs.state(span_id) is run:
            run.output = event.output


_EVENT_BY_NAME = {
    "LLMChatInProgressEvent": Tracker._on_progress,
    "LLMCompletionInProgressEvent": Tracker._on_progress,
    "LLMChatEndEvent": Tracker._on_llm_end,
    "LLMCompletionEndEvent": Tracker._on_llm_end,
    "ExceptionEvent": Tracker._on_exception,
    "EmbeddingEndEvent": Tracker._on_embedding_end,
    "step.output": Tracker._on_step_output,
    "workflow.output": Tracker._on_step_output,
}
_event_methods: dict[type, Any] = {}


def _event_method(tp: type) -> Any:
    """Handler for an event class, looked up by `class_name()` once per class (no imports needed)."""
    try:
        return _event_methods[tp]
    except KeyError:
        pass
    try:
        method = _EVENT_BY_NAME.get(tp.class_name())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        method = None
    if len(_event_methods) < 1024:
        _event_methods[tp] = method
    return method
