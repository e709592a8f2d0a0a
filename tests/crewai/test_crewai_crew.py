"""Real CrewAI crews against the scripted OpenAI-compatible server, on the native route and on
CrewAI's LiteLLM route (`is_litellm=True`, litellm < 1.106 so its tool-call path works with
CrewAI's mcp < 2 pin): exact trees, tokens per LLM call, one `llm` span per request, failures,
tool errors, and what `uninstrument()` leaves behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

_home = tempfile.mkdtemp(prefix="tw-crewai-home-")  # CrewAI writes under HOME: never the real one
_saved_home = os.environ.get("HOME")
os.environ["HOME"] = _home
os.environ.setdefault("CREWAI_TESTING", "true")
try:
    import litellm
    from crewai import LLM, Agent, Crew, Task
    from crewai.events import crewai_event_bus
    from crewai.tools import tool
finally:
    if _saved_home is not None:
        os.environ["HOME"] = _saved_home

import tracewire  # noqa: E402
from tests.conftest import shape  # noqa: E402
from tracewire.integrations.crewai import instrument, uninstrument  # noqa: E402
from tracewire.integrations.crewai.hooks import TracewireListener  # noqa: E402
from tracewire.integrations.crewai.tracker import Tracker  # noqa: E402
from tracewire.integrations.litellm import TracewireLogger  # noqa: E402
from tracewire.integrations.litellm import hooks as litellm_logger  # noqa: E402
from tracewire.model import attributes as A  # noqa: E402
from tracewire.model.context import parent_resolvers  # noqa: E402
from tracewire.read.fold import SpanView  # noqa: E402
from tracewire.testing.openai_server import OpenAIServer, Reply, ToolCall  # noqa: E402

ROUTES = ["native", "litellm"]
# every LiteLLM callback list a logger can sit in (CrewAI resets `callbacks` on each call)
LITELLM_LISTS = ("callbacks", "input_callback", "success_callback", "failure_callback", "_async_success_callback",
                 "_async_failure_callback")
SYSTEM = {"role": "system", "content": "You are Calculator. Careful with sums.\nYour personal goal is: Add numbers"}
USER = {"role": "user", "content": "\nCurrent Task: What is 2+3?\n\nThis is the expected criteria for your final "
        "answer: a number\nyou MUST return the actual complete content as the final answer, not a summary."}
ADD_CALL = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "call_add", "name": "add", "arguments": '{"a": 2, "b": 3}'}]}
ADD_DEFINITION = {"name": "add", "description": "Add two numbers.", "parameters": {
    "properties": {"a": {"title": "A", "type": "integer"}, "b": {"title": "B", "type": "integer"}},
    "required": ["a", "b"], "type": "object", "additionalProperties": False}}


@pytest.fixture(autouse=True)
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    monkeypatch.setenv("CREWAI_TESTING", "true")


@pytest.fixture(scope="module", autouse=True)
def instrumented() -> Iterator[None]:
    instrument()
    yield
    uninstrument()


@tool("add")
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool("add")
def broken_add(a: int, b: int) -> int:
    """Add two numbers."""
    raise ValueError("adder is broken")


def make_crew(server: OpenAIServer, route: str, tools: Sequence[Any] = (add,), model: str = "openai/gpt-4o-mini") -> Crew:
    kw: dict[str, Any] = {"model": model, "base_url": server.base_url, "api_key": "sk-fake", "max_retries": 0}
    if route == "litellm":
        kw["is_litellm"] = True
    llm = LLM(**kw)
    assert llm.is_litellm is (route == "litellm")
    agent = Agent(role="Calculator", goal="Add numbers", backstory="Careful with sums.", llm=llm, tools=list(tools),
                  max_retry_limit=0)
    task = Task(description="What is 2+3?", expected_output="a number", agent=agent)
    return Crew(agents=[agent], tasks=[task])


def tool_then_answer(answer: Reply) -> list[Reply]:
    return [Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="call_add")], prompt_tokens=20, completion_tokens=7),
            answer]


def settled(recorder: Any, timeout: float = 15.0) -> list[SpanView]:
    """Bus handlers run on CrewAI's pool and LiteLLM's success hooks on its logging threads."""
    crewai_event_bus.flush(timeout)
    deadline = time.monotonic() + timeout
    while True:
        spans = recorder.spans()
        if (spans and all(s.status != "open" for s in spans)) or time.monotonic() > deadline:
            return spans
        time.sleep(0.02)


@contextlib.contextmanager
def instrumented_as(*, litellm: bool) -> Iterator[None]:
    """Swap the module's instrumentation for one with these options, restored afterwards."""
    uninstrument()
    instrument(litellm=litellm)
    try:
        yield
    finally:
        uninstrument()
        instrument()


