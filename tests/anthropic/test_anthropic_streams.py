"""Streams, wrapped and never consumed by the recording: `create(stream=True)` and the
`messages.stream()` helper, sync and async — exhausted, broken off early, closed, left to the
garbage collector, failing mid-stream — each one span, ended once, with what passed."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import anthropic
import pytest

import tracewire
from tests.anthropic.clients import HI, MODEL, aclient, client
from tests.conftest import Recorder, shape
from tracewire.model import attributes as A
from tracewire.read.fold import SpanView
from tracewire.testing.anthropic_server import AnthropicServer, Reply, ToolUse

END = "tracewire.stream.end"
EVENTS = ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
          "content_block_delta", "content_block_stop", "message_delta", "message_stop"]  # "a b c" (ping not handed out)


def one_llm(recorder: Recorder) -> SpanView:
    [root] = recorder.tree()
    assert shape(root) == ("agent", "a", [("llm", MODEL, [])])
    return root.children[0]


def assert_streamed(llm: SpanView, end: str, content: str | None, status: str = "ok") -> None:
    assert llm.status == status
    assert llm.attributes[END] == end and llm.attributes[A.STREAMING] is True
    assert llm.attributes[A.INVOCATION_PARAMS]["stream"] is True
    assert llm.output == {"role": "assistant", "content": content}


def test_create_stream_exhausted_hands_out_every_event(recorder: Recorder, server: AnthropicServer,
                                                       instrumented: None) -> None:
    server.push(Reply("a b c", input_tokens=20, output_tokens=7, chunk_delay=0.005))
    with tracewire.span("agent", "a"):
        stream = client(server).messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True)
        seen = [e.type for e in stream]
    assert seen == EVENTS
    llm = one_llm(recorder)
    assert_streamed(llm, "exhausted", "a b c")
    assert llm.attributes[A.RESPONSE_FINISH_REASONS] == ["end_turn"]
    assert (llm.attributes[A.USAGE_INPUT_TOKENS], llm.attributes[A.USAGE_OUTPUT_TOKENS]) == (20, 7)
    # the first text delta came after two 5 ms gaps at least, the end after eight
    assert 10 <= llm.attributes[A.TTFT_MS] < llm.attributes[A.LATENCY_MS]
    assert llm.attributes[A.LATENCY_MS] >= 40


def test_a_stream_sent_in_one_write_is_the_same_stream(recorder: Recorder, server: AnthropicServer,
                                                      instrumented: None) -> None:
    """The local server's `one_write` (the benchmark's instruction counts) changes only how the
    bytes are written."""
    server.push(Reply("a b c"), Reply("a b c", one_write=True))
    with tracewire.span("agent", "a"):
        seen = [[e.type for e in client(server).messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True)]
                for _ in range(2)]
    assert seen == [EVENTS, EVENTS]
    [root] = recorder.tree()
    assert [c.output for c in root.children] == [{"role": "assistant", "content": "a b c"}] * 2


def test_create_stream_broken_early_then_closed(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    server.push(Reply("a b c"))
    with tracewire.span("agent", "a"):
        stream = client(server).messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True)
        for e in stream:
            if e.type == "content_block_delta":
                break
        stream.close()
    assert_streamed(one_llm(recorder), "closed", "a")


def test_create_stream_as_context_manager(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    server.push(Reply("a b c"))
    with tracewire.span("agent", "a"):
        with client(server).messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True) as stream:
            assert next(iter(stream)).type == "message_start"
            assert next(stream).type == "content_block_start"
    llm = one_llm(recorder)
    assert_streamed(llm, "closed", "")
    assert A.RESPONSE_FINISH_REASONS not in llm.attributes


def test_create_stream_left_to_the_garbage_collector(recorder: Recorder, server: AnthropicServer,
                                                     instrumented: None) -> None:
    server.push(Reply("a b c"))
    with tracewire.span("agent", "a"):
        stream = client(server).messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True)
        for _ in range(4):
            next(stream)
        del stream
        gc.collect()
    assert_streamed(one_llm(recorder), "abandoned", "a b")


def test_create_stream_error_event_mid_stream(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    server.push(Reply("a b c", error_after=4))
    got: list[str] = []
    with tracewire.span("agent", "a"):
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            for e in client(server).messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True):
                got.append(e.type)
    assert got == EVENTS[:3]
    llm = one_llm(recorder)
    assert_streamed(llm, "error", "a", status="error")
    assert llm.error is not None and "Overloaded" in llm.error["message"]
    assert (llm.attributes[A.ERROR_CODE], llm.attributes["anthropic.error.type"]) == (529, "overloaded_error")


def test_create_stream_connection_dropped(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    server.push(Reply("a b c", drop_after=5))
    with tracewire.span("agent", "a"):
        got = [e.type for e in client(server).messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True)]
    assert got == EVENTS[:4]  # the SDK ends the stream where the server stopped
    llm = one_llm(recorder)
    assert_streamed(llm, "exhausted", "a b")
    assert A.RESPONSE_FINISH_REASONS not in llm.attributes  # no message_delta came


def test_streamed_tool_use_and_thinking(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    call = ToolUse("get_weather", {"city": "Oslo", "days": [1, 2, 3]}, id="toolu_stream1")
    server.push(Reply("Checking.", thinking="Need the weather tool.", tool_uses=[call], thinking_tokens=9,
                      output_tokens=30))
    with tracewire.span("agent", "a"):
        for _ in client(server).messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True):
            pass
    llm = one_llm(recorder)
    assert llm.output == {
        "role": "assistant", "content": "Checking.", "thinking": "Need the weather tool.",
        "tool_calls": [{"id": "toolu_stream1", "name": "get_weather", "arguments": {"city": "Oslo", "days": [1, 2, 3]}}],
    }
    assert llm.attributes[A.RESPONSE_FINISH_REASONS] == ["tool_use"]
    assert (llm.attributes[A.USAGE_OUTPUT_TOKENS], llm.attributes[A.USAGE_REASONING_TOKENS]) == (30, 9)


def test_a_tool_call_cut_off_keeps_its_partial_json(recorder: Recorder, server: AnthropicServer,
                                                    instrumented: None) -> None:
    server.push(Reply(tool_uses=[ToolUse("lookup", {"query": "a long query text"}, id="toolu_cut")], drop_after=5))
    with tracewire.span("agent", "a"):
        for _ in client(server).messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True):
            pass
    llm = one_llm(recorder)
    # message_start, ping, block start, two 8-character pieces of '{"query": "a long query text"}'
    assert llm.output["tool_calls"] == [{"id": "toolu_cut", "name": "lookup", "arguments": '{"query": "a lon'}]


def test_stream_helper_text_stream_and_final_message(recorder: Recorder, server: AnthropicServer,
                                                     instrumented: None) -> None:
    server.push(Reply("a b c", output_tokens=3))
    with tracewire.span("agent", "a"):
        with client(server).messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
            texts = list(stream.text_stream)
            final = stream.get_final_message()
    assert texts == ["a", " b", " c"]
    assert final.content[0].text == "a b c" and final.usage.output_tokens == 3
    llm = one_llm(recorder)
    assert_streamed(llm, "exhausted", "a b c")
    assert llm.attributes[A.RESPONSE_ID] == final.id
    assert llm.attributes[A.TTFT_MS] > 0


def test_stream_helper_until_done_and_early_exit(recorder: Recorder, server: AnthropicServer,
                                                 instrumented: None) -> None:
    server.push(Reply("one two"), Reply("a b c"))
    c = client(server)
    with tracewire.span("agent", "a"):
        with c.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
            stream.until_done()
    with tracewire.span("agent", "b"):
        with c.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
            for text in stream.text_stream:
                assert text == "a"
                break
    done, early = (r.children[0] for r in recorder.tree())
    assert_streamed(done, "exhausted", "one two")
    assert_streamed(early, "closed", "a")


def test_stream_helper_events_are_the_sdks(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    """The helper's own derived events (text, content_block_stop with the block) still come."""
    server.push(Reply("a b"))
    with client(server).messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
        kinds = [e.type for e in stream]
    assert kinds.count("text") == 2 and "message_stop" in kinds
    assert recorder.spans()[0].output == {"role": "assistant", "content": "a b"}


