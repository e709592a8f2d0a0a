"""TracewireLogger against real LiteLLM: `mock_response` and a scripted OpenAI-compatible server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import litellm
import openai
import pytest

import tracewire
from tracewire.integrations.litellm import TracewireLogger, drain
from tracewire.model import attributes as A
from tracewire.model.pricing import cost_usd
from tracewire.read.fold import SpanView
from tracewire.testing.openai_server import OpenAIServer, Reply, ToolCall

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {
    "name": "add", "description": "Add two numbers",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
}}]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(default=Reply("hello there")) as srv:
        yield srv


@pytest.fixture(autouse=True)
def logger() -> Iterator[TracewireLogger]:
    saved = litellm.callbacks
    handler = TracewireLogger()
    litellm.callbacks = [handler]
    try:
        yield handler
    finally:
        litellm.callbacks = saved


def call_kwargs(server: OpenAIServer) -> dict[str, Any]:
    return {"api_base": server.base_url, "api_key": "k-test", "max_retries": 0, "num_retries": 0}


def wait_for(recorder: Any, pred: Callable[[list[SpanView]], bool], timeout: float = 10.0) -> list[SpanView]:
    """Sync success hooks run on a LiteLLM logging thread: wait until the span has ended."""
    deadline = time.monotonic() + timeout
    while True:
        spans = recorder.spans()
        if pred(spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.02)


def ended(kind: str = "llm", n: int = 1) -> Callable[[list[SpanView]], bool]:
    return lambda spans: sum(1 for s in spans if s.kind == kind and s.status in ("ok", "error")) >= n


def only(spans: list[SpanView], kind: str) -> SpanView:
    found = [s for s in spans if s.kind == kind]
    assert len(found) == 1, [(s.kind, s.name, s.status) for s in spans]
    return found[0]


def assert_chat_span(span: SpanView, parent: tracewire.Span, *, prompt: int, completion: int) -> None:
    assert span.status == "ok", span.error
    assert span.framework == "litellm"
    assert span.name == "gpt-4o-mini"
    assert span.parent_span_id == parent.span_id and span.trace_id == parent.trace_id
    a = span.attributes
    assert a[A.REQUEST_MODEL] == "gpt-4o-mini" and a[A.RESPONSE_MODEL] == "gpt-4o-mini"
    assert a[A.PROVIDER_NAME] == "openai" and a[A.OPERATION_NAME] == "chat"
    assert a[A.USAGE_INPUT_TOKENS] == prompt and a[A.USAGE_OUTPUT_TOKENS] == completion
    assert a[A.USAGE_TOTAL_TOKENS] == prompt + completion
    # gpt-4o-mini: $0.15 / $0.60 per million tokens, computed by LiteLLM
    assert a[A.COST_USD] == pytest.approx(prompt * 0.15e-6 + completion * 0.6e-6)
    assert a[A.LATENCY_MS] > 0
    assert span.input[-1] == {"role": "user", "content": "hi"}


def test_sync_completion(recorder: Any, server: OpenAIServer) -> None:
    server.push(Reply("hello there", prompt_tokens=12, completion_tokens=3))
    with tracewire.span("chain", "outer") as outer:
        resp = litellm.completion(
            "openai/gpt-4o-mini", MESSAGES, temperature=0.2, max_tokens=50,
            metadata={"tags": ["nightly"], "session_id": "conv-7"}, **call_kwargs(server),
        )
    assert resp.choices[0].message.content == "hello there"
    span = only(wait_for(recorder, ended()), "llm")
    assert_chat_span(span, outer, prompt=12, completion=3)
    a = span.attributes
    assert a[A.REQUEST_TEMPERATURE] == 0.2 and a[A.REQUEST_MAX_TOKENS] == 50
    assert a[A.RESPONSE_FINISH_REASONS] == ["stop"]
    assert a[A.RESPONSE_ID] == resp.id
    assert A.TTFT_MS not in a  # not a stream
    assert span.input == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert span.output == {"role": "assistant", "content": "hello there"}
    assert span.metadata["litellm.request_tags"] == ["nightly"]
    assert span.metadata["litellm.trace_id"] == "conv-7"  # LiteLLM folds a metadata session into its trace id
    assert span.metadata["litellm.call_id"]


def test_cost_is_litellms_response_cost(recorder: Any, server: OpenAIServer) -> None:
    """A per-call price LiteLLM knows and tracewire's table does not (its prefix match prices this
    made-up model as gpt-4o-mini): the recorded cost is LiteLLM's figure."""
    model = "gpt-4o-mini-tw-priced"
    server.push(Reply("priced", prompt_tokens=1000, completion_tokens=100))
    known = set(litellm.model_cost)
    try:
        resp = litellm.completion(f"openai/{model}", MESSAGES, input_cost_per_token=0.0007,
                                  output_cost_per_token=0.0031, **call_kwargs(server))
        span = only(wait_for(recorder, ended()), "llm")
    finally:  # LiteLLM registers the per-call price globally
        for key in set(litellm.model_cost) - known:
            del litellm.model_cost[key]
    assert span.status == "ok" and span.attributes[A.RESPONSE_MODEL] == model
    assert span.attributes[A.COST_USD] == resp._hidden_params["response_cost"] == pytest.approx(1000 * 0.0007 + 100 * 0.0031)
    assert cost_usd(model, 1000, 100) == pytest.approx(1000 * 0.15e-6 + 100 * 0.6e-6)  # what the table would say