def crew_tree(recorder: Any) -> SpanView:
    spans = settled(recorder)
    (root,) = recorder.tree()
    assert root.name == "outer"
    assert all(s.status != "open" for s in spans), [(s.kind, s.name) for s in spans if s.status == "open"]
    (crew,) = root.children
    return crew


EXPECTED = ("agent", "crew", [("chain", "What is 2+3?", [("agent", "Calculator", [
    ("llm", "gpt-4o-mini", []), ("tool", "add", []), ("llm", "gpt-4o-mini", []),
])])])


@pytest.mark.parametrize("route", ROUTES)
def test_crew_tree_tokens_and_one_span_per_request(recorder: Any, route: str) -> None:
    with OpenAIServer(tool_then_answer(Reply("The answer is 5", prompt_tokens=30, completion_tokens=4))) as srv:
        with tracewire.span("chain", "outer") as outer:
            result = make_crew(srv, route).kickoff()
        crew = crew_tree(recorder)
    assert result.raw == "The answer is 5"
    assert shape(crew) == EXPECTED
    assert crew.parent_span_id == outer.span_id and crew.trace_id == outer.trace_id
    (task,) = crew.children
    (agent,) = task.children
    first, used, second = agent.children
    llms = [s for s in recorder.spans() if s.kind == "llm"]
    assert len(llms) == len(srv.requests) == 2  # exactly one llm span per LLM request

    assert crew.status == task.status == agent.status == "ok"
    assert crew.output == task.output == agent.output == "The answer is 5"
    assert task.input["description"] == "What is 2+3?"
    assert agent.attributes[A.AGENT_NAME] == "Calculator" and "What is 2+3?" in agent.input

    for span, (tin, tout) in ((first, (20, 7)), (second, (30, 4))):
        a = span.attributes
        assert span.framework == "crewai" and span.status == "ok"
        assert (a[A.USAGE_INPUT_TOKENS], a[A.USAGE_OUTPUT_TOKENS], a[A.USAGE_TOTAL_TOKENS]) == (tin, tout, tin + tout)
        assert a[A.COST_USD] == pytest.approx(tin * 0.15e-6 + tout * 0.6e-6)
        assert a[A.REQUEST_MODEL] == "gpt-4o-mini"
        assert a[A.TOOL_DEFINITIONS] == [ADD_DEFINITION]  # CrewAI's depth-cut schema read back
    # the shared message shape (CrewAI's own `cache_breakpoint` dropped; its depth-cut tool call read back)
    assert first.input == [SYSTEM, USER]
    assert second.input == [SYSTEM, USER, ADD_CALL, {"role": "tool", "content": "5", "tool_call_id": "call_add",
                                                     "name": "add"}]
    assert [m["content"] for m in srv.requests[0].body["messages"]] == [SYSTEM["content"], USER["content"]]
    assert first.output["tool_calls"] == [{"id": "call_add", "name": "add", "arguments": '{"a": 2, "b": 3}'}]
    assert second.output == {"role": "assistant", "content": "The answer is 5"}
    assert used.input == {"a": 2, "b": 3} and used.output == "5" and used.attributes[A.TOOL_NAME] == "add"
    assert first.end_ns <= used.start_ns <= used.end_ns <= second.start_ns

    if route == "litellm":
        # LiteLLM's own data joined into the same spans (not second spans): its call id, latency
        # and the response model, although CrewAI reset `litellm.callbacks` on every call.
        assert not any(isinstance(c, TracewireLogger) for c in litellm.callbacks)
        for span in (first, second):
            assert span.metadata["litellm.call_id"]
            assert span.attributes[A.RESPONSE_MODEL] == "gpt-4o-mini" and span.attributes[A.LATENCY_MS] > 0
        assert first.attributes[A.RESPONSE_FINISH_REASONS] == ["tool_calls"]  # CrewAI emits no completion here
    else:
        assert first.metadata is None or "litellm.call_id" not in first.metadata


