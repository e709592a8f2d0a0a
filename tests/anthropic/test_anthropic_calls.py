"""The real `anthropic` client against the local Messages API server: one `llm` span per call, its
exact place in the tree, attributes, input and output — `create` sync and async, not streamed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest

import tracewire
from tests.anthropic.clients import HI, MODEL, aclient, client
from tests.conftest import Recorder, shape
from tracewire.integrations.anthropic import instrument, uninstrument, wrap
from tracewire.model import attributes as A
from tracewire.testing.anthropic_server import AnthropicServer, Reply, ToolUse


def expected_attributes(**extra: Any) -> dict[str, Any]:
    return {
        A.OPERATION_NAME: "chat", A.PROVIDER_NAME: "anthropic", A.SYSTEM: "anthropic",
        A.REQUEST_MODEL: MODEL, A.RESPONSE_MODEL: MODEL, A.REQUEST_MAX_TOKENS: 64,
        "tracewire.attempts": 1, **extra,
    }


def subset(attrs: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {k: attrs.get(k) for k in expected}


def test_create_is_one_llm_span_under_the_current_span(recorder: Recorder, server: AnthropicServer,
                                                      instrumented: None) -> None:
    server.push(Reply("Hello there.", input_tokens=12, output_tokens=4))
    with tracewire.span("agent", "greeter"):
        msg = client(server).messages.create(model=MODEL, max_tokens=64, system="Be brief.", messages=HI)
    assert msg.content[0].text == "Hello there."  # the caller gets the SDK's own Message
    assert isinstance(msg, anthropic.types.Message)
    [root] = recorder.tree()
    assert shape(root) == ("agent", "greeter", [("llm", MODEL, [])])
    llm = root.children[0]
    assert llm.framework == "anthropic" and llm.status == "ok"
    assert subset(llm.attributes, expected_attributes()) == expected_attributes()
    assert llm.attributes[A.RESPONSE_FINISH_REASONS] == ["end_turn"]
    assert llm.attributes[A.RESPONSE_ID] == msg.id
    assert (llm.attributes[A.USAGE_INPUT_TOKENS], llm.attributes[A.USAGE_OUTPUT_TOKENS]) == (12, 4)
    assert llm.attributes[A.COST_USD] == pytest.approx((12 * 3.00 + 4 * 15.00) / 1e6)
    assert llm.attributes[A.LATENCY_MS] > 0
    assert A.TTFT_MS not in llm.attributes and A.STREAMING not in llm.attributes
    assert llm.input == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert llm.output == {"role": "assistant", "content": "Hello there."}


def test_async_create(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    server.push(Reply("one"), Reply("two"))

    async def run() -> list[str]:
        c = aclient(server)
        with tracewire.span("chain", "pair"):
            first = await c.messages.create(model=MODEL, max_tokens=64, messages=HI)
            second = await c.messages.create(model=MODEL, max_tokens=64, messages=HI)
        return [first.content[0].text, second.content[0].text]

    assert asyncio.run(run()) == ["one", "two"]
    [root] = recorder.tree()
    assert shape(root) == ("chain", "pair", [("llm", MODEL, []), ("llm", MODEL, [])])
    assert [c.output["content"] for c in root.children] == ["one", "two"]
    for c in root.children:
        assert subset(c.attributes, expected_attributes()) == expected_attributes()


def test_tool_use_and_thinking_are_recorded(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    call = ToolUse("get_weather", {"city": "Oslo", "unit": "c"}, id="toolu_01weather")
    server.push(Reply("Let me look.", thinking="The user wants weather.", tool_uses=[call],
                      output_tokens=40, thinking_tokens=25))
    tools = [{"name": "get_weather", "description": "Weather now", "input_schema": {"type": "object"}}]
    client(server).messages.create(
        model=MODEL, max_tokens=64, messages=HI, tools=tools, tool_choice={"type": "auto"},
        thinking={"type": "enabled", "budget_tokens": 1024}, stop_sequences=["END"],
        extra_body={"temperature": 0.2}, extra_headers={"x-trace-note": "kept out"},
    )
    [llm] = recorder.spans()
    assert llm.output == {
        "role": "assistant", "content": "Let me look.", "thinking": "The user wants weather.",
        "tool_calls": [{"id": "toolu_01weather", "name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}}],
    }
    assert llm.attributes[A.RESPONSE_FINISH_REASONS] == ["tool_use"]
    assert llm.attributes["tracewire.tool_call.ids"] == ["toolu_01weather"]
    assert llm.attributes[A.USAGE_REASONING_TOKENS] == 25
    assert llm.attributes[A.TOOL_DEFINITIONS] == [
        {"name": "get_weather", "description": "Weather now", "parameters": {"type": "object"}}]
    assert llm.attributes[A.INVOCATION_PARAMS] == {
        "max_tokens": 64, "stop_sequences": ["END"], "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024}, "temperature": 0.2}
    assert (llm.attributes[A.REQUEST_TEMPERATURE], llm.attributes[A.REQUEST_STOP]) == (0.2, ["END"])
    assert "kept out" not in str(recorder.events())


def test_tool_results_in_the_next_request_answer_the_calls_by_id(recorder: Recorder, server: AnthropicServer,
                                                                 instrumented: None) -> None:
    server.push(Reply("Sunny."))
    client(server).messages.create(model=MODEL, max_tokens=64, messages=[
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two cities.", "signature": "sig"},
            {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "snow"},
            {"type": "tool_result", "tool_use_id": "toolu_b", "content": [{"type": "text", "text": "sun"}],
             "is_error": False},
            {"type": "text", "text": "Answer briefly."}]},
    ])
    [llm] = recorder.spans()
    assert llm.input == [
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        {"role": "assistant", "content": None, "thinking": "Two cities.", "tool_calls": [
            {"id": "toolu_a", "name": "get_weather", "arguments": {"city": "Oslo"}},
            {"id": "toolu_b", "name": "get_weather", "arguments": {"city": "Rome"}}]},
        {"role": "tool", "content": "snow", "tool_call_id": "toolu_a"},
        {"role": "tool", "content": "sun", "tool_call_id": "toolu_b"},
        {"role": "user", "content": "Answer briefly."},
    ]
    assert llm.attributes["tracewire.tool_result.ids"] == ["toolu_a", "toolu_b"]


def test_errors_carry_their_http_status_and_the_sdks_attempts(recorder: Recorder, server: AnthropicServer,
                                                             instrumented: None) -> None:
    c = client(server, retries=2)
    server.push(Reply(status=429), Reply(status=500), Reply(status=529, error_message="Overloaded"))
    with pytest.raises(anthropic.InternalServerError) as raised:
        c.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert raised.value.status_code == 529  # the SDK's own exception, unchanged
    server.push(Reply(status=429), Reply("made it"))
    assert c.messages.create(model=MODEL, max_tokens=64, messages=HI).content[0].text == "made it"
    server.push(Reply(status=400, error_message="max_tokens: too large"))
    with pytest.raises(anthropic.BadRequestError):
        c.messages.create(model=MODEL, max_tokens=64, messages=HI)
    failed, retried, bad = recorder.spans()
    assert failed.status == "error" and failed.error is not None
    assert failed.error["type"] == "anthropic.OverloadedError" and "Overloaded" in failed.error["message"]
    assert subset(failed.attributes, {A.ERROR_CODE: 529, "tracewire.attempts": 3, "anthropic.error.type": ""}) == {
        A.ERROR_CODE: 529, "tracewire.attempts": 3, "anthropic.error.type": "overloaded_error"}
    assert retried.status == "ok" and retried.attributes["tracewire.attempts"] == 2
    assert retried.output == {"role": "assistant", "content": "made it"}
    assert bad.status == "error" and bad.attributes[A.ERROR_CODE] == 400
    assert bad.attributes["tracewire.attempts"] == 1
    assert bad.attributes["anthropic.error.type"] == "invalid_request_error"
    assert len(server.requests) == 6


def test_count_tokens_is_left_alone(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    c = client(server)
    assert c.messages.count_tokens(model=MODEL, messages=HI).input_tokens == 1
    server.push(Reply("counted"))
    c.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert [s.name for s in recorder.spans()] == [MODEL]


def test_instrument_is_idempotent_and_uninstrument_stops_recording(recorder: Recorder, server: AnthropicServer) -> None:
    instrument()
    instrument()
    c = client(server)
    c.messages.create(model=MODEL, max_tokens=64, messages=HI)
    uninstrument()
    uninstrument()
    c.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert len(recorder.spans()) == 1
    assert anthropic.resources.messages.Messages.create.__name__ == "create"
    assert not hasattr(anthropic.resources.messages.Messages.create, "__tracewire_original__")


def test_wrap_records_that_client_only(recorder: Recorder, server: AnthropicServer) -> None:
    plain, wrapped = client(server), client(server)
    assert wrap(wrapped) is wrapped
    assert wrap(wrapped) is wrapped  # twice: still one span a call
    server.push(Reply("unrecorded"), Reply("recorded"))
    plain.messages.create(model=MODEL, max_tokens=64, messages=HI)
    wrapped.messages.create(model=MODEL, max_tokens=64, messages=HI)
    [llm] = recorder.spans()
    assert llm.output == {"role": "assistant", "content": "recorded"}
    instrument()
    uninstrument()  # the wrapped client keeps recording
    wrapped.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert len(recorder.spans()) == 2


def test_wrap_an_async_client(recorder: Recorder, server: AnthropicServer) -> None:
    c = wrap(aclient(server))
    server.push(Reply("async wrapped"))
    asyncio.run(c.messages.create(model=MODEL, max_tokens=64, messages=HI))
    [llm] = recorder.spans()
    assert llm.output == {"role": "assistant", "content": "async wrapped"}


def test_content_capture_off_records_no_content(server: AnthropicServer, tmp_path: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tracewire.sinks.memory import MemorySink

    monkeypatch.chdir(tmp_path)
    sink = MemorySink()
    tracewire.init(sink=[sink], capture_content=False, flush_interval=0.01)
    c = wrap(client(server))
    server.push(Reply("private answer"), Reply("private stream"))
    c.messages.create(model=MODEL, max_tokens=64, system="private system", messages=[
        {"role": "user", "content": "private question"}])
    for _ in c.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "private q"}],
                               stream=True):
        pass
    assert tracewire.flush(10)
    assert sorted(e["type"] for e in sink.events) == ["llm.end", "llm.end", "llm.start", "llm.start"]
    assert "private" not in json.dumps(sink.events)
    ends = [e for e in sink.events if e["type"] == "llm.end"]
    assert [e["attributes"][A.USAGE_INPUT_TOKENS] for e in ends] == [10, 10]  # usage is not content


def test_raw_responses_are_recorded(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    c = client(server)
    server.push(Reply("raw body"), Reply("a b"), Reply("read by the caller"))
    raw = c.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=HI)
    assert raw.parse().content[0].text == "raw body" and raw.http_response.status_code == 200
    raw_stream = c.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=HI, stream=True)
    assert [e.type for e in raw_stream.parse()][-1] == "message_stop"
    with c.messages.with_streaming_response.create(model=MODEL, max_tokens=64, messages=HI) as streamed:
        assert streamed.parse().content[0].text == "read by the caller"
    parsed, stream, streaming = recorder.spans()
    assert parsed.output == {"role": "assistant", "content": "raw body"}
    assert parsed.attributes["tracewire.raw_response"] is True
    assert parsed.attributes[A.USAGE_INPUT_TOKENS] == 10
    for span in (stream, streaming):
        assert span.status == "ok" and span.output is None
        assert (span.attributes["tracewire.raw_response"], span.attributes[A.ERROR_CODE]) == (True, 200)
