"""The handler never raises into LangChain and never changes what LangChain returns."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda

import tracewire
from tests.conftest import Recorder
from tests.langchain.lc_fakes import ChatScripted, usage
from tracewire.integrations.langchain import TracewireCallbackHandler
from tracewire.sinks.memory import MemorySink


class Weird:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __reduce__(self) -> Any:
        raise TypeError("not picklable")


GARBAGE: list[Any] = [None, 1, "x", [], {}, [[]], [[None]], Weird(), {"a": Weird()}, threading.Lock(), b"\xff"]


@pytest.mark.parametrize("payload", GARBAGE, ids=lambda p: type(p).__name__)
def test_every_hook_survives_garbage(payload: Any) -> None:
    client = tracewire.init(sink=[MemorySink()], flush_interval=0.01)
    handler = TracewireCallbackHandler()
    rid, child = uuid.uuid4(), uuid.uuid4()
    calls = [
        lambda: handler.on_chain_start(payload, payload, run_id=rid, metadata=payload if isinstance(payload, dict) else None),
        lambda: handler.on_chat_model_start(payload, payload, run_id=child, parent_run_id=rid, invocation_params=payload),
        lambda: handler.on_llm_start(payload, payload, run_id=child, parent_run_id=rid, invocation_params=payload),
        lambda: handler.on_llm_new_token(payload, chunk=payload, run_id=child),
        lambda: handler.on_llm_end(payload, run_id=child),
        lambda: handler.on_llm_error(payload, run_id=child, response=payload),
        lambda: handler.on_tool_start(payload, payload, run_id=child, parent_run_id=rid, inputs=payload),
        lambda: handler.on_tool_end(payload, run_id=child),
        lambda: handler.on_tool_error(payload, run_id=child),
        lambda: handler.on_retriever_start(payload, payload, run_id=child, parent_run_id=rid),
        lambda: handler.on_retriever_end(payload, run_id=child),
        lambda: handler.on_retriever_error(payload, run_id=child),
        lambda: handler.on_custom_event(payload, payload, run_id=rid),
        lambda: handler.on_chain_end(payload, run_id=rid),
        lambda: handler.on_chain_error(payload, run_id=rid),
    ]
    for call in calls:
        call()  # must not raise
    assert client.flush(10)


def test_unpicklable_run_content_is_still_recorded(recorder: Recorder) -> None:
    lock = threading.Lock()
    out = RunnableLambda(lambda x: {"lock": lock, "n": x["n"] + 1}, name="step").invoke(
        {"n": 1, "obj": Weird()}, config={"callbacks": [TracewireCallbackHandler()]})
    assert out["lock"] is lock and out["n"] == 2  # LangChain's result is untouched
    (span,) = recorder.spans()
    assert span.status == "ok" and span.output["n"] == 2 and isinstance(span.output["lock"], str)


def test_recorded_content_is_a_snapshot(recorder: Recorder) -> None:
    state = {"items": [1]}

    def mutate(x: dict[str, Any]) -> dict[str, Any]:
        x["items"].append(2)
        return x

    RunnableLambda(mutate, name="mutate").invoke(state, config={"callbacks": [TracewireCallbackHandler()]})
    (span,) = recorder.spans()
    assert span.input == {"items": [1]} and span.output == {"items": [1, 2]}


def test_recording_disabled_after_shutdown_is_a_no_op() -> None:
    tracewire.init(sink=[MemorySink()])
    tracewire.shutdown()
    handler = TracewireCallbackHandler()
    model = ChatScripted(respond=lambda msgs: AIMessage("fine", usage_metadata=usage(1, 1)))
    assert model.invoke("hi", config={"callbacks": [handler]}).content == "fine"
    assert handler.open_runs == 0


def test_capture_content_off_records_structure_and_numbers_only(tmp_path: object) -> None:
    sink = MemorySink()
    client = tracewire.init(sink=[sink], flush_interval=0.01, capture_content=False)
    model = ChatScripted(respond=lambda msgs: AIMessage("secret answer", usage_metadata=usage(3, 2)))
    model.invoke("secret question", config={"callbacks": [TracewireCallbackHandler()]})
    client.flush(10)
    assert all("input" not in e and "output" not in e for e in sink.events)
    end = next(e for e in sink.events if e["phase"] == "end")
    assert end["attributes"]["gen_ai.usage.total_tokens"] == 5


@pytest.mark.parametrize("options", [{"max_open_runs": 0}, {"run_ttl": 0}, {"run_ttl": "1h"}])
def test_bad_state_bounds_are_refused_naming_the_option(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        TracewireCallbackHandler(**options)


def test_content_is_recorded_as_it_was_when_the_hook_fired(recorder: Recorder) -> None:
    from langchain_core.messages import HumanMessage

    handler = TracewireCallbackHandler()
    run = uuid.uuid4()
    state = {"messages": [HumanMessage("first", id="m1")]}
    handler.on_chain_start(None, state, run_id=run, name="graph")
    state["messages"].append(HumanMessage("appended after the hook"))  # what LangGraph reducers do
    out = {"answer": ["a"]}
    handler.on_chain_end(out, run_id=run)
    out["answer"].append("b")
    (span,) = recorder.spans()
    assert span.input == {"messages": [{"role": "user", "content": "first"}]}
    assert span.output == {"answer": ["a"]}


def test_runs_refused_by_a_full_queue_are_counted_start_and_end() -> None:
    sink = MemorySink()
    client = tracewire.init(sink=[sink], flush_interval=60, queue_max_events=1)
    handler = TracewireCallbackHandler()
    root, child = uuid.uuid4(), uuid.uuid4()
    handler.on_chain_start(None, {"q": 1}, run_id=root, name="root")  # queued
    handler.on_chain_start(None, {"q": 2}, run_id=child, parent_run_id=root, name="child")  # refused
    handler.on_chain_end("c", run_id=child)  # its start was lost: counted, not queued
    handler.on_chain_end("r", run_id=root)  # queued all the same: a started span is always closed
    assert handler.open_runs == 0
    assert not client.flush(10)  # the root's end event met a full queue while flush() waited
    assert [(e["name"], e["phase"]) for e in sink.events] == [("root", "start")]
    s = client.stats()
    assert (s["emitted"], s["written"], s["dropped"]) == (4, 1, {"queue_full": 3}) and s["pending"] == 0
    assert handler._spans == {}  # nothing left open on the worker


def test_sampling_keeps_or_drops_whole_langchain_traces() -> None:
    """A run's sampling is decided with its identity, on the worker: every run of a trace gets the
    same answer, a tracewire span opened inside a run follows it, and nothing is left held."""
    sink = MemorySink()
    client = tracewire.init(sink=[sink], sample_rate=0.5)
    handler = TracewireCallbackHandler()

    def tool_body(x: str) -> str:
        with tracewire.span("tool", "inner"):
            return x

    chain = RunnableLambda(tool_body) | ChatScripted(respond=lambda msgs: AIMessage("ok", usage_metadata=usage(1, 1)))
    for i in range(60):
        chain.invoke(str(i), config={"callbacks": [handler]})
    assert client.flush(10)
    traces: dict[str, set[str]] = {}
    for e in sink.events:
        traces.setdefault(e["trace_id"], set()).add(e["name"])
    # about half the 60 traces are kept, each whole: its chain, the lambda, the span inside it, the model
    assert 10 < len(traces) < 50
    assert all(names == {"RunnableSequence", "tool_body", "inner", "ChatScripted"} for names in traces.values())
    s = client.stats()
    assert s["sampled_out"] > 0 and s["emitted"] == s["written"] and s["pending"] == 0
    assert handler.open_runs == 0 and handler._ids == {} and handler._spans == {}


def test_stats_right_after_ainvoke_count_the_deferred_events_as_emitted() -> None:
    """The hooks defer their events to the worker: `stats()` counts them emitted and pending the
    moment the call returns, before the worker has run, and the count does not move once written."""
    import asyncio

    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    from tracewire.engine.stats import balanced

    sink = MemorySink()
    client = tracewire.init(sink=[sink], flush_interval=60)  # the worker waits: nothing is written yet
    model = GenericFakeChatModel(messages=iter([AIMessage("hello there")]))
    chain = RunnableLambda(lambda q: f"say: {q}") | model
    answer = asyncio.run(chain.ainvoke("hi", config={"callbacks": [TracewireCallbackHandler()]}))
    assert answer.content == "hello there"
    before = client.stats()
    assert before["written"] == 0 and before["queued_bytes"] > 0
    # the sequence, the lambda and the model: a start and an end each
    assert before["emitted"] == before["pending"] == before["queued"] == 6 and balanced(before)
    assert client.flush(10)
    after = client.stats()
    assert after["emitted"] == after["written"] == len(sink.events) == 6 and after["pending"] == 0
