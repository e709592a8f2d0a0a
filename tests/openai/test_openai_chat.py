"""Chat completions through the real `openai` client, sync and async, whole and streamed, ended
every way a stream can end; helpers (`stream()`, `parse`, `with_raw_response`), errors and retries."""

from __future__ import annotations

import gc
import json
from typing import Any

import openai
import pydantic
import pytest

import tracewire
from tests.conftest import Recorder, shape
from tests.openai.calls import KEY, TOOLS, USER, aclient, client, llm_spans, only_span
from tracewire.integrations.openai import extract as X
from tracewire.integrations.openai import instrument, uninstrument, wrap
from tracewire.model import attributes as A
from tracewire.sinks.memory import MemorySink
from tracewire.testing.openai_server import OpenAIServer, Reply, ToolCall

CALL = ToolCall("add", {"a": 2, "b": 3}, id="call_add_1")


def test_a_call_is_one_llm_span_under_the_current_span(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply(tool_calls=[CALL], prompt_tokens=21, completion_tokens=7))
    with tracewire.span("agent", "calculator"):
        reply = client(server).chat.completions.create(model="gpt-4o-mini", messages=USER, tools=TOOLS,
                                                       temperature=0.2, max_completion_tokens=64, seed=7)
    assert reply.choices[0].message.tool_calls[0].id == "call_add_1"  # the caller's object, untouched
    assert [shape(t) for t in recorder.tree()] == [("agent", "calculator", [("llm", "gpt-4o-mini", [])])]
    span = only_span(recorder)
    assert span.status == "ok" and span.framework == "openai"
    a = span.attributes
    assert a[A.PROVIDER_NAME] == "openai_compatible" and a[A.SERVER_ADDRESS] == "127.0.0.1"
    assert a[A.OPERATION_NAME] == "chat"
    assert a[A.REQUEST_MODEL] == "gpt-4o-mini" and a[A.RESPONSE_MODEL] == "gpt-4o-mini"
    assert a[A.REQUEST_TEMPERATURE] == 0.2 and a[A.REQUEST_MAX_TOKENS] == 64
    assert a[A.INVOCATION_PARAMS] == {"seed": 7}
    assert a[A.TOOL_DEFINITIONS] == [{"name": "add", "description": "Add two numbers",
                                      "parameters": TOOLS[0]["function"]["parameters"]}]
    assert a[A.USAGE_INPUT_TOKENS] == 21 and a[A.USAGE_OUTPUT_TOKENS] == 7
    assert a[A.RESPONSE_FINISH_REASONS] == ["tool_calls"]
    assert a[A.TOOL_CALL_IDS] == ["call_add_1"]
    assert a[A.ATTEMPTS] == 1 and a[A.LATENCY_MS] > 0
    assert A.TTFT_MS not in a and A.STREAMING not in a
    assert a[A.COST_USD] == pytest.approx((21 * 0.15 + 7 * 0.60) / 1e6)
    assert span.input == [{"role": "user", "content": "What is 2 + 3?"}]
    assert span.output == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_add_1", "name": "add", "arguments": '{"a": 2, "b": 3}'}]}


async def test_an_async_call_is_one_llm_span(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("five"))
    async with tracewire.span("agent", "calculator"):
        reply = await aclient(server).chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert reply.choices[0].message.content == "five"
    assert [shape(t) for t in recorder.tree()] == [("agent", "calculator", [("llm", "gpt-4o-mini", [])])]
    span = only_span(recorder)
    assert span.output == {"role": "assistant", "content": "five"}
    assert span.attributes[A.RESPONSE_FINISH_REASONS] == ["stop"] and span.attributes[A.ATTEMPTS] == 1


# ------------------------------------------------------------------ streams


def _stream(server: OpenAIServer, **kw: Any) -> Any:
    return client(server).chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True, **kw)


