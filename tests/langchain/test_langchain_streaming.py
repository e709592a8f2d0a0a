"""Streaming (stream / astream / astream_events), batch / abatch: one aggregated output per LLM
call with time to first token, under every way of running."""

from __future__ import annotations

import time

import pytest
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from tests.conftest import Recorder, shape
from tests.langchain.lc_fakes import AGENT_SHAPE, ChatScripted, usage, weather_agent
from tracewire.integrations.langchain import TracewireCallbackHandler
from tracewire.model import attributes as A

ANSWER = "Streaming keeps the user waiting less"


def answer_model(**kwargs: object) -> ChatScripted:
    return ChatScripted(respond=lambda msgs: AIMessage(ANSWER, usage_metadata=usage(11, 6)), **kwargs)


def chain(**kwargs: object) -> object:
    prompt = ChatPromptTemplate.from_messages([("user", "{q}")])
    return prompt | answer_model(**kwargs) | StrOutputParser()


CHAIN_SHAPE = ("chain", "RunnableSequence", [
    ("chain", "ChatPromptTemplate", []), ("llm", "ChatScripted", []), ("chain", "StrOutputParser", []),
])


def check_streamed_llm(span: object, started: int, finished: int) -> None:
    attrs = span.attributes  # type: ignore[attr-defined]
    assert span.output == {"role": "assistant", "content": ANSWER}  # type: ignore[attr-defined]
    assert attrs[A.STREAMING] is True
    assert 0 < attrs[A.TTFT_MS] <= (finished - started) / 1e6
    assert attrs[A.TTFT_MS] <= span.duration_ms  # type: ignore[attr-defined]
    assert (attrs[A.USAGE_INPUT_TOKENS], attrs[A.USAGE_OUTPUT_TOKENS], attrs[A.USAGE_TOTAL_TOKENS]) == (11, 6, 17)
    assert attrs[A.RESPONSE_FINISH_REASONS] == ["stop"]
    assert attrs[A.RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"


def test_stream_chat_model_ttft_and_aggregated_output(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    t0 = time.time_ns()
    pieces = [c.content for c in answer_model().stream("hi", config={"callbacks": [handler]})]
    t1 = time.time_ns()
    assert "".join(pieces) == ANSWER and len(pieces) > 3
    (span,) = recorder.spans()
    assert (span.kind, span.name) == ("llm", "ChatScripted")
    check_streamed_llm(span, t0, t1)
    assert handler.open_runs == 0


def test_stream_chain(recorder: Recorder) -> None:
    t0 = time.time_ns()
    assert "".join(chain().stream({"q": "hi"}, config={"callbacks": [TracewireCallbackHandler()]})) == ANSWER
    t1 = time.time_ns()
    (root,) = recorder.tree()
    assert shape(root) == CHAIN_SHAPE
    check_streamed_llm(root.children[1], t0, t1)
    assert root.output == ANSWER and root.children[2].output == ANSWER
    # the real inputs, reported by LangChain only at the end of a streamed run
    assert root.input == {"q": "hi"}
    assert root.children[2].input == {"role": "assistant", "content": ANSWER}


async def test_astream_chain_ttft_and_aggregated_output(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    t0 = time.time_ns()
    out = [c async for c in chain(delay=0.002).astream({"q": "hi"}, config={"callbacks": [handler]})]
    t1 = time.time_ns()
    assert "".join(out) == ANSWER
    (root,) = recorder.tree()
    assert shape(root) == CHAIN_SHAPE and root.parent_span_id is None
    prompt, llm, parser = root.children
    assert {c.parent_span_id for c in root.children} == {root.span_id}
    assert [s.start_ns for s in root.children] == sorted(s.start_ns for s in root.children)
    assert prompt.input == {"q": "hi"} and prompt.output == [{"role": "user", "content": "hi"}] == llm.input
    assert root.output == parser.output == ANSWER  # the streamed pieces, aggregated
    assert all(s.status == "ok" for s in root.walk())
    check_streamed_llm(llm, t0, t1)
    assert llm.attributes[A.TTFT_MS] >= 2.0  # the header chunk is not a token; the first word is
    assert handler.open_runs == 0


async def test_astream_chain_records_the_real_inputs(recorder: Recorder) -> None:
    out = [c async for c in chain().astream({"q": "hi"}, config={"callbacks": [TracewireCallbackHandler()]})]
    assert "".join(out) == ANSWER
    (root,) = recorder.tree()
    assert shape(root) == CHAIN_SHAPE
    assert root.input == {"q": "hi"}
    assert root.children[2].input == {"role": "assistant", "content": ANSWER}  # the parser's aggregated input


async def test_astream_agent_messages_mode(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    agent = weather_agent()
    chunks = [c async for c in agent.astream({"messages": [("user", "weather in Lima?")]},
                                             config={"callbacks": [handler]}, stream_mode="messages")]
    assert chunks
    (root,) = recorder.tree()
    assert shape(root) == AGENT_SHAPE
    llm1, llm2 = (s for s in root.walk() if s.kind == "llm")
    # the streamed tool call is aggregated into one output message, and linked to the tool run
    assert llm1.output["tool_calls"] == [{"id": "call_Lima", "name": "get_weather", "arguments": {"city": "Lima"}}]
    assert root.children[1].children[0].attributes[A.TOOL_CALL_ID] == "call_Lima"
    assert llm2.output == {"role": "assistant", "content": "The weather: sunny in Lima"}
    for span in (llm1, llm2):
        assert span.attributes[A.STREAMING] is True and span.attributes[A.TTFT_MS] > 0
    assert [s.attributes[A.USAGE_TOTAL_TOKENS] for s in (llm1, llm2)] == [19, 39]
    assert handler.open_runs == 0


async def test_astream_events(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    kinds = [e["event"] async for e in chain().astream_events({"q": "hi"}, config={"callbacks": [handler]},
                                                               version="v2")]
    assert "on_chat_model_stream" in kinds
    (root,) = recorder.tree()
    assert [c.name for c in root.children] == ["ChatPromptTemplate", "ChatScripted", "StrOutputParser"]
    llm = root.children[1]
    assert llm.output == {"role": "assistant", "content": ANSWER} and llm.attributes[A.TTFT_MS] > 0
    assert handler.open_runs == 0


def test_batch_and_invoke_are_not_streaming(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    assert chain().batch([{"q": "a"}, {"q": "b"}, {"q": "c"}], config={"callbacks": [handler]}) == [ANSWER] * 3
    roots = recorder.tree()
    assert [shape(r) for r in roots] == [CHAIN_SHAPE] * 3
    assert len({r.trace_id for r in roots}) == 3
    assert sorted(r.input["q"] for r in roots) == ["a", "b", "c"]
    for r in roots:
        assert r.children[1].input == [{"role": "user", "content": r.input["q"]}]
        assert A.TTFT_MS not in r.children[1].attributes
    assert handler.open_runs == 0


async def test_abatch(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    assert await chain(delay=0.001).abatch([{"q": "a"}, {"q": "b"}], config={"callbacks": [handler]}) == [ANSWER] * 2
    roots = recorder.tree()
    assert sorted(r.children[1].input[0]["content"] for r in roots) == ["a", "b"]
    assert handler.open_runs == 0


def test_stream_failing_midway_keeps_partial_output(recorder: Recorder) -> None:
    model = answer_model(fail_with=TimeoutError("stream stalled"), fail_after_chunks=2)
    handler = TracewireCallbackHandler()
    with pytest.raises(TimeoutError):
        for _ in model.stream("hi", config={"callbacks": [handler]}):
            pass
    (span,) = recorder.spans()
    assert span.status == "error" and span.error["type"] == "TimeoutError"
    assert span.output == {"role": "assistant", "content": "Streaming keeps "}
    assert span.attributes[A.TTFT_MS] > 0
    assert handler.open_runs == 0


def test_stream_abandoned_by_consumer_is_closed(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    prompt = ChatPromptTemplate.from_messages([("user", "{q}")])
    stream = (prompt | answer_model()).stream({"q": "hi"}, config={"callbacks": [handler]})
    next(stream)  # the header chunk
    next(stream)  # the first word
    stream.close()
    llm = next(s for s in recorder.spans() if s.kind == "llm")
    # the consumer stopped early: the LLM run ends with LangChain's GeneratorExit and what streamed so far
    assert llm.status == "error" and llm.error["type"] == "GeneratorExit"
    assert llm.output == {"role": "assistant", "content": "Streaming "}
    assert handler.open_runs == 0