def test_async_streams(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    server.push(Reply("x y"), Reply("p q r"), Reply("m n", error_after=4), Reply("h i"))

    async def run() -> dict[str, Any]:
        c = aclient(server)
        out: dict[str, Any] = {}
        with tracewire.span("agent", "a"):
            out["create"] = [e.type async for e in await c.messages.create(
                model=MODEL, max_tokens=64, messages=HI, stream=True)]
            async with c.messages.stream(model=MODEL, max_tokens=64, messages=HI) as s:
                out["helper"] = [t async for t in s.text_stream]
                out["final"] = (await s.get_final_message()).content[0].text
            try:
                async for _ in await c.messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True):
                    pass
            except anthropic.APIStatusError as exc:
                out["error"] = exc.message
            stream = await c.messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True)
            async for e in stream:
                if e.type == "content_block_delta":
                    break
            await stream.close()
        return out

    out = asyncio.run(run())
    assert out["create"] == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                             "content_block_stop", "message_delta", "message_stop"]
    assert (out["helper"], out["final"]) == (["p", " q", " r"], "p q r")
    assert "Overloaded" in out["error"]
    [root] = recorder.tree()
    assert shape(root) == ("agent", "a", [("llm", MODEL, [])] * 4)
    create, helper, failed, closed = root.children
    assert_streamed(create, "exhausted", "x y")
    assert_streamed(helper, "exhausted", "p q r")
    assert_streamed(failed, "error", "m", status="error")
    assert failed.attributes[A.ERROR_CODE] == 529
    assert_streamed(closed, "closed", "h")