def test_a_stream_exhausted_yields_what_the_sdk_yields_and_records_the_whole(
        server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("two plus three", tool_calls=[CALL], prompt_tokens=12, completion_tokens=9))
    with tracewire.span("agent", "calculator"):
        chunks = list(_stream(server))
    # the usage chunk tracewire asked for is not the caller's: only the SDK's own chunks come out
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "two plus three"
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}
    assert [shape(t) for t in recorder.tree()] == [("agent", "calculator", [("llm", "gpt-4o-mini", [])])]
    span = only_span(recorder)
    a = span.attributes
    assert span.status == "ok" and a[A.STREAM_END] == "exhausted" and a[A.STREAMING] is True
    assert a[A.USAGE_INPUT_TOKENS] == 12 and a[A.USAGE_OUTPUT_TOKENS] == 9
    assert a[A.RESPONSE_FINISH_REASONS] == ["tool_calls"] and a[A.STREAM_USAGE_ADDED] is True
    assert 0 < a[A.TTFT_MS] <= a[A.LATENCY_MS]
    assert span.output == {"role": "assistant", "content": "two plus three", "tool_calls": [
        {"id": "call_add_1", "name": "add", "arguments": '{"a": 2, "b": 3}'}]}


def _chunk(choices: list[dict[str, Any]], **more: Any) -> Any:
    """A chunk as the SDK builds it from the wire (its own type and constructor)."""
    from openai._models import construct_type
    from openai.types.chat import ChatCompletionChunk
    return construct_type(type_=ChatCompletionChunk, value={
        "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m-1", "choices": choices, **more})