@pytest.mark.parametrize("correlation", [False, True])
def test_litellm_session_and_trace_ids_in_metadata(recorder: Any, server: OpenAIServer, correlation: bool,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """LiteLLM folds `litellm_session_id` into its trace id unless `request_correlation_in_logs` is
    on, which keeps the two apart; the span's metadata holds what LiteLLM reports either way."""
    monkeypatch.setattr(litellm, "request_correlation_in_logs", correlation)
    resp = litellm.completion("openai/gpt-4o-mini", MESSAGES, litellm_session_id="conv-42", litellm_trace_id="run-9",
                              metadata={"tags": ["nightly", "eu"]}, **call_kwargs(server))
    span = only(wait_for(recorder, ended()), "llm")
    expected = {"litellm.trace_id": "conv-42", "litellm.request_tags": ["nightly", "eu"],
                "litellm.call_id": resp._hidden_params["litellm_call_id"]}
    if correlation:
        expected.update({"litellm.trace_id": "run-9", "litellm.session_id": "conv-42"})
    assert span.metadata == expected
    assert span.session_id is None  # LiteLLM's ids stay metadata; tracewire's session is the caller's


async def test_async_completion(recorder: Any, server: OpenAIServer) -> None:
    server.push(Reply("async hello", prompt_tokens=8, completion_tokens=2))
    async with tracewire.span("agent", "outer") as outer:
        resp = await litellm.acompletion("openai/gpt-4o-mini", MESSAGES, **call_kwargs(server))
    await drain()
    assert resp.choices[0].message.content == "async hello"
    span = only(wait_for(recorder, ended()), "llm")
    assert_chat_span(span, outer, prompt=8, completion=2)
    assert span.output == {"role": "assistant", "content": "async hello"}


def test_sync_stream(recorder: Any, server: OpenAIServer) -> None:
    server.push(Reply("one two three", prompt_tokens=9, completion_tokens=3, chunk_delay=0.01))
    with tracewire.span("chain", "outer") as outer:
        stream = litellm.completion("openai/gpt-4o-mini", MESSAGES, stream=True,
                                    stream_options={"include_usage": True}, **call_kwargs(server))
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "one two three"
    span = only(wait_for(recorder, ended()), "llm")
    assert_chat_span(span, outer, prompt=9, completion=3)
    a = span.attributes
    assert a[A.STREAMING] is True
    assert 0 < a[A.TTFT_MS] < a[A.LATENCY_MS]
    assert span.output == {"role": "assistant", "content": "one two three"}


async def test_async_stream(recorder: Any, server: OpenAIServer) -> None:
    server.push(Reply("alpha beta", prompt_tokens=7, completion_tokens=2, chunk_delay=0.01))
    with tracewire.span("chain", "outer") as outer:
        stream = await litellm.acompletion("openai/gpt-4o-mini", MESSAGES, stream=True,
                                           stream_options={"include_usage": True}, **call_kwargs(server))
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await drain()
    assert text == "alpha beta"
    span = only(wait_for(recorder, ended()), "llm")
    assert_chat_span(span, outer, prompt=7, completion=2)
    assert 0 < span.attributes[A.TTFT_MS] < span.attributes[A.LATENCY_MS]


def test_tool_call_response(recorder: Any, server: OpenAIServer) -> None:
    server.push(Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="call_add_1")], prompt_tokens=20, completion_tokens=6))
    with tracewire.span("agent", "planner") as outer:
        resp = litellm.completion("openai/gpt-4o-mini", MESSAGES, tools=TOOLS, **call_kwargs(server))
    assert resp.choices[0].finish_reason == "tool_calls"
    span = only(wait_for(recorder, ended()), "llm")
    assert_chat_span(span, outer, prompt=20, completion=6)
    assert span.attributes[A.RESPONSE_FINISH_REASONS] == ["tool_calls"]
    assert span.attributes[A.TOOL_DEFINITIONS] == [{
        "name": "add", "description": "Add two numbers", "parameters": TOOLS[0]["function"]["parameters"]}]
    assert span.output == {"role": "assistant", "content": None,
                           "tool_calls": [{"id": "call_add_1", "name": "add", "arguments": '{"a": 2, "b": 3}'}]}