@pytest.mark.parametrize("route", ROUTES)
def test_failing_run_error_reaches_every_enclosing_span(recorder: Any, route: str) -> None:
    with OpenAIServer(tool_then_answer(Reply(status=500, error_message="model exploded"))) as srv:
        with tracewire.span("chain", "outer"):
            with pytest.raises(Exception, match="model exploded") as raised:
                make_crew(srv, route).kickoff()
        crew = crew_tree(recorder)
    # LiteLLM maps the 500 (an `invalid_request_error` body) to BadRequestError
    exc_type = {"native": "openai.InternalServerError", "litellm": "litellm.exceptions.BadRequestError"}[route]
    assert f"{type(raised.value).__module__}.{type(raised.value).__qualname__}" == exc_type
    assert shape(crew) == EXPECTED
    (task,) = crew.children
    (agent,) = task.children
    first, used, failed = agent.children
    llms = [s for s in recorder.spans() if s.kind == "llm"]
    assert len(llms) == len(srv.requests) == 2  # the native route reports the failure twice: still one span
    assert first.status == used.status == "ok"
    for span in (failed, agent, task, crew):
        assert span.status == "error", (span.kind, span.name)
        assert "model exploded" in span.error["message"], span.error
    assert crew.error["type"] == "crewai.CrewKickoffFailed" and agent.error["type"] == "crewai.AgentExecutionError"
    assert task.error["type"] == exc_type  # TaskFailedEvent carries the exception class
    assert failed.input == [SYSTEM, USER, ADD_CALL, {"role": "tool", "content": "5", "tool_call_id": "call_add",
                                                     "name": "add"}]
    if route == "litellm":
        assert failed.error["code"] == "500" and failed.metadata["litellm.call_id"]


BAD_JSON = ("Error: Failed to parse tool arguments as JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 9 (char 8). Please provide valid JSON arguments for the 'add' tool.")
TOOL_FAILURES = {
    # a tool that raises: CrewAI feeds the error text to the model and goes on
    "raises": ([ToolCall("add", {"a": 2, "b": 3}, id="call_add")], broken_add, (
        "add", {"a": 2, "b": 3}, None, {"type": "ValueError", "message": "adder is broken", "stacktrace": None},
        "Error executing tool: adder is broken")),
    # the model asks for a tool the agent does not have
    "unknown tool": ([ToolCall("multiply", {"a": 2, "b": 3}, id="call_add")], add, (
        "multiply", {"a": 2, "b": 3}, "Tool not found", {
            "type": "crewai.ToolSelectionError", "message": "Tool not found", "stacktrace": None,
            "reason": "unknown_tool", "code": "multiply"}, "Tool not found")),
    # arguments that are not JSON: CrewAI emits no tool usage events, only its failure report
    "arguments not JSON": ([ToolCall("add", '{"a": 2,', id="call_add")], add, (
        "add", '{"a": 2,', None, {
            "type": "crewai.ToolValidateInputError", "stacktrace": None, "reason": "invalid_input",
            "code": "json_decode_error", "message": BAD_JSON}, BAD_JSON)),
}