def _delta(index: int = 0, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    return {"index": index, "delta": delta, "finish_reason": finish}


def test_a_streams_chunks_fold_whatever_each_one_holds() -> None:
    """Text-only chunks are read as they pass, every other shape is kept for the end: the fold is
    the same either way, in order."""
    acc = X.ChatChunks("m-0", hide_usage=True)
    usage = {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    chunks = [
        _chunk([_delta(role="assistant", content="")]),
        _chunk([_delta(content="one")]),
        _chunk([_delta(content=" two")], usage={**usage, "completion_tokens": 2}),  # usage on every chunk
        _chunk([_delta(content=" three"), _delta(index=1, content="other")]),  # n = 2
        _chunk([_delta(index=1, content=" choice")]),
        _chunk([_delta(tool_calls=[{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{}"}}])]),
        _chunk([_delta(content=" four", finish="stop"), _delta(index=1, finish="length")]),
        _chunk([_delta(refusal="no")]),
        _chunk([], usage=usage),
    ]
    passed = [acc.add(c) for c in chunks]
    assert passed == [True] * 8 + [False]  # the usage chunk tracewire asked for is hidden
    attrs, output = acc.result()
    assert output == {"role": "assistant", "content": "one two three four", "refusal": "no",
                      "tool_calls": [{"id": "call_1", "name": "f", "arguments": "{}"}]}
    assert attrs[A.RESPONSE_FINISH_REASONS] == ["stop", "length"]
    assert attrs[A.USAGE_OUTPUT_TOKENS] == 3 and attrs[A.RESPONSE_MODEL] == "m-1"


def test_a_refusal_streamed_beside_empty_text_has_no_content() -> None:
    acc = X.ChatChunks("m-0", hide_usage=False)
    for c in (_chunk([_delta(role="assistant", content="")]), _chunk([_delta(content="")]),
              _chunk([_delta(refusal="I can't")]), _chunk([_delta(finish="stop")])):
        acc.add(c)
    assert acc.result()[1] == {"role": "assistant", "content": None, "refusal": "I can't"}


def test_a_malformed_chunk_is_left_out_and_counted() -> None:
    tracewire.init(sink=[MemorySink()])
    try:
        acc = X.ChatChunks("m-0", hide_usage=False)
        for c in (_chunk([_delta(content="a")]), _chunk([{"index": 0, "delta": None, "finish_reason": None}]),
                  _chunk([_delta(content="b")])):
            assert acc.add(c)
        _, output = acc.result()
        assert output == {"role": "assistant", "content": "ab"}
        assert tracewire.stats()["internal_errors"] == {"openai:stream_item": 1}
    finally:
        tracewire.shutdown()


def test_a_stream_sent_in_one_write_is_the_same_stream(server: OpenAIServer, recorder: Recorder) -> None:
    """The local server's `one_write` (the benchmark's instruction counts) changes only how the
    bytes are written, not what the SDK hands out or what is recorded."""
    instrument()
    server.push(Reply("one two", tool_calls=[CALL]), Reply("one two", tool_calls=[CALL], one_write=True))
    streams = [[c.model_dump(exclude={"id", "created"}) for c in _stream(server)] for _ in range(2)]
    assert streams[0] == streams[1] and len(streams[0]) == 5
    first, second = llm_spans(recorder)
    assert first.output == second.output and second.attributes[A.USAGE_INPUT_TOKENS] == 10


def test_a_caller_asking_for_usage_gets_the_usage_chunk(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("hi there", prompt_tokens=3, completion_tokens=2))
    chunks = list(_stream(server, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 5
    span = only_span(recorder)
    assert A.STREAM_USAGE_ADDED not in span.attributes and span.attributes[A.USAGE_TOTAL_TOKENS] == 5


def test_include_usage_off_sends_the_request_as_given(server: OpenAIServer, recorder: Recorder) -> None:
    instrument(include_usage=False)
    server.push(Reply("hi there"))
    assert "".join(c.choices[0].delta.content or "" for c in _stream(server)) == "hi there"
    assert "stream_options" not in server.requests[-1].body
    span = only_span(recorder)
    assert span.output == {"role": "assistant", "content": "hi there"}
    assert A.USAGE_INPUT_TOKENS not in span.attributes


def test_a_stream_broken_out_of_and_dropped_ends_abandoned_with_what_passed(
        server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("one two three four five"))
    stream = _stream(server)
    seen = []
    for chunk in stream:
        seen.append(chunk.choices[0].delta.content)
        if len(seen) == 3:
            break
    assert llm_spans(recorder)[0].status == "open"  # still held: still streaming
    del stream, chunk
    gc.collect()
    span = only_span(recorder)
    assert span.status == "ok" and span.attributes[A.STREAM_END] == "abandoned"
    assert span.output == {"role": "assistant", "content": "one two"}  # "", "one", " two" passed


def test_a_stream_closed_early_ends_closed(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("one two three"))
    stream = _stream(server)
    next(stream), next(stream)
    stream.close()
    span = only_span(recorder)
    assert span.attributes[A.STREAM_END] == "closed" and span.output == {"role": "assistant", "content": "one"}
    assert stream.response.is_closed  # the SDK's own stream was closed, its attributes reachable


def test_a_stream_read_by_next_and_by_loops_records_every_chunk_once(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("one two three four"))
    stream = _stream(server)
    got = [next(stream).choices[0].delta.content]
    for chunk in stream:
        got.append(chunk.choices[0].delta.content)
        if len(got) == 3:
            break
    got.append(next(stream).choices[0].delta.content)
    got += [chunk.choices[0].delta.content for chunk in stream]
    assert got == ["", "one", " two", " three", " four", None]
    span = only_span(recorder)
    assert span.attributes[A.STREAM_END] == "exhausted"
    assert span.output == {"role": "assistant", "content": "one two three four"}


def test_a_stream_as_context_manager_ends_at_exit(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("one two three"))
    with _stream(server) as stream:
        first = next(stream)
    assert first.choices[0].delta.role == "assistant"
    span = only_span(recorder)
    assert span.status == "ok" and span.attributes[A.STREAM_END] == "closed"


def test_a_stream_failing_midway_records_the_error_and_the_partial_output(
        server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("one two three four", error_after=3, error_message="upstream overloaded"))
    got = []
    with pytest.raises(openai.APIError, match="upstream overloaded"):
        for chunk in _stream(server):
            got.append(chunk.choices[0].delta.content)
    assert got == ["", "one", " two"]
    span = only_span(recorder)
    assert span.status == "error" and span.attributes[A.STREAM_END] == "error"
    assert span.error["type"] == "openai.APIError" and "upstream overloaded" in span.error["message"]
    assert span.output == {"role": "assistant", "content": "one two"}


async def test_async_streams_end_exhausted_closed_exited_and_failed(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    ac = aclient(server)
    server.push(Reply("a b c", prompt_tokens=4, completion_tokens=3), Reply("d e f"), Reply("g h i"),
                Reply("j k l", error_after=2))
    async with tracewire.span("agent", "async"):
        chunks = [c async for c in await ac.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)]
        assert all(c.choices for c in chunks)
        stream = await ac.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        await stream.__anext__()
        await stream.close()
        async with await ac.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True) as s:
            await s.__anext__()
        with pytest.raises(openai.APIError):
            async for _ in await ac.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True):
                pass
    assert [shape(t) for t in recorder.tree()] == [("agent", "async", [("llm", "gpt-4o-mini", [])] * 4)]
    spans = llm_spans(recorder)
    assert [s.attributes[A.STREAM_END] for s in spans] == ["exhausted", "closed", "closed", "error"]
    assert [s.status for s in spans] == ["ok", "ok", "ok", "error"]
    assert spans[0].output == {"role": "assistant", "content": "a b c"}
    assert spans[0].attributes[A.USAGE_OUTPUT_TOKENS] == 3
    assert spans[3].output == {"role": "assistant", "content": "j"}  # the chunks before the error


def test_the_stream_helper_is_one_span_ended_at_exit(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("all of it", prompt_tokens=5, completion_tokens=3), Reply("only part of it"))
    cl = client(server)
    with tracewire.span("agent", "helper"):
        with cl.chat.completions.stream(model="gpt-4o-mini", messages=USER) as stream:
            text = "".join(e.delta for e in stream if e.type == "content.delta")
        final = stream.get_final_completion()
        with cl.chat.completions.stream(model="gpt-4o-mini", messages=USER) as stream:
            next(iter(stream))
    assert text == "all of it" and final.choices[0].message.content == "all of it"
    assert [shape(t) for t in recorder.tree()] == [("agent", "helper", [("llm", "gpt-4o-mini", [])] * 2)]
    whole, part = llm_spans(recorder)
    assert whole.attributes[A.STREAM_END] == "exhausted" and whole.attributes[A.USAGE_INPUT_TOKENS] == 5
    assert whole.output == {"role": "assistant", "content": "all of it"}
    assert part.status == "ok" and part.attributes[A.STREAM_END] == "closed"


async def test_the_async_stream_helper_is_one_span(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("async helper"))
    async with aclient(server).chat.completions.stream(model="gpt-4o-mini", messages=USER) as stream:
        events = [e.type async for e in stream]
    assert "content.done" in events
    span = only_span(recorder)
    assert span.output == {"role": "assistant", "content": "async helper"}
    assert span.attributes[A.STREAM_END] == "exhausted"


# ------------------------------------------------------------------ helpers and raw responses


class Answer(pydantic.BaseModel):
    value: int


def test_parse_is_recorded_like_create(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply('{"value": 5}'))
    parsed = client(server).chat.completions.parse(model="gpt-4o-mini", messages=USER, response_format=Answer)
    assert parsed.choices[0].message.parsed == Answer(value=5)
    span = only_span(recorder)
    assert span.output == {"role": "assistant", "content": '{"value": 5}'}
    assert "Answer" in str(span.attributes[A.INVOCATION_PARAMS]["response_format"])


def test_with_raw_response_still_works_and_is_recorded(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply("raw"), Reply("streamed raw"))
    cl = client(server)
    raw = cl.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
    assert raw.http_response.status_code == 200 and raw.parse().choices[0].message.content == "raw"
    with cl.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=USER) as resp:
        assert json.loads(resp.read())["choices"][0]["message"]["content"] == "streamed raw"
    whole, streamed = llm_spans(recorder)
    assert whole.output == {"role": "assistant", "content": "raw"} and whole.attributes[A.RAW_RESPONSE] is True
    assert streamed.status == "ok" and streamed.attributes[A.ERROR_CODE] == 200 and streamed.output is None


# ------------------------------------------------------------------ errors and retries


def test_an_http_error_is_recorded_typed_with_its_status(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply(status=429, error_message="slow down"))
    with pytest.raises(openai.RateLimitError):
        client(server).chat.completions.create(model="gpt-4o-mini", messages=USER)
    span = only_span(recorder)
    assert span.status == "error" and span.error["type"] == "openai.RateLimitError"
    assert span.error["status"] == 429 and span.attributes[A.ERROR_CODE] == 429
    assert "slow down" in span.error["message"] and span.attributes[A.ATTEMPTS] == 1


def test_the_sdks_retries_are_counted_on_the_one_span(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    server.push(Reply(status=500), Reply(status=429), Reply("third time lucky"),
                Reply(status=500), Reply(status=500), Reply(status=500))
    cl = client(server, max_retries=2)
    assert cl.chat.completions.create(model="gpt-4o-mini", messages=USER).choices[0].message.content == "third time lucky"
    with pytest.raises(openai.InternalServerError):
        cl.chat.completions.create(model="gpt-4o-mini", messages=USER)
    ok, failed = llm_spans(recorder)
    assert ok.status == "ok" and ok.attributes[A.ATTEMPTS] == 3
    assert failed.status == "error" and failed.attributes[A.ATTEMPTS] == 3 and failed.attributes[A.ERROR_CODE] == 500
    assert len(server.requests) == 6


# ------------------------------------------------------------------ which clients record


def test_wrap_records_that_client_only(server: OpenAIServer, recorder: Recorder) -> None:
    wrapped = client(server)
    assert wrap(wrapped, provider="vllm") is wrapped
    wrapped.chat.completions.create(model="gpt-4o-mini", messages=USER)
    client(server).chat.completions.create(model="gpt-4o-mini", messages=USER)
    span = only_span(recorder)
    assert span.attributes[A.PROVIDER_NAME] == "vllm"


def test_a_wrapped_client_is_forgotten_once_collected(server: OpenAIServer, recorder: Recorder) -> None:
    """Wrapped clients are held by id, each dropped when its client is collected: a later client
    that gets the same address is not recorded for it."""
    from tracewire.integrations.openai.hooks import scope

    wrapped = wrap(client(server))
    key = id(wrapped)
    assert scope.covers(wrapped) and key in scope.clients
    del wrapped
    gc.collect()
    assert key not in scope.clients
    client(server).chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert llm_spans(recorder) == []


def test_instrument_and_uninstrument_are_idempotent(server: OpenAIServer, recorder: Recorder) -> None:
    original = openai.resources.chat.completions.Completions.create
    instrument()
    instrument()
    client(server).chat.completions.create(model="gpt-4o-mini", messages=USER)
    uninstrument()
    uninstrument()
    assert openai.resources.chat.completions.Completions.create is original
    client(server).chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert len(llm_spans(recorder)) == 1


def test_bad_settings_fail_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="include_usage"):
        instrument(include_usage="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="providers"):
        instrument(providers={"my-host": ""})
    with pytest.raises(TypeError, match="wrap"):
        wrap(object())


@pytest.mark.parametrize(("base_url", "provider"), [
    ("https://api.openai.com/v1", "openai"),
    ("https://my-res.openai.azure.com/openai/deployments/gpt4", "azure.ai.openai"),
    ("https://api.groq.com/openai/v1", "groq"),
    ("https://api.deepseek.com", "deepseek"),
    ("https://openrouter.ai/api/v1", "openrouter"),
    ("https://generativelanguage.googleapis.com/v1beta/openai/", "gcp.gemini"),
    ("http://localhost:11434/v1", "ollama"),
    ("http://127.0.0.1:8000/v1", "openai_compatible"),
])
def test_the_provider_is_told_by_the_base_url_host(base_url: str, provider: str) -> None:
    assert X.provider_of(base_url)[0] == provider
    assert X.provider_of("http://gpu-box:8000/v1", {"gpu-box:8000": "vllm"}) == ("vllm", "gpu-box")


def test_providers_setting_names_a_local_server(server: OpenAIServer, recorder: Recorder) -> None:
    instrument(providers={"127.0.0.1": "vllm"})
    client(server).chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert only_span(recorder).attributes[A.PROVIDER_NAME] == "vllm"


# ------------------------------------------------------------------ secrets


def test_the_clients_credentials_never_reach_the_store(server: OpenAIServer, tmp_path: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "store.db"
    tracewire.init(db=str(db), flush_interval=0.01)
    instrument()
    server.push(Reply(status=401, error_message="bad key"))
    cl = client(server, organization="org-secretorg123", default_headers={"Authorization": f"Bearer {KEY}"})
    with pytest.raises(openai.AuthenticationError):
        cl.chat.completions.create(model="gpt-4o-mini", messages=USER)
    cl.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True,
                               extra_headers={"X-Api-Key": KEY}).close()
    cl.embeddings.create(model="text-embedding-3-small", input="hello")
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"  # the SDK did send them
    assert tracewire.flush(10)
    tracewire.shutdown()
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("store.db*"))
    assert b"llm.end" in stored or b"chat" in stored  # the calls are there ...
    assert KEY.encode() not in stored and b"secretorg123" not in stored  # ... their credentials are not


def test_the_request_is_recorded_as_it_was_when_called(server: OpenAIServer, tmp_path: Any) -> None:
    """The span is started on the worker from a copy taken at call time: messages and parameters
    the caller changes afterwards (a chat loop appending to its list) are not what was sent."""
    from tracewire.sinks.memory import MemorySink

    sink = MemorySink()
    tracewire.init(sink=[sink], flush_interval=60)  # the worker runs only at the flush below
    try:
        instrument()
        server.push(Reply("five"))
        messages: list[dict[str, Any]] = [{"role": "user", "content": "What is 2 + 3?"}]
        tools = json.loads(json.dumps(TOOLS))
        client(server).chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
        messages.append({"role": "assistant", "content": "five"})
        messages[0]["content"] = "changed"
        tools[0]["function"]["name"] = "renamed"
        assert tracewire.flush(10)
    finally:
        tracewire.shutdown()
    start = next(e for e in sink.events if e["type"] == "llm.start")
    assert start["input"] == [{"role": "user", "content": "What is 2 + 3?"}]
    assert [t["name"] for t in start["attributes"][A.TOOL_DEFINITIONS]] == ["add"]


def test_arguments_that_are_not_plain_data_are_read_on_the_callers_thread(server: OpenAIServer,
                                                                          recorder: Recorder) -> None:
    """NOT_GIVEN (the SDK's own sentinel) is not JSON: that call's request is read before it returns."""
    instrument()
    server.push(Reply("five"))
    with tracewire.span("agent", "calculator"):
        client(server).chat.completions.create(model="gpt-4o-mini", messages=USER, temperature=openai.NOT_GIVEN,
                                               max_completion_tokens=16)
    assert [shape(t) for t in recorder.tree()] == [("agent", "calculator", [("llm", "gpt-4o-mini", [])])]
    a = only_span(recorder).attributes
    assert A.REQUEST_TEMPERATURE not in a and a[A.REQUEST_MAX_TOKENS] == 16
    assert only_span(recorder).input == USER