def test_tool_result_messages_are_recorded(recorder: Any, server: OpenAIServer) -> None:
    history = [*MESSAGES,
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}}]},
               {"role": "tool", "tool_call_id": "c1", "content": "1"}]
    litellm.completion("openai/gpt-4o-mini", history, **call_kwargs(server))
    span = only(wait_for(recorder, ended()), "llm")
    assert span.parent_span_id is None  # no enclosing span: a root
    assert span.input[2:] == [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "name": "add", "arguments": '{"a":1}'}]},
        {"role": "tool", "content": "1", "tool_call_id": "c1"},
    ]


def test_embedding(recorder: Any, server: OpenAIServer) -> None:
    with tracewire.span("retriever", "search") as outer:
        resp = litellm.embedding("openai/text-embedding-3-small", ["red apples", "green pears grow"],
                                 **call_kwargs(server))
    assert len(resp.data) == 2
    span = only(wait_for(recorder, ended("embedding")), "embedding")
    assert span.status == "ok" and span.name == "text-embedding-3-small"
    assert span.parent_span_id == outer.span_id
    a = span.attributes
    assert a[A.OPERATION_NAME] == "embeddings" and a[A.PROVIDER_NAME] == "openai"
    assert a[A.USAGE_INPUT_TOKENS] == 5  # the scripted server counts words
    assert a[A.EMBEDDING_COUNT] == 2 and a[A.EMBEDDINGS_DIMENSION] == 8
    assert a[A.COST_USD] == pytest.approx(5 * 0.02e-6)
    assert span.input == ["red apples", "green pears grow"]
    assert span.output is None  # vectors are not recorded


@pytest.mark.parametrize("status", [500, 401])
def test_provider_error(recorder: Any, server: OpenAIServer, status: int) -> None:
    server.push(Reply(status=status, error_message="scripted failure"))
    with tracewire.span("chain", "outer") as outer:
        with pytest.raises(openai.APIStatusError) as raised:
            litellm.completion("openai/gpt-4o-mini", MESSAGES, **call_kwargs(server))
    span = only(wait_for(recorder, ended()), "llm")
    assert span.status == "error" and span.parent_span_id == outer.span_id
    err = type(raised.value)
    assert span.error["type"] == f"{err.__module__}.{err.__qualname__}"
    assert "scripted failure" in span.error["message"]
    assert span.error["code"] == str(status) == span.attributes[A.ERROR_CODE]
    assert span.attributes[A.PROVIDER_NAME] == "openai"


