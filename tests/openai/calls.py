"""What the OpenAI SDK tests share: real clients pointed at the scripted server, the requests they
send, and readers of the spans recorded."""

from __future__ import annotations

from typing import Any

import openai

from tests.conftest import Recorder
from tracewire.read.fold import SpanView
from tracewire.testing.openai_server import OpenAIServer

KEY = "sk-test-9f8e7d6c5b4a39281706"  # a key-shaped secret that must never reach a store
USER = [{"role": "user", "content": "What is 2 + 3?"}]
TOOLS = [{"type": "function", "function": {
    "name": "add", "description": "Add two numbers",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
}}]



def client(server: OpenAIServer, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=kw.pop("max_retries", 0), **kw)


def aclient(server: OpenAIServer, **kw: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=kw.pop("max_retries", 0), **kw)


def llm_spans(recorder: Recorder) -> list[SpanView]:
    return [s for s in recorder.spans() if s.framework == "openai"]


def only_span(recorder: Recorder) -> SpanView:
    spans = llm_spans(recorder)
    assert len(spans) == 1, [(s.kind, s.name, s.status) for s in spans]
    return spans[0]
