"""Real CrewAI crews against the scripted OpenAI-compatible server, on the native route and on
CrewAI's LiteLLM route (`is_litellm=True`, litellm < 1.106 so its tool-call path works with
CrewAI's mcp < 2 pin): exact trees, tokens per LLM call, one `llm` span per request, failures."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
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
from tracewire import attributes as A  # noqa: E402
from tracewire.fold import SpanView  # noqa: E402
from tracewire.integrations.crewai import instrument, uninstrument  # noqa: E402
from tracewire.integrations.litellm import TracewireLogger  # noqa: E402
from tracewire.testing.openai_server import OpenAIServer, Reply, ToolCall  # noqa: E402

ROUTES = ["native", "litellm"]


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


def make_crew(server: OpenAIServer, route: str) -> Crew:
    kw: dict[str, Any] = {"model": "openai/gpt-4o-mini", "base_url": server.base_url, "api_key": "sk-fake",
                          "max_retries": 0}
    if route == "litellm":
        kw["is_litellm"] = True
    llm = LLM(**kw)
    assert llm.is_litellm is (route == "litellm")
    agent = Agent(role="Calculator", goal="Add numbers", backstory="Careful with sums.", llm=llm, tools=[add],
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
        assert span.input[-1]["role"] in ("user", "tool")
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
            with pytest.raises(Exception, match="model exploded"):
                make_crew(srv, route).kickoff()
        crew = crew_tree(recorder)
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
    if route == "litellm":
        assert failed.error["code"] == "500" and failed.metadata["litellm.call_id"]


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


def test_instrument_is_idempotent_and_uninstrument_removes_everything(recorder: Any) -> None:
    instrument()  # already instrumented by the module fixture: no second listener
    lists = ("input_callback", "success_callback", "failure_callback", "_async_success_callback", "_async_failure_callback")
    assert all(sum(isinstance(c, TracewireLogger) for c in getattr(litellm, n)) == 1 for n in lists)
    uninstrument()
    uninstrument()
    try:
        assert not any(isinstance(c, TracewireLogger) for n in lists for c in getattr(litellm, n))
        with OpenAIServer([Reply("5")]) as srv:
            make_crew(srv, "native").kickoff()
            crewai_event_bus.flush(10)
        assert recorder.spans() == []
    finally:
        instrument()
    with OpenAIServer([Reply("5")]) as srv:
        make_crew(srv, "native").kickoff()
        spans = settled(recorder)
    assert sorted(s.kind for s in spans) == ["agent", "agent", "chain", "llm"]


def test_handlers_running_in_any_order_build_the_same_tree(recorder: Any) -> None:
    """The bus runs handlers on a thread pool: a child's start, or an end, can be handled before
    its parent's start. Replays a real run's events (each in the context it was emitted in) in
    reverse and in shuffled order through a fresh listener."""
    import contextvars
    import random

    from tracewire.integrations.crewai._handlers import TracewireListener
    from tracewire.integrations.crewai._listener import Tracker

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
