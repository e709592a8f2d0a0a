"""The CrewAI adapter (`instrument()` / `uninstrument()`) and its bus listener: one handler,
dispatching each concrete CrewAI event class to the tracker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crewai.events import BaseEventListener  # (guarded by the package __init__)
from crewai.events.event_bus import CrewAIEventsBus

from tracewire.adapters import (
    UNSET,
    Adapter,
    add_parent_resolver,
    companion,
    hook_failed,
    remove_parent_resolver,
)
from tracewire.integrations.crewai import extract as C
from tracewire.integrations.crewai.tracker import AgentRun, End, Tracker
from tracewire.model import attributes as A

_FRAMEWORK = "crewai"
_MAX_NAME = 120
# LiteLLM's callback lists CrewAI leaves alone (it resets `litellm.callbacks` on every call).
_LITELLM_LISTS = ("input_callback", "success_callback", "failure_callback",
                  "_async_success_callback", "_async_failure_callback")


class CrewAIAdapter(Adapter):
    """The listener on CrewAI's event bus, the tracker's parent resolver and, with `litellm`, the
    LiteLLM adapter, declared by name (the "litellm" entry of `tracewire.adapters.ADAPTERS`), with
    the tracker as the owner of the calls CrewAI already records. Its own instance, not the
    process-wide one: teardown removes exactly what setup added."""

    framework = _FRAMEWORK

    def __init__(self, *, litellm: bool = True) -> None:
        self.litellm = litellm
        self.tracker = Tracker()
        self.listener: TracewireListener | None = None
        self.companion: Adapter | None = None

    def setup(self) -> None:
        self.listener = TracewireListener(self.tracker)  # registers itself on the bus
        add_parent_resolver(self.tracker.resolve)
        if self.litellm:  # None when LiteLLM is not installed: CrewAI's native route only
            self.companion = companion("litellm", lists=_LITELLM_LISTS, owner=self.tracker)

    def teardown(self) -> None:
        from crewai.events import crewai_event_bus

        if self.listener is not None:
            self.listener.remove(crewai_event_bus)
        remove_parent_resolver(self.tracker.resolve)
        if self.companion is not None:
            self.companion.teardown()
        self.tracker.close_all()


def instrument(*, litellm: bool = True) -> None:
    """Start recording CrewAI runs (idempotent). `litellm=False`: do not attach the LiteLLM logger."""
    CrewAIAdapter.install(litellm=litellm)


def uninstrument() -> None:
    """Remove everything `instrument()` added; spans still open are closed as unfinished."""
    CrewAIAdapter.uninstall()


def _short(text: Any) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= _MAX_NAME else s[: _MAX_NAME - 1] + "…"


class TracewireListener(BaseEventListener):
    """Registers `_handle` for every event class it maps; `remove()` takes them all off again."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self._registered: list[type] = []
        self._routes: dict[type, Callable[[Any, Any], None]] = {}
        super().__init__()

    def setup_listeners(self, crewai_event_bus: CrewAIEventsBus) -> None:
        import crewai.events as ev

        routes: dict[str, Callable[[Any, Any], None]] = {
            "CrewKickoffStartedEvent": self._crew_started,
            "CrewKickoffCompletedEvent": self._crew_completed,
            "CrewKickoffFailedEvent": self._failed("crewai.CrewKickoffFailed"),
            "TaskStartedEvent": self._task_started,
            "TaskCompletedEvent": self._completed,
            "TaskFailedEvent": self._failed("crewai.TaskFailed"),
            "AgentExecutionStartedEvent": self._agent_started,
            "AgentExecutionCompletedEvent": self._agent_completed,
            "AgentExecutionErrorEvent": self._failed("crewai.AgentExecutionError"),
            "LiteAgentExecutionStartedEvent": self._lite_agent_started,
            "LiteAgentExecutionCompletedEvent": self._agent_completed,
            "LiteAgentExecutionErrorEvent": self._failed("crewai.LiteAgentExecutionError"),
            "LLMCallStartedEvent": self._llm_started,
            "LLMCallCompletedEvent": self._llm_completed,
            "LLMCallFailedEvent": self._llm_failed,
            "ToolUsageStartedEvent": self._tool_started,
            "ToolUsageFinishedEvent": self._tool_finished,
            "ToolUsageErrorEvent": self._failed("crewai.ToolUsageError"),
            "ToolSelectionErrorEvent": self._tool_rejected("crewai.ToolSelectionError"),
            "ToolValidateInputErrorEvent": self._tool_rejected("crewai.ToolValidateInputError"),
            "ToolFailureDetectedEvent": self._tool_failure_detected,
        }
        for name, route in routes.items():
            cls = getattr(ev, name)
            self._routes[cls] = route
            crewai_event_bus.on(cls)(self._handle)
            self._registered.append(cls)

    def remove(self, bus: CrewAIEventsBus) -> None:
        for cls in self._registered:
            bus.off(cls, self._handle)
        self._registered.clear()

    # One bound method for every class: the bus keeps handlers in per-class sets.
    def _handle(self, source: Any, event: Any) -> None:
        try:
            route = self._routes.get(type(event))
            if route is not None:
                route(source, event)
        except Exception as exc:  # noqa: BLE001 - never break the host (the bus would only print it)
            hook_failed(_FRAMEWORK, getattr(event, "type", "?"), exc)

    # ------------------------------------------------------------------ crew / task / agent
    def _crew_started(self, source: Any, event: Any) -> None:
        name = event.crew_name or getattr(source, "name", None) or "crew"
        attrs = {A.OPERATION_NAME: "invoke_agent", A.AGENT_NAME: name}
        crew_id = getattr(source, "id", None)
        if crew_id is not None:
            attrs[A.AGENT_ID] = str(crew_id)
        self.tracker.start(event, "agent", _short(name), event.inputs if event.inputs else UNSET, attrs)

    def _crew_completed(self, source: Any, event: Any) -> None:
        attrs = {"crewai.total_tokens": event.total_tokens} if event.total_tokens else None
        self.tracker.end(event.started_event_id, End(C.text_of(event.output), attrs, end_ns=C.ts_ns(event)))

    def _task_started(self, source: Any, event: Any) -> None:
        task = event.task if event.task is not None else source
        description = getattr(task, "description", None)
        name = getattr(task, "name", None) or description or "task"
        inputs: dict[str, Any] = {"description": description}
        if getattr(task, "expected_output", None):
            inputs["expected_output"] = task.expected_output
        if event.context:
            inputs["context"] = event.context
        self.tracker.start(event, "chain", _short(name), inputs, {"crewai.task_id": str(getattr(task, "id", ""))})

    def _completed(self, source: Any, event: Any) -> None:
        self.tracker.end(event.started_event_id, End(C.text_of(getattr(event, "output", None)), end_ns=C.ts_ns(event)))

    def _failed(self, default_type: str) -> Callable[[Any, Any], None]:
        def on_failure(source: Any, event: Any) -> None:
            self.tracker.end(event.started_event_id, End(error=C.error_dict(event, default_type), end_ns=C.ts_ns(event)))

        return on_failure

    def _agent_started(self, source: Any, event: Any) -> None:
        agent = event.agent
        role = getattr(agent, "role", None) or "agent"
        attrs = {A.OPERATION_NAME: "invoke_agent", A.AGENT_NAME: role, A.AGENT_ID: str(getattr(agent, "id", ""))}
        if event.tools:
            attrs["crewai.tools"] = [getattr(t, "name", str(t)) for t in event.tools]
        self.tracker.start(event, "agent", _short(role), event.task_prompt, attrs, AgentRun())

    def _lite_agent_started(self, source: Any, event: Any) -> None:
        role = (event.agent_info or {}).get("role") or "agent"
        self.tracker.start(event, "agent", _short(role), event.messages,
                           {A.OPERATION_NAME: "invoke_agent", A.AGENT_NAME: role}, AgentRun())

    def _agent_completed(self, source: Any, event: Any) -> None:
        self.tracker.end(event.started_event_id, End(event.output, end_ns=C.ts_ns(event)))

    # ------------------------------------------------------------------ LLM calls
    def _llm_started(self, source: Any, event: Any) -> None:
        self.tracker.llm_start(event, source)

    def _llm_completed(self, source: Any, event: Any) -> None:
        name, provider = C.split_model(event.model)
        attrs = C.llm_usage(event.usage, name)
        if event.finish_reason:
            attrs[A.RESPONSE_FINISH_REASONS] = [event.finish_reason]
        if event.response_id:
            attrs[A.RESPONSE_ID] = event.response_id
        self.tracker.llm_bus_end(event, End(C.llm_output(event.response), attrs, end_ns=C.ts_ns(event)))

    def _llm_failed(self, source: Any, event: Any) -> None:
        self.tracker.llm_bus_end(event, End(error=C.error_dict(event, "crewai.LLMCallFailed"), end_ns=C.ts_ns(event)))

    # ------------------------------------------------------------------ tools
    def _tool_started(self, source: Any, event: Any) -> None:
        # The model asked for this tool: an LLM answer CrewAI never closed has ended by now.
        scopes = self.tracker.scopes(exclude=event.event_id)
        self.tracker.close_llms_of(scopes, C.ts_ns(event))
        attrs: dict[str, Any] = {A.TOOL_NAME: event.tool_name, A.OPERATION_NAME: "execute_tool"}
        if event.run_attempts:
            attrs["crewai.run_attempts"] = event.run_attempts
        self.tracker.start(event, "tool", _short(event.tool_name), event.tool_args, attrs)

    def _tool_finished(self, source: Any, event: Any) -> None:
        attrs: dict[str, Any] = {"crewai.from_cache": True} if event.from_cache else {}
        error = C.failure_error(event.failure) if event.failure is not None else None
        self.tracker.end(event.started_event_id, End(event.output, attrs or None, error, C.ts_ns(event)))

    def _tool_rejected(self, default_type: str) -> Callable[[Any, Any], None]:
        """Selection / input-validation errors (ReAct path) have no start: a tool span that failed
        at once. CrewAI re-parses the same action several times, emitting the error each time
        from the same ToolUsage: one span per ToolUsage and error kind."""

        def on_rejected(source: Any, event: Any) -> None:
            if self.tracker.first_rejection(source, default_type, event.tool_name):
                self._rejected_span(event, C.error_dict(event, default_type))

        return on_rejected

    def _tool_failure_detected(self, source: Any, event: Any) -> None:
        # Other failures arrive on the tool's own events too; a native tool call whose arguments
        # are not JSON emits only this (no ToolUsageStarted): a validation error of its own.
        failure = event.failure
        reason = getattr(failure, "reason", None)
        if getattr(reason, "value", reason) == "invalid_input" and getattr(failure, "code", None) == "json_decode_error":
            self._rejected_span(event, C.failure_error(failure))

    def _rejected_span(self, event: Any, error: dict[str, Any]) -> None:
        # The model asked for a tool: an LLM answer CrewAI never closed has ended by now.
        self.tracker.close_llms_of(self.tracker.scopes(), C.ts_ns(event))
        attrs = {A.TOOL_NAME: event.tool_name, A.OPERATION_NAME: "execute_tool"}
        self.tracker.start(event, "tool", _short(event.tool_name), event.tool_args, attrs)
        self.tracker.end(event.event_id, End(error=error, end_ns=C.ts_ns(event)))