def test_an_uninstrumented_stream_is_the_sdks_own(recorder: Recorder, server: AnthropicServer) -> None:
    server.push(Reply("a b c"))
    stream = client(server).messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True)
    assert type(stream) is anthropic.Stream
    assert [e.type for e in stream] == EVENTS
    assert recorder.spans() == []


def test_pieces_of_blocks_that_interleave_are_folded_by_block() -> None:
    """Deltas are kept as their pieces as they pass, after their block's index when it changes; a
    delta of another kind (a thinking block's signature) is kept whole: the fold is the same."""
    from anthropic._models import construct_type
    from anthropic.types import RawMessageStreamEvent

    from tracewire.integrations.anthropic import extract as X

    def event(**fields: Any) -> Any:
        return construct_type(type_=RawMessageStreamEvent, value=fields)

    def delta(index: int, **d: Any) -> Any:
        return event(type="content_block_delta", index=index, delta=d)

    events = [
        event(type="message_start", message={"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
                                             "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}),
        event(type="content_block_start", index=0, content_block={"type": "thinking", "thinking": "", "signature": ""}),
        event(type="content_block_start", index=1, content_block={"type": "text", "text": ""}),
        delta(0, type="thinking_delta", thinking="Think"),
        delta(1, type="text_delta", text="Hel"),
        delta(0, type="thinking_delta", thinking="ing."),
        delta(0, type="signature_delta", signature="sig"),
        delta(1, type="text_delta", text="lo."),
        event(type="message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 7}),
    ]
    fold = X.StreamFold(start=0)
    assert all(fold.add(e) for e in events)
    assert fold.parts[3:] == [0, "Think", 1, "Hel", 0, "ing.", events[6], 1, "lo.", events[8]]
    attrs, output = fold.result()
    assert output == {"role": "assistant", "content": "Hello.", "thinking": "Thinking."}
    assert attrs[A.USAGE_OUTPUT_TOKENS] == 7 and attrs[A.RESPONSE_FINISH_REASONS] == ["end_turn"]
