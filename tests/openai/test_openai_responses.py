"""The Responses API (whole, streamed, the `responses.stream()` helper) and embeddings, sync and
async, through the real `openai` client; usage and cost with cached and reasoning tokens."""

from __future__ import annotations

import pytest

import tracewire
from tests.conftest import Recorder, shape
from tests.openai.calls import aclient, client, llm_spans, only_span
from tracewire.integrations.openai import instrument
from tracewire.model import attributes as A
from tracewire.testing.openai_server import OpenAIServer, Reply, ToolCall

TOOL = [{"type": "function", "name": "add", "description": "Add two numbers",
         "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}]


def test_a_response_is_one_llm_span_with_its_function_calls(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply(tool_calls=[ToolCall("add", {"a": 1}, id="call_r1")], prompt_tokens=30, completion_tokens=8))
    with tracewire.span("agent", "responder"):
        response = client(server).responses.create(model="gpt-4.1-mini", instructions="be brief", input="add 1",
                                                   tools=TOOL, max_output_tokens=100)
    assert response.output[0].call_id == "call_r1"
    assert [shape(t) for t in recorder.tree()] == [("agent", "responder", [("llm", "gpt-4.1-mini", [])])]
    span = only_span(recorder)
    a = span.attributes
    assert a[A.OPERATION_NAME] == "responses" and a[A.REQUEST_MAX_TOKENS] == 100
    assert a[A.TOOL_DEFINITIONS][0]["name"] == "add"
    assert a[A.RESPONSE_FINISH_REASONS] == ["tool_calls"] and a[A.TOOL_CALL_IDS] == ["call_r1"]
    assert a[A.USAGE_INPUT_TOKENS] == 30 and a[A.USAGE_OUTPUT_TOKENS] == 8
    assert a[A.COST_USD] == pytest.approx((30 * 0.40 + 8 * 1.60) / 1e6)
    assert span.input == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "add 1"}]
    assert span.output == {"role": "assistant", "content": None,
                           "tool_calls": [{"id": "call_r1", "name": "add", "arguments": '{"a": 1}'}]}


def test_function_call_outputs_sent_back_are_linked_by_call_id(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("it is 1"))
    client(server).responses.create(model="gpt-4.1-mini", input=[
        {"role": "user", "content": "add 1"},
        {"type": "function_call", "call_id": "call_r1", "name": "add", "arguments": '{"a": 1}'},
        {"type": "function_call_output", "call_id": "call_r1", "output": "1"},
    ])
    span = only_span(recorder)
    assert span.attributes[A.TOOL_RESULT_IDS] == ["call_r1"]
    assert span.input[2] == {"role": "tool", "content": "1", "tool_call_id": "call_r1"}
    assert span.output == {"role": "assistant", "content": "it is 1"}


def test_a_streamed_response_yields_every_event_and_records_the_completed_one(
        server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("streamed answer", prompt_tokens=9, completion_tokens=2), Reply("one two three four"))
    cl = client(server)
    events = list(cl.responses.create(model="gpt-4.1-mini", input="hi", stream=True))
    assert [e.type for e in events][0] == "response.created" and events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    stream = cl.responses.create(model="gpt-4.1-mini", input="hi", stream=True)
    for event in stream:
        if event.type == "response.output_text.delta" and event.delta == " two":
            break
    stream.close()
    whole, part = llm_spans(recorder)
    assert whole.attributes[A.STREAM_END] == "exhausted" and whole.attributes[A.USAGE_INPUT_TOKENS] == 9
    assert whole.output == {"role": "assistant", "content": "streamed answer"} and A.TTFT_MS in whole.attributes
    assert part.attributes[A.STREAM_END] == "closed" and part.output == {"role": "assistant", "content": "one two"}


def test_the_responses_stream_helper_is_one_span(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("helped"))
    with client(server).responses.stream(model="gpt-4.1-mini", input="hi") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "helped"
    span = only_span(recorder)
    assert span.output == {"role": "assistant", "content": "helped"} and span.attributes[A.STREAM_END] == "exhausted"


async def test_async_responses_whole_streamed_and_helper(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("first"), Reply("second"), Reply("third"))
    ac = aclient(server)
    async with tracewire.span("agent", "async"):
        whole = await ac.responses.create(model="gpt-4.1-mini", input="hi")
        streamed = [e async for e in await ac.responses.create(model="gpt-4.1-mini", input="hi", stream=True)]
        async with ac.responses.stream(model="gpt-4.1-mini", input="hi") as stream:
            async for _ in stream:
                pass
    assert whole.output_text == "first" and streamed[-1].response.output_text == "second"
    assert [shape(t) for t in recorder.tree()] == [("agent", "async", [("llm", "gpt-4.1-mini", [])] * 3)]
    assert [s.output["content"] for s in llm_spans(recorder)] == ["first", "second", "third"]


def test_embeddings_sync_and_async(server: OpenAIServer, recorder: Recorder) -> None:
    import asyncio

    instrument()
    result = client(server).embeddings.create(model="text-embedding-3-small", input=["one two", "three"], dimensions=4)
    assert len(result.data) == 2 and len(result.data[0].embedding) == 4

    async def embed() -> None:
        await aclient(server).embeddings.create(model="text-embedding-3-small", input="four five six")

    asyncio.run(embed())
    first, second = llm_spans(recorder)
    assert (first.kind, first.name) == ("embedding", "text-embedding-3-small")
    assert first.input == ["one two", "three"] and first.output == {"count": 2, "dimension": 4}
    assert first.attributes[A.EMBEDDING_COUNT] == 2 and first.attributes[A.EMBEDDINGS_DIMENSION] == 4
    assert first.attributes[A.USAGE_INPUT_TOKENS] == 3
    assert first.attributes[A.COST_USD] == pytest.approx(3 * 0.02 / 1e6)
    assert second.input == "four five six" and second.attributes[A.USAGE_INPUT_TOKENS] == 3


# ------------------------------------------------------------------ usage and cost


def test_cached_and_reasoning_tokens_and_cost_chat(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("done", prompt_tokens=1000, completion_tokens=500, cached_tokens=400, reasoning_tokens=200))
    client(server).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    a = only_span(recorder).attributes
    assert a[A.USAGE_INPUT_TOKENS] == 1000 and a[A.USAGE_CACHE_READ_TOKENS] == 400
    assert a[A.USAGE_OUTPUT_TOKENS] == 500 and a[A.USAGE_REASONING_TOKENS] == 200
    # gpt-4o: $2.50 / M input, $1.25 / M cached input (cached tokens are part of the input), $10 / M output
    assert a[A.COST_USD] == pytest.approx((600 * 2.50 + 400 * 1.25 + 500 * 10.00) / 1e6)
    assert a[A.COST_USD] == pytest.approx(0.007)


def test_cached_and_reasoning_tokens_and_cost_responses_stream(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("done", prompt_tokens=2000, completion_tokens=300, cached_tokens=1500, reasoning_tokens=250))
    for _ in client(server).responses.create(model="o4-mini", input="think", stream=True):
        pass
    a = only_span(recorder).attributes
    assert a[A.USAGE_CACHE_READ_TOKENS] == 1500 and a[A.USAGE_REASONING_TOKENS] == 250
    # o4-mini: $1.10 / M input, $0.275 / M cached input, $4.40 / M output
    assert a[A.COST_USD] == pytest.approx((500 * 1.10 + 1500 * 0.275 + 300 * 4.40) / 1e6)
    assert a[A.COST_USD] == pytest.approx(0.0022825)
