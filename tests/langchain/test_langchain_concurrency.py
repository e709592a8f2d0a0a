"""One handler, many concurrent runs: no cross-talk, and no per-run state left behind."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate

import tracewire
from tests.conftest import Recorder, shape
from tests.langchain.lc_fakes import AGENT_SHAPE, ChatScripted, usage, weather_agent, weather_agent_responder
from tracewire.integrations.langchain import TracewireCallbackHandler
from tracewire.model import attributes as A
from tracewire.sinks.memory import MemorySink

CITIES = [f"City{i:02d}" for i in range(20)]


def check_agent_trace(root: object, city: str, session_id: str | None = None) -> None:
    """One agent run's exact tree: shape, parent links, node steps, tokens and the tool-call link,
    all from this run's own question (cross-talk between runs would show up here)."""
    assert shape(root) == AGENT_SHAPE  # type: ignore[arg-type]
    spans = list(root.walk())  # type: ignore[attr-defined]
    assert len({s.trace_id for s in spans}) == 1
    assert {s.session_id for s in spans} == {session_id}
    model1, tools, model2 = root.children  # type: ignore[attr-defined]
    for node in (model1, tools, model2):
        assert node.parent_span_id == root.span_id  # type: ignore[attr-defined]
    assert [(n.attributes[A.NODE], n.attributes[A.STEP]) for n in (model1, tools, model2)] == [
        ("model", 1), ("tools", 2), ("model", 3),
    ]
    (llm1,), (tool_span,), (llm2,) = model1.children, tools.children, model2.children
    assert llm1.parent_span_id == model1.span_id and llm2.parent_span_id == model2.span_id
    assert tool_span.parent_span_id == tools.span_id
    assert llm1.input == [{"role": "user", "content": f"weather in {city}?"}]
    assert llm1.output["tool_calls"] == [{"id": f"call_{city}", "name": "get_weather", "arguments": {"city": city}}]
    assert tool_span.attributes[A.TOOL_CALL_ID] == f"call_{city}"
    assert tool_span.input == {"city": city} and tool_span.output == f"sunny in {city}"
    assert llm2.input[-1] == {"role": "tool", "content": f"sunny in {city}", "tool_call_id": f"call_{city}",
                              "name": "get_weather"}
    assert llm2.output["content"] == f"The weather: sunny in {city}"
    # weather_agent_responder's usage: (12, 7) for the tool call, (30, 9) for the answer
    tokens = [(s.attributes[A.USAGE_INPUT_TOKENS], s.attributes[A.USAGE_OUTPUT_TOKENS], s.attributes[A.USAGE_TOTAL_TOKENS])
              for s in (llm1, llm2)]
    assert tokens == [(12, 7, 19), (30, 9, 39)]
    assert all(s.status == "ok" for s in spans)


async def test_20_concurrent_ainvoke_on_one_handler(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    agent = weather_agent(ChatScripted(respond=weather_agent_responder, delay=0.003))

    async def ask(city: str) -> str:
        out = await agent.ainvoke({"messages": [("user", f"weather in {city}?")]},
                                   config={"callbacks": [handler], "configurable": {"thread_id": f"thread-{city}"}})
        return str(out["messages"][-1].content)

    answers = await asyncio.gather(*(ask(c) for c in CITIES))
    assert answers == [f"The weather: sunny in {c}" for c in CITIES]
    roots = recorder.tree()
    assert len(roots) == 20 and len({r.trace_id for r in roots}) == 20
    for root in roots:
        check_agent_trace(root, root.session_id.removeprefix("thread-"), root.session_id)
    assert sorted(r.session_id for r in roots) == sorted(f"thread-{c}" for c in CITIES)
    # the runs really overlapped
    first_end = min(r.end_ns for r in roots)
    assert sum(r.start_ns < first_end for r in roots) > 1
    assert handler.open_runs == 0


async def test_concurrent_ainvoke_each_under_its_own_tracewire_span(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    agent = weather_agent(ChatScripted(respond=weather_agent_responder, delay=0.002))

    async def ask(city: str) -> None:
        async with tracewire.span("chain", f"request-{city}"):
            await agent.ainvoke({"messages": [("user", f"weather in {city}?")]}, config={"callbacks": [handler]})

    await asyncio.gather(*(ask(c) for c in CITIES[:8]))
    roots = recorder.tree()
    assert sorted(r.name for r in roots) == sorted(f"request-{c}" for c in CITIES[:8])
    for root in roots:
        (agent_root,) = root.children
        assert root.parent_span_id is None and agent_root.parent_span_id == root.span_id
        check_agent_trace(agent_root, root.name.removeprefix("request-"))


def test_threads_share_one_handler(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    agent = weather_agent()
    errors: list[BaseException] = []

    def worker(city: str) -> None:
        try:
            agent.invoke({"messages": [("user", f"weather in {city}?")]},
                         config={"callbacks": [handler], "configurable": {"thread_id": f"thread-{city}"}})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in CITIES[:10]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    roots = recorder.tree()
    assert len(roots) == 10
    for root in roots:
        check_agent_trace(root, root.session_id.removeprefix("thread-"), root.session_id)
    assert handler.open_runs == 0


def test_per_run_state_is_empty_after_1000_runs(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | ChatScripted(
        respond=lambda msgs: AIMessage("ok", usage_metadata=usage(1, 1)))
    for i in range(1000):
        chain.invoke({"q": str(i)}, config={"callbacks": [handler]})
        if i % 100 == 0:
            assert handler.open_runs == 0
    assert handler.open_runs == 0
    assert len(handler._runs.spans) == 0
    roots = recorder.tree()
    assert len(roots) == 1000 and all(len(r.children) == 2 for r in roots)
    assert handler._spans == {}  # and the worker's side, once what was deferred has run
    assert handler._ids == {} and handler._first_token == {} and handler._lost == set()


def test_runs_whose_end_never_comes_are_evicted_not_leaked(tmp_path: object) -> None:
    sink = MemorySink()
    client = tracewire.init(sink=[sink], flush_interval=0.01)
    handler = TracewireCallbackHandler(max_open_runs=5)
    # starts with no ends: what a killed worker leaves behind
    for _ in range(12):
        handler.on_chain_start(None, {"x": 1}, run_id=uuid.uuid4(), name="orphan")
    assert handler.open_runs == 5
    client.flush(10)
    closed = [e for e in sink.events if e["phase"] == "error"]
    assert len(closed) == 7 and {e["error"]["type"] for e in closed} == {"tracewire.Unfinished"}
    ttl = TracewireCallbackHandler(run_ttl=0.05)
    ttl.on_chain_start(None, {}, run_id=uuid.uuid4(), name="a")
    client.flush(10)  # a run's age counts from when the worker takes up its start
    time.sleep(0.06)
    ttl.on_chain_start(None, {}, run_id=uuid.uuid4(), name="b")
    client.flush(10)
    assert ttl.open_runs == 1  # the stale one was closed as unfinished when the next one was taken up
    client.flush(10)
    assert len(handler._spans) == 5 and len(handler._ids) == 5  # the five still open, nothing more
