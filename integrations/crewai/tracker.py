"""CrewAI event bus -> tracewire spans.

The bus runs sync handlers in a thread pool, so a child's event can be handled before its
parent's, and an end before its start. Each handler runs in a copy of the emitter's context,
which holds CrewAI's event-scope stack (the ids of every enclosing crew / task / agent / LLM /
tool start). So ids are allocated per CrewAI start event, on first sight by whichever handler
sees it: a span's parent is known from the stack alone, whatever order the handlers run in.
Ends that arrive before their start wait (bounded) until the start is recorded.

LLM calls: keyed by CrewAI's `call_id` (the native route emits `LLMCallFailedEvent` twice for
one failure, the second with a wrong scope). On the LiteLLM route the LiteLLM logger claims the
call from the calling thread (the open `llm_call_started` on top of the stack) and hands over
usage, cost and the answer; that call then ends when LiteLLM reports, since CrewAI emits no
completion for an answer that is a tool call. So each request is one span on both routes.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

# CrewAI's event-scope stack (ids of the enclosing scope-starting events), a contextvar.
from crewai.events.event_context import _event_id_stack  # crewai: required by the package

from tracewire.adapters import (
    CURRENT,
    UNSET,
    Recent,
    Span,
    SpanContext,
    SpanRegistry,
    active_client,
    current_session,
    new_span_id,
    new_trace_id,
)
from tracewire.integrations.crewai import extract as C
from tracewire.model import attributes as A

_FRAMEWORK = "crewai"
SPAN_STARTS = {
    "crew_kickoff_started": "agent", "task_started": "chain", "agent_execution_started": "agent",
    "lite_agent_execution_started": "agent", "llm_call_started": "llm", "tool_usage_started": "tool",
}
_AGENT_STARTS = ("agent_execution_started", "lite_agent_execution_started")
_MAX_TRACKED = 20_000


def _event_stack() -> tuple[tuple[str, str], ...]:
    return _event_id_stack.get()


@dataclass
class End:
    output: Any = UNSET
    attributes: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    end_ns: int | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class LlmCall:
    agent: str | None  # enclosing agent execution's start event id
    bus: End | None = None  # what CrewAI's completed / failed event said
    litellm: End | None = None  # what the LiteLLM logger reported


@dataclass
class AgentRun:
    llms: set[str] = field(default_factory=set)  # open LLM spans (start event ids)


class Tracker:
    """All per-run state, behind one lock; every table bounded."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ids: Recent[str, SpanContext] = Recent(_MAX_TRACKED)  # start event id -> allocated ids
        self._outer: Recent[str, SpanContext | None] = Recent(_MAX_TRACKED)  # root start id -> tracewire parent
        self._spans: SpanRegistry[Span] = SpanRegistry(max_open=10_000, ttl=3600.0)  # start event id -> open Span (+ state)
        self._pending: Recent[str, End] = Recent(_MAX_TRACKED)  # start id / "call:"+call_id -> early end
        self._pending_litellm: Recent[str, End] = Recent(_MAX_TRACKED)  # llm start id -> LiteLLM's report
        self._finished: Recent[str, None] = Recent(_MAX_TRACKED)  # ended start ids / call ids (dedupe)
        self._calls: Recent[str, str] = Recent(_MAX_TRACKED)  # CrewAI call_id -> llm start event id
        self._joined: Recent[str, None] = Recent(_MAX_TRACKED)  # llm start ids the LiteLLM logger claimed
        self._local = threading.local()  # .outer: this thread is asking for the parent outside the crew
        # ToolUsage (one per agent action) -> the rejection kinds already recorded for it
        self._rejections: weakref.WeakKeyDictionary[Any, set[tuple[str, str]]] = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ ids and parents
    def _outer_parent(self) -> SpanContext | None:
        """What a span started with parent=CURRENT here would get from everyone but this tracker:
        the tracewire span current where the crew was kicked off (the handler runs in a copy of
        that context), as other adapters' resolvers (LangChain's) refine it, else an outside
        (OpenTelemetry) parent. `resolve` stands aside meanwhile: it would ask for this again."""
        self._local.outer = True
        try:
            return active_client().parent_of(CURRENT)
        finally:
            self._local.outer = False

    def _alloc(self, event_id: str, parent: SpanContext | None, root: bool) -> SpanContext:
        ctx = self._ids.get(event_id)
        if ctx is not None:
            return ctx
        if root:
            parent = self._outer_parent()
            self._outer.remember(event_id, parent)
        if parent is None:
            trace_id = new_trace_id()
            sess = current_session.get()
            ctx = SpanContext(trace_id, new_span_id(), active_client().is_sampled(trace_id),
                              sess.session_id if sess else None, sess.user_id if sess else None)
        else:
            ctx = SpanContext(parent.trace_id, new_span_id(), parent.sampled, parent.session_id, parent.user_id)
        self._ids.remember(event_id, ctx)
        return ctx

    def _parent_of(self, scopes: list[tuple[str, str]]) -> SpanContext | None:
        """Ids of the innermost enclosing span-making scope, allocating the chain down to it."""
        parent: SpanContext | None = None
        for i, (eid, _) in enumerate(scopes):
            parent = self._alloc(eid, parent, root=i == 0)
        return parent

    @staticmethod
    def scopes(exclude: str | None = None) -> list[tuple[str, str]]:
        """Enclosing span-making scopes (outermost first) in the emitter's context."""
        return [(eid, t) for eid, t in _event_stack() if t in SPAN_STARTS and eid != exclude]

    def resolve(self, current: SpanContext | None) -> SpanContext | None:
        """Parent resolver: a span started with parent=CURRENT inside a crew (a tool's own spans,
        a LiteLLM call made by a tool) nests under the innermost CrewAI span, unless a tracewire
        span opened inside the crew is already current."""
        scopes = self.scopes()
        if not scopes or getattr(self._local, "outer", False):  # outside a crew: the common case first
            return None
        with self._lock:
            outer = self._outer.get(scopes[0][0], current)
            if current is not None and (outer is None or current.span_id != outer.span_id):
                return None
            return self._parent_of(scopes)

    # ------------------------------------------------------------------ starts and ends
    def start(self, event: Any, kind: str, name: str, input: Any = UNSET,
              attributes: dict[str, Any] | None = None, state: Any = None) -> None:
        key = event.event_id
        scopes = self.scopes(exclude=key)
        with self._lock:
            if key in self._finished or self._spans.get(key) is not None:
                return
            parent = self._parent_of(scopes)
            ctx = self._alloc(key, parent, root=parent is None)
            if parent is None:
                parent = self._outer.get(key)
            client = active_client()
            span = client.start_span(
                kind, name, input=input if client.capture_content else UNSET, parent=parent,
                attributes=attributes, framework=_FRAMEWORK, start_ns=C.ts_ns(event),
                span_id=ctx.span_id, trace_id=ctx.trace_id,
            )
            self._spans.put(key, span, state)
            early = self._pending.pop(key, None)
        if early is not None:
            self.end(key, early)

    def end(self, key: str | None, end: End) -> None:
        if not key:
            return
        with self._lock:
            if key in self._finished:
                return
            entry = self._spans.pop(key)
            if entry is None:  # its start is still being handled on another thread
                if key not in self._pending:
                    self._pending.remember(key, end)
                return
            self._finished.remember(key, None)
            span, state = entry
            if isinstance(state, AgentRun):
                self._close_llms(state, end.end_ns)
        _finish(span, end)

    def first_rejection(self, source: Any, kind: str, tool_name: str) -> bool:
        """True the first time `source` (a ToolUsage) reports this rejection of this tool."""
        with self._lock:
            try:
                seen = self._rejections.setdefault(source, set())
            except TypeError:  # not weak-referenceable: nothing to deduplicate against
                return True
            if (kind, tool_name) in seen:
                return False
            seen.add((kind, tool_name))
            return True

    def open_agent(self, scopes: list[tuple[str, str]]) -> AgentRun | None:
        for eid, t in reversed(scopes):
            if t in _AGENT_STARTS:
                state = self._spans.state(eid)
                return state if isinstance(state, AgentRun) else None
        return None

    # ------------------------------------------------------------------ LLM calls
    def llm_start(self, event: Any, source: Any) -> None:
        scopes = self.scopes(exclude=event.event_id)
        agent_id = next((eid for eid, t in reversed(scopes) if t in _AGENT_STARTS), None)
        name, attrs, messages = C.llm_start(event, active_client().capture_content)
        self.start(event, "llm", name, messages, attrs, LlmCall(agent_id))
        with self._lock:
            key = event.event_id
            if self._spans.get(key) is None:
                return
            if event.call_id:
                self._calls.remember(event.call_id, key)
            agent = self._spans.state(agent_id) if agent_id else None
            if isinstance(agent, AgentRun):
                agent.llms.add(key)
            bus = self._pending.pop("call:" + event.call_id, None) if event.call_id else None
            litellm = self._pending_litellm.pop(key, None)
        if bus is not None or litellm is not None:
            self.llm_update(key, bus=bus, litellm=litellm)

    def llm_bus_end(self, event: Any, end: End) -> None:
        call_id = event.call_id
        with self._lock:
            if not call_id:
                return
            key = self._calls.get(call_id)
            if key is None:  # the start is still being handled; first report wins (failures repeat)
                if "call:" + call_id not in self._pending:
                    self._pending.remember("call:" + call_id, end)
                return
        self.llm_update(key, bus=end)

    def claim(self) -> str | None:
        """LiteLLM logger, calling thread: the CrewAI LLM call this LiteLLM request belongs to."""
        stack = _event_stack()
        if not stack or stack[-1][1] != "llm_call_started":
            return None
        key = stack[-1][0]
        with self._lock:
            self._joined.remember(key, None)
        return key

    def finish(self, token: Any, attributes: dict[str, Any], output: Any, error: dict[str, Any] | None,
               metadata: dict[str, Any] | None, end_ns: int | None) -> None:
        """LiteLLM logger: the claimed call's result (usage, cost, answer, error)."""
        self.llm_update(str(token), litellm=End(UNSET if output is None else output, attributes, error, end_ns, metadata))

    def llm_update(self, key: str, *, bus: End | None = None, litellm: End | None = None) -> None:
        with self._lock:
            state = self._spans.state(key)
            if not isinstance(state, LlmCall):
                if litellm is not None and key not in self._finished:
                    self._pending_litellm.remember(key, litellm)
                return
            if bus is not None and state.bus is None:
                state.bus = bus
            if litellm is not None:
                state.litellm = litellm
            if state.litellm is None and (state.bus is None or key in self._joined):
                return  # LiteLLM is still to report: it has the usage, the cost and tool-call answers
            entry = self._spans.pop(key)
            self._finished.remember(key, None)  # a repeated failure event now finds nothing open
            agent = self._spans.state(state.agent) if state.agent else None
            if isinstance(agent, AgentRun):
                agent.llms.discard(key)
        if entry is not None:
            _finish(entry[0], _merge(state.bus, state.litellm))

    def _close_llms(self, agent: AgentRun, end_ns: int | None) -> None:
        """LLM spans CrewAI started but never ended (a tool-call answer on the LiteLLM route
        without the LiteLLM logger) end when the agent moves on. Called under the lock."""
        for key in list(agent.llms):
            state = self._spans.state(key)
            if not isinstance(state, LlmCall) or key in self._joined:
                continue
            agent.llms.discard(key)
            entry = self._spans.pop(key)
            self._finished.remember(key, None)
            if entry is not None:
                end = state.bus or End(attributes={A.UNFINISHED: True})
                _finish(entry[0], End(end.output, end.attributes, end.error, end.end_ns or end_ns))

    def close_llms_of(self, scopes: list[tuple[str, str]], end_ns: int | None) -> None:
        with self._lock:
            agent = self.open_agent(scopes)
            if agent is not None:
                self._close_llms(agent, end_ns)

    def close_all(self) -> None:
        self._spans.close_all()


def _merge(bus: End | None, litellm: End | None) -> End:
    if litellm is None:
        return bus or End()
    if bus is None:
        return litellm
    return End(
        litellm.output if litellm.output not in (UNSET, None) else bus.output,
        {**(bus.attributes or {}), **(litellm.attributes or {})},
        litellm.error or bus.error, litellm.end_ns or bus.end_ns, litellm.metadata,
    )


def _finish(span: Span, end: End) -> None:
    if end.metadata:
        span.metadata = {**(span.metadata or {}), **end.metadata}
    if end.error is not None:
        span.fail(end.error, attributes=end.attributes, end_ns=end.end_ns, output=end.output)
    else:
        span.end(end.output, attributes=end.attributes, end_ns=end.end_ns)