async def test_async_provider_error(recorder: Any, server: OpenAIServer) -> None:
    server.push(Reply(status=500, error_message="async failure"))
    with tracewire.span("chain", "outer") as outer:
        with pytest.raises(openai.APIStatusError):
            await litellm.acompletion("openai/gpt-4o-mini", MESSAGES, **call_kwargs(server))
    await drain()
    span = only(wait_for(recorder, ended()), "llm")
    assert span.status == "error" and span.parent_span_id == outer.span_id
    assert "async failure" in span.error["message"] and span.error["code"] == "500"


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_bad_model(recorder: Any, mode: str) -> None:
    """An unknown provider fails before the pre-call hook (and, async, fires both failure hooks)."""
    with tracewire.span("chain", "outer") as outer:
        with pytest.raises(litellm.BadRequestError):
            if mode == "sync":
                litellm.completion("nope/no-such-model", MESSAGES)
            else:
                await litellm.acompletion("nope/no-such-model", MESSAGES)
    await drain()
    span = only(wait_for(recorder, ended()), "llm")
    assert span.status == "error" and span.parent_span_id == outer.span_id
    assert span.name == "nope/no-such-model"
    assert span.error["type"] == "litellm.exceptions.BadRequestError"
    assert "LLM Provider NOT provided" in span.error["message"]
    assert span.error["code"] == "400"
    assert span.input == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def test_mock_response(recorder: Any) -> None:
    with tracewire.span("chain", "outer") as outer:
        litellm.completion("gpt-4o-mini", MESSAGES, mock_response="mocked answer")
        with pytest.raises(litellm.InternalServerError):
            litellm.completion("gpt-4o-mini", MESSAGES, mock_response=Exception("mock boom"))
    spans = wait_for(recorder, ended(n=2))
    ok, failed = sorted((s for s in spans if s.kind == "llm"), key=lambda s: s.status != "ok")
    assert ok.status == "ok" and ok.parent_span_id == outer.span_id
    assert ok.output == {"role": "assistant", "content": "mocked answer"}
    assert ok.attributes[A.USAGE_OUTPUT_TOKENS] > 0 and ok.attributes[A.COST_USD] > 0
    assert failed.status == "error" and failed.parent_span_id == outer.span_id
    assert failed.error["type"] == "litellm.exceptions.InternalServerError"
    assert "mock boom" in failed.error["message"]


def test_two_loggers_record_each_call_once(recorder: Any, server: OpenAIServer, logger: TracewireLogger) -> None:
    litellm.callbacks = [logger, TracewireLogger()]
    litellm.completion("openai/gpt-4o-mini", MESSAGES, **call_kwargs(server))
    time.sleep(0.2)
    spans = wait_for(recorder, ended())
    assert [s.status for s in spans] == ["ok"]


def test_content_capture_off(server: OpenAIServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracewire.read.fold import fold
    from tracewire.sinks.memory import MemorySink

    monkeypatch.chdir(tmp_path)
    sink = MemorySink()
    client = tracewire.init(sink=[sink], capture_content=False, flush_interval=0.01)
    litellm.completion("openai/gpt-4o-mini", MESSAGES, **call_kwargs(server))
    deadline = time.monotonic() + 10
    while not any(e["phase"] == "end" for e in sink.events) and time.monotonic() < deadline:
        client.flush(1)
        time.sleep(0.02)
    (span,) = fold(sink.events)
    assert span.status == "ok" and span.input is None and span.output is None
    assert span.attributes[A.USAGE_INPUT_TOKENS] == 10


def test_instrument_through_the_adapter_registry(recorder: Any, server: OpenAIServer) -> None:
    """`instrument()` (or the registry's "litellm") puts one logger in `litellm.callbacks`, however
    often called; `uninstrument()` takes it out of every list LiteLLM copied it into."""
    from tracewire.adapters import install_adapter, uninstall_adapter
    from tracewire.integrations.litellm import LiteLLMAdapter, instrument, uninstrument

    litellm.callbacks = []
    instrument()
    adapter = install_adapter("litellm")
    try:
        assert isinstance(adapter, LiteLLMAdapter) and litellm.callbacks == [adapter.logger]
        litellm.completion("openai/gpt-4o-mini", MESSAGES, **call_kwargs(server))
        assert [s.status for s in wait_for(recorder, ended())] == ["ok"]
    finally:
        uninstrument()
        uninstall_adapter("litellm")
    assert LiteLLMAdapter.installed() is None
    assert not any(isinstance(c, TracewireLogger) for n in ("callbacks", "success_callback", "input_callback")
                   for c in getattr(litellm, n))