@pytest.mark.parametrize("case", list(TOOL_FAILURES))
@pytest.mark.parametrize("route", ROUTES)
def test_tool_errors_on_the_function_calling_path(recorder: Any, route: str, case: str) -> None:
    calls, the_tool, (name, args, output, error, told) = TOOL_FAILURES[case]
    with OpenAIServer([Reply(tool_calls=calls), Reply("gave up")]) as srv:
        with tracewire.span("chain", "outer"):
            assert make_crew(srv, route, tools=[the_tool]).kickoff().raw == "gave up"  # the run goes on
        crew = crew_tree(recorder)
    assert shape(crew) == ("agent", "crew", [("chain", "What is 2+3?", [("agent", "Calculator", [
        ("llm", "gpt-4o-mini", []), ("tool", name, []), ("llm", "gpt-4o-mini", []),
    ])])])
    first, used, second = crew.children[0].children[0].children
    assert (used.status, used.error, used.input, used.output) == ("error", error, args, output)
    assert used.attributes == {A.TOOL_NAME: name, A.OPERATION_NAME: "execute_tool"}
    assert first.end_ns <= used.start_ns <= used.end_ns <= second.start_ns
    # the model is told what went wrong, and only the tool failed
    assert srv.requests[1].body["messages"][-1]["content"] == told
    assert second.input[-1] == {"role": "tool", "content": told, "tool_call_id": "call_add", "name": name}
    assert {s.status for s in crew.walk() if s is not used} == {"ok"}


def test_tool_errors_on_the_react_path(recorder: Any) -> None:
    """A model without function calling (here: a LiteLLM-route model LiteLLM knows nothing of)
    gets the ReAct prompt; CrewAI re-parses a bad action several times, emitting its selection /
    validation error each time: still one tool span per action."""
    replies = [Reply('Thought: multiply\nAction: multiply\nAction Input: {"a": 2, "b": 3}'),
               Reply("Thought: add\nAction: add\nAction Input: 12"), Reply("Thought: done\nFinal Answer: 5")]
    with OpenAIServer(replies) as srv:
        with tracewire.span("chain", "outer"):
            crew = make_crew(srv, "litellm", model="openai/react-only-model")
            assert not crew.agents[0].llm.supports_function_calling()
            assert crew.kickoff().raw == "5"
        root = crew_tree(recorder)
    assert shape(root) == ("agent", "crew", [("chain", "What is 2+3?", [("agent", "Calculator", [
        ("llm", "react-only-model", []), ("tool", "multiply", []), ("llm", "react-only-model", []),
        ("tool", "add", []), ("llm", "react-only-model", []),
    ])])])
    _, unknown, _, invalid, _ = root.children[0].children[0].children
    assert (unknown.status, unknown.error["type"], unknown.input) == ("error", "crewai.ToolSelectionError", {})
    assert unknown.error["message"].startswith("Action 'multiply' don't exist, these are the only available Actions:")
    assert (invalid.status, invalid.error, invalid.input) == ("error", {
        "type": "crewai.ToolValidateInputError", "stacktrace": None,
        "message": "Tool input must be a valid dictionary in JSON or Python literal format"}, "12")
    assert len(srv.requests) == 3


