"""LLM spans: streaming (true end, time to first token), usage and cost from a real OpenAI client
against the scripted server on 127.0.0.1, errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from li_helpers import add
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import ChatMessage
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAI

from tests.conftest import shape
from tracewire.model import attributes as A
from tracewire.testing.openai_server import OpenAIServer, Reply, ToolCall

USER = [ChatMessage(role="user", content="Say hello")]


def _words(*words: str) -> Any:
    """A streaming response generator: one cumulative message per word, as real LLMs stream."""
    def generate(messages: Any, **kwargs: Any) -> Iterator[ChatMessage]:
        for i in range(len(words)):
            yield ChatMessage(role="assistant", content="".join(words[: i + 1]))
    return generate


def _awords(*words: str) -> Any:
    async def generate(messages: Any, **kwargs: Any) -> AsyncIterator[ChatMessage]:
        for i in range(len(words)):
            yield ChatMessage(role="assistant", content="".join(words[: i + 1]))
    return generate


def test_streamed_chat_ends_when_the_stream_ends(recorder, handler):
    llm = MockFunctionCallingLLM(response_generator=_words("Hello", " there", " friend"))
    stream = llm.stream_chat(USER)  # LlamaIndex's span has already exited here
    time.sleep(0.05)
    for _ in stream:
        time.sleep(0.04)

    (span,) = recorder.tree()
    assert shape(span) == ("llm", "MockFunctionCallingLLM", [])
    assert span.status == "ok" and span.output == {"role": "assistant", "content": "Hello there friend"}
    assert span.input == [{"role": "user", "content": "Say hello"}]
    assert span.attributes[A.STREAMING] is True
    ttft = span.attributes[A.TTFT_MS]
    assert 45 <= ttft < span.duration_ms
    assert span.duration_ms >= 45 + 3 * 40  # the whole read, not the moment the generator was returned
    assert handler.tracked_spans == 0


async def test_async_stream_closed_early_is_unfinished(recorder, handler):
    llm = MockFunctionCallingLLM(response_generator=_awords("one", " two", " three"))
    stream = await llm.astream_chat(USER)
    async for chunk in stream:
        assert chunk.message.content == "one"
        break
    await stream.aclose()

    (span,) = recorder.tree()
    assert span.status == "ok" and span.attributes[A.UNFINISHED] is True
    assert span.output == {"role": "assistant", "content": "one"}
    assert handler.tracked_spans == 0


def test_stream_never_read_is_closed_at_uninstrument(recorder, handler):
    from tracewire.integrations.llamaindex import uninstrument

    llm = MockFunctionCallingLLM(response_generator=_words("never", " read"))
    stream = llm.stream_chat(USER)
    assert handler.tracked_spans == 1
    uninstrument()
    (span,) = recorder.tree()
    assert span.status == "error" and span.error["type"] == "tracewire.Unfinished"
    assert handler.tracked_spans == 0
    del stream


def test_llm_error_is_recorded(recorder, handler):
    def broken(messages: Any, **kwargs: Any) -> ChatMessage:
        raise ConnectionError("model unreachable")

    with pytest.raises(ConnectionError):
        MockFunctionCallingLLM(response_generator=broken).chat(USER)
    (span,) = recorder.tree()
    assert shape(span) == ("llm", "MockFunctionCallingLLM", [])
    assert span.status == "error"
    assert span.error["type"] == "ConnectionError" and span.error["message"] == "model unreachable"


async def test_nested_llm_call_is_one_span(recorder, handler):
    """MockFunctionCallingLLM.achat calls its own chat: one model call, one llm span."""
    llm = MockFunctionCallingLLM(response_generator=lambda messages, **kw: ChatMessage(role="assistant", content="hi"))
    await llm.achat(USER)
    (span,) = recorder.tree()
    assert shape(span) == ("llm", "MockFunctionCallingLLM", []) and span.output["content"] == "hi"


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


def _openai(server: OpenAIServer, **kw: Any) -> OpenAI:
    return OpenAI(model="gpt-4o-mini", api_base=server.base_url, api_key="sk-fake", max_retries=0, **kw)


def test_openai_chat_usage_and_cost(recorder, handler, server):
    server.push(Reply("Hello!", prompt_tokens=12, completion_tokens=4))
    _openai(server, temperature=0.2).chat(USER)

    (span,) = recorder.tree()
    assert shape(span) == ("llm", "OpenAI", [])
    a = span.attributes
    assert a[A.REQUEST_MODEL] == "gpt-4o-mini" and a[A.PROVIDER_NAME] == "openai"
    assert a[A.REQUEST_TEMPERATURE] == 0.2 and a[A.OPERATION_NAME] == "chat"
    assert (a[A.USAGE_INPUT_TOKENS], a[A.USAGE_OUTPUT_TOKENS], a[A.USAGE_TOTAL_TOKENS]) == (12, 4, 16)
    assert a[A.COST_USD] == pytest.approx((12 * 0.15 + 4 * 0.60) / 1e6)
    assert a[A.RESPONSE_MODEL] == "gpt-4o-mini" and a[A.RESPONSE_FINISH_REASONS] == ["stop"]
    assert a[A.RESPONSE_ID].startswith("chatcmpl-")
    assert span.output == {"role": "assistant", "content": "Hello!"}
    assert "sk-fake" not in str(recorder.events())


def test_openai_stream_usage_and_ttft(recorder, handler, server):
    server.push(Reply("one two three", prompt_tokens=7, completion_tokens=3, chunk_delay=0.03))
    llm = _openai(server, additional_kwargs={"stream_options": {"include_usage": True}})
    text = "".join(c.delta or "" for c in llm.stream_chat(USER))
    assert text == "one two three"

    (span,) = recorder.tree()
    a = span.attributes
    assert (a[A.USAGE_INPUT_TOKENS], a[A.USAGE_OUTPUT_TOKENS]) == (7, 3)
    assert a[A.STREAMING] is True
    # chunks: role-only, 3 words, finish, usage, each 30 ms apart; the first token is the 2nd chunk
    assert 55 <= a[A.TTFT_MS] < span.duration_ms and span.duration_ms >= 6 * 30
    assert span.output["content"] == "one two three"


def test_openai_completion_usage(recorder, handler, server):
    server.push(Reply("Paris", prompt_tokens=9, completion_tokens=1))
    assert _openai(server).complete("Capital of France?").text == "Paris"
    (span,) = recorder.tree()
    assert span.attributes[A.OPERATION_NAME] == "text_completion"
    assert (span.attributes[A.USAGE_INPUT_TOKENS], span.attributes[A.USAGE_OUTPUT_TOKENS]) == (9, 1)
    assert span.input == "Capital of France?" and span.output == "Paris"


def test_openai_error_status(recorder, handler, server):
    import openai

    server.push(Reply(status=429, error_message="slow down"))
    with pytest.raises(openai.RateLimitError):
        _openai(server).chat(USER)
    (span,) = recorder.tree()
    assert span.status == "error" and span.error["type"] == "openai.RateLimitError"
    assert "slow down" in span.error["message"]


async def test_openai_function_agent_token_counts(recorder, handler, server):
    server.push(
        Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="call_1")], prompt_tokens=50, completion_tokens=8),
        Reply("2 + 3 = 5", prompt_tokens=70, completion_tokens=6),
    )
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(add)], llm=_openai(server), streaming=False)
    assert str(await agent.run("What is 2 + 3?")) == "2 + 3 = 5"

    (root,) = recorder.tree()
    assert shape(root) == ("agent", "Agent", [("llm", "OpenAI", []), ("tool", "add", []), ("llm", "OpenAI", [])])
    first, tool, second = root.children
    assert (first.attributes[A.USAGE_INPUT_TOKENS], first.attributes[A.USAGE_OUTPUT_TOKENS]) == (50, 8)
    assert (second.attributes[A.USAGE_INPUT_TOKENS], second.attributes[A.USAGE_OUTPUT_TOKENS]) == (70, 6)
    assert first.output["tool_calls"][0]["id"] == "call_1" == tool.attributes[A.TOOL_CALL_ID]
    assert first.attributes[A.RESPONSE_FINISH_REASONS] == ["tool_calls"]
    assert tool.output == "5"
