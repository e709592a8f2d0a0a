"""No double recording: LangChain's ChatOpenAI and LiteLLM call the OpenAI SDK underneath. Where
tracewire's LangChain handler or LiteLLM logger records the call, instrument() adds no second
llm span; where nothing of tracewire records it, the SDK's span is the record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import litellm
import pytest
from langchain_openai import ChatOpenAI

import tracewire
from tests.conftest import Recorder, shape
from tests.openai.calls import KEY, USER, client
from tracewire.integrations.langchain import TracewireCallbackHandler
from tracewire.integrations.litellm import TracewireLogger, drain
from tracewire.integrations.openai import instrument
from tracewire.read.fold import SpanView
from tracewire.testing.openai_server import OpenAIServer, Reply


def llm_frameworks(recorder: Recorder, n: int) -> list[str]:
    """The frameworks of the llm spans, once `n` have ended (LiteLLM ends them on its own threads)."""
    deadline = time.monotonic() + 10
    while True:
        spans: list[SpanView] = [s for s in recorder.spans() if s.kind == "llm"]
        if sum(s.status != "open" for s in spans) >= n or time.monotonic() > deadline:
            return sorted(s.framework or "" for s in spans)
        time.sleep(0.02)


def test_chat_openai_with_the_handler_is_one_span_per_model_call(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    llm = ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key=KEY, max_retries=0)
    handler = TracewireCallbackHandler()
    with tracewire.span("agent", "lc"):
        llm.invoke("hello", config={"callbacks": [handler]})
        assert "".join(str(c.content) for c in llm.stream("hello", config={"callbacks": [handler]})) == "ok"

        async def both() -> None:
            await llm.ainvoke("hello", config={"callbacks": [handler]})
            async for _ in llm.astream("hello", config={"callbacks": [handler]}):
                pass

        asyncio.run(both())
        # right after the handler's runs, in the same context: a direct SDK call is recorded
        client(server).chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert len(server.requests) == 5
    assert [shape(t) for t in recorder.tree()] == [
        ("agent", "lc", [("llm", "ChatOpenAI", [])] * 4 + [("llm", "gpt-4o-mini", [])])]
    assert llm_frameworks(recorder, 5) == ["langchain"] * 4 + ["openai"]


def test_chat_openai_without_the_handler_is_recorded_by_the_sdk(server: OpenAIServer, recorder: Recorder) -> None:
    instrument()
    llm = ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key=KEY, max_retries=0)
    llm.invoke("hello")
    assert [(s.framework, s.kind, s.name) for s in recorder.spans()] == [("openai", "llm", "gpt-4o-mini")]


@pytest.fixture
def logger() -> Iterator[TracewireLogger]:
    saved = list(litellm.callbacks)
    handler = TracewireLogger()
    litellm.callbacks = [handler]
    try:
        yield handler
    finally:
        litellm.callbacks = saved
        for name in ("input_callback", "success_callback", "failure_callback", "_async_success_callback",
                     "_async_failure_callback", "service_callback"):
            current = getattr(litellm, name, None)
            if isinstance(current, list):
                current[:] = [c for c in current if not isinstance(c, TracewireLogger)]


def test_litellm_with_the_logger_is_one_span_per_call(
        server: OpenAIServer, recorder: Recorder, logger: TracewireLogger) -> None:
    server.push(Reply("one"), Reply("two three"), Reply("four"), Reply("direct"))
    instrument()
    kw = {"model": "openai/gpt-4o-mini", "api_base": server.base_url, "api_key": KEY, "messages": USER,
          "num_retries": 0}
    litellm.completion(**kw)
    assert "".join(c.choices[0].delta.content or "" for c in litellm.completion(**kw, stream=True)) == "two three"

    async def acall() -> None:
        await litellm.acompletion(**kw)
        await drain()

    asyncio.run(acall())
    # the logger's claim was used up by LiteLLM's own SDK call: a direct one after it is recorded
    client(server).chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert len(server.requests) == 4
    assert llm_frameworks(recorder, 4) == ["litellm"] * 3 + ["openai"]