def test_litellm_route_without_the_logger_closes_the_llm_spans_crewai_leaves_open(recorder: Any) -> None:
    """`instrument(litellm=False)`: on the LiteLLM route CrewAI emits no completion for a tool-call
    answer; that span ends when the tool starts, marked unfinished, with what CrewAI knew."""
    with instrumented_as(litellm=False):
        assert installed_hooks()["litellm loggers"] == installed_hooks()["call owners"] == []
        with OpenAIServer(tool_then_answer(Reply("The answer is 5", prompt_tokens=30, completion_tokens=4))) as srv:
            with tracewire.span("chain", "outer"):
                assert make_crew(srv, "litellm").kickoff().raw == "The answer is 5"
            crew = crew_tree(recorder)
    assert shape(crew) == EXPECTED
    first, used, second = crew.children[0].children[0].children
    request = {A.OPERATION_NAME: "chat", A.REQUEST_MODEL: "gpt-4o-mini", A.PROVIDER_NAME: "openai",
               A.REQUEST_STOP: ["\nObservation:"], A.TOOL_DEFINITIONS: [ADD_DEFINITION],
               A.INVOCATION_PARAMS: {"stop_sequences": ["\nObservation:"], "stream": False}}
    assert (first.status, first.output, first.metadata) == ("ok", None, None)
    assert first.attributes == {**request, A.UNFINISHED: True}  # no answer, no usage: CrewAI never said
    assert first.end_ns == used.start_ns
    assert first.input == [SYSTEM, USER]
    assert (used.status, used.output) == ("ok", "5")
    assert (second.status, second.output, second.metadata) == ("ok", {"role": "assistant", "content": "The answer is 5"}, None)
    assert second.attributes == {
        **request, A.USAGE_INPUT_TOKENS: 30, A.USAGE_OUTPUT_TOKENS: 4, A.USAGE_TOTAL_TOKENS: 34,
        A.COST_USD: pytest.approx(30 * 0.15e-6 + 4 * 0.6e-6), A.RESPONSE_FINISH_REASONS: ["stop"],
        A.RESPONSE_ID: second.attributes[A.RESPONSE_ID],
    }
    assert second.attributes[A.RESPONSE_ID].startswith("chatcmpl-")
    assert len([s for s in recorder.spans() if s.kind == "llm"]) == len(srv.requests) == 2


def test_litellm_call_inside_a_tool_nests_under_the_tool(recorder: Any) -> None:
    """A span the tool's own code starts with parent=CURRENT (here: a LiteLLM call recorded by
    the attached logger) nests under CrewAI's tool span."""

    @tool("ask")
    def ask(question: str) -> str:
        """Ask a helper model."""
        reply = litellm.completion("openai/gpt-4o-mini", [{"role": "user", "content": question}],
                                   api_base=srv.base_url, api_key="sk-fake")
        return str(reply.choices[0].message.content)

    replies = [Reply(tool_calls=[ToolCall("ask", {"question": "hi?"})]), Reply("helper says hi"), Reply("done")]
    with OpenAIServer(replies) as srv:
        agent = Agent(role="Asker", goal="ask", backstory="b", tools=[ask], max_retry_limit=0,
                      llm=LLM(model="openai/gpt-4o-mini", base_url=srv.base_url, api_key="sk-fake"))
        with tracewire.span("chain", "outer"):
            Crew(agents=[agent], tasks=[Task(description="Ask", expected_output="x", agent=agent)]).kickoff()
        crew = crew_tree(recorder)
    assert shape(crew) == ("agent", "crew", [("chain", "Ask", [("agent", "Asker", [
        ("llm", "gpt-4o-mini", []), ("tool", "ask", [("llm", "gpt-4o-mini", [])]), ("llm", "gpt-4o-mini", []),
    ])])])
    inner = crew.children[0].children[0].children[1].children[0]
    assert inner.framework == "litellm" and inner.output == {"role": "assistant", "content": "helper says hi"}


def installed_hooks() -> dict[str, Any]:
    """What instrument() can have left in CrewAI, LiteLLM and tracewire."""
    return {
        "bus handlers": [(cls.__name__, h) for cls, hs in crewai_event_bus._sync_handlers.items() for h in hs
                         if isinstance(getattr(h, "__self__", None), TracewireListener)],
        "litellm loggers": [(n, c) for n in LITELLM_LISTS for c in getattr(litellm, n) if isinstance(c, TracewireLogger)],
        "call owners": [o for o in litellm_logger._owners if isinstance(o, Tracker)],
        "parent resolvers": [r for r in parent_resolvers if isinstance(getattr(r, "__self__", None), Tracker)],
    }


@pytest.mark.parametrize("route", ROUTES)
def test_instrument_is_idempotent_and_uninstrument_removes_everything(recorder: Any, route: str) -> None:
    instrument()  # already instrumented by the module fixture: no second listener
    probe = TracewireListener(Tracker())  # what one listener registers
    probe.remove(crewai_event_bus)
    hooks = installed_hooks()
    assert len(hooks["call owners"]) == len(hooks["parent resolvers"]) == 1
    assert sorted(n for n, _ in hooks["litellm loggers"]) == sorted(LITELLM_LISTS[1:])  # one in each, not `callbacks`
    assert sorted(n for n, _ in hooks["bus handlers"]) == sorted(c.__name__ for c in probe._routes)
    uninstrument()
    uninstrument()
    assert installed_hooks() == {"bus handlers": [], "litellm loggers": [], "call owners": [], "parent resolvers": []}
    # A logger of the user's own, in the lists CrewAI leaves alone: with no stale call owner left
    # to claim the LiteLLM route's calls, it records them itself; nothing comes from CrewAI.
    mine = TracewireLogger()
    for name in LITELLM_LISTS[1:4]:
        getattr(litellm, name).append(mine)
    try:
        with OpenAIServer([Reply("5")]) as srv:
            assert make_crew(srv, route).kickoff().raw == "5"
            crewai_event_bus.flush(10)
        plain = litellm.completion("gpt-4o-mini", [{"role": "user", "content": "hi"}], mock_response="plain")
        assert plain.choices[0].message.content == "plain"
        spans = settled(recorder)
    finally:
        for name in LITELLM_LISTS:
            getattr(litellm, name)[:] = [c for c in getattr(litellm, name) if c is not mine]
        instrument()
    assert all(s.framework == "litellm" and s.kind == "llm" and s.parent_span_id is None for s in spans)
    outputs = sorted(s.output["content"] for s in spans)
    assert outputs == (["5", "plain"] if route == "litellm" else ["plain"])
    recorder.sink.clear()
    with OpenAIServer([Reply("5")]) as srv:
        make_crew(srv, route).kickoff()
        spans = settled(recorder)
    assert sorted(s.kind for s in spans) == ["agent", "agent", "chain", "llm"]


def test_handlers_running_in_any_order_build_the_same_tree(recorder: Any) -> None:
    """The bus runs handlers on a thread pool: a child's start, or an end, can be handled before
    its parent's start. Replays a real run's events (each in the context it was emitted in) in
    reverse and in shuffled order through a fresh listener."""
    import contextvars
    import random

    captured: list[tuple[Any, Any, contextvars.Context]] = []

    def capture(source: Any, event: Any) -> None:
        captured.append((source, event, contextvars.copy_context()))

    uninstrument()
    probe = TracewireListener(Tracker())
    classes = list(probe._routes)
    probe.remove(crewai_event_bus)
    for cls in classes:
        crewai_event_bus.on(cls)(capture)
    try:
        with OpenAIServer(tool_then_answer(Reply("The answer is 5", prompt_tokens=30, completion_tokens=4))) as srv:
            make_crew(srv, "native").kickoff()
            crewai_event_bus.flush(10)
    finally:
        for cls in classes:
            crewai_event_bus.off(cls, capture)
        instrument()
    captured.sort(key=lambda c: c[1].emission_sequence)
    assert len(captured) == 12
    orders = [list(reversed(captured)), random.Random(7).sample(captured, len(captured))]
    for order in orders:
        listener = TracewireListener(Tracker())
        listener.remove(crewai_event_bus)  # driven directly below, not by the bus
        for source, event, ctx in order:
            ctx.run(listener._handle, source, event)
    roots = recorder.tree()
    assert [shape(r) for r in roots] == [EXPECTED, EXPECTED]
    for root in roots:
        assert all(s.status == "ok" for s in root.walk())
        llms = [s for s in root.walk() if s.kind == "llm"]
        assert [s.attributes[A.USAGE_INPUT_TOKENS] for s in llms] == [20, 30]
