"""A CrewAI run (one agent, one task, one tool; scripted OpenAI-compatible server on 127.0.0.1),
recorded by the CrewAI adapter and exported over OTLP to Phoenix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import tracewire
from tests.otel.otel_receiver import Phoenix, chat_spans, received_tree
from tracewire.model import attributes as A
from tracewire.testing.openai_server import OpenAIServer, Reply, ToolCall


@pytest.fixture
def crewai_offline(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {"CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_TRACING_ENABLED": "false",
                       "CREWAI_DISABLE_VERSION_CHECK": "true", "CREWAI_TESTING": "true",
                       "HOME": str(tmp_path), "OPENAI_API_KEY": "sk-fake"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    from tracewire.integrations.crewai import instrument, uninstrument

    instrument()
    try:
        yield
    finally:
        uninstrument()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_crewai_run_exported(phoenix: Phoenix, protocol: str, crewai_offline: None) -> None:
    from crewai import LLM, Agent, Crew, Task
    from crewai.tools import tool

    @tool("multiply")
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    client = tracewire.init(sink="otlp", otlp_endpoint=phoenix.endpoint(protocol), otlp_protocol=protocol,
                            otlp_capture_content=True, flush_interval=0.01)
    script = [Reply(tool_calls=[ToolCall("multiply", {"a": 6, "b": 7}, id="call_m1")], prompt_tokens=40,
                    completion_tokens=9),
              Reply("Final Answer: 42", prompt_tokens=60, completion_tokens=4)]
    with OpenAIServer(script) as server:
        llm = LLM(model="openai/gpt-4o-mini", base_url=server.base_url, api_key="sk-fake")
        agent = Agent(role="Calculator", goal="compute", backstory="math", llm=llm, tools=[multiply])
        task = Task(description="What is 6*7?", expected_output="a number", agent=agent)
        with tracewire.span("chain", "request") as request:  # to know the trace id
            result = Crew(agents=[agent], tasks=[task]).kickoff()
    assert "42" in str(result)
    assert client.flush(20)

    spans = phoenix.trace(request.trace_id, 7)
    assert received_tree(spans) == [
        ("request", "CHAIN", [
            ("invoke_agent crew", "AGENT", [
                ("What is 6*7?", "CHAIN", [
                    ("invoke_agent Calculator", "AGENT", [
                        ("chat gpt-4o-mini", "LLM", []),
                        ("execute_tool multiply", "TOOL", []),
                        ("chat gpt-4o-mini", "LLM", []),
                    ]),
                ]),
            ]),
        ]),
    ]
    assert {s["context"]["trace_id"] for s in spans} == {request.trace_id}
    crew = next(s for s in spans if s["name"] == "invoke_agent crew")
    assert crew["parent_id"] == request.span_id
    assert crew["attributes"][A.OPERATION_NAME] == "invoke_agent" and crew["attributes"][A.AGENT_NAME] == "crew"
    agent_span = next(s for s in spans if s["name"] == "invoke_agent Calculator")
    assert agent_span["attributes"][A.AGENT_NAME] == "Calculator"

    chats, usage = chat_spans(spans, "gpt-4o-mini")
    assert all(c["parent_id"] == agent_span["context"]["span_id"] for c in chats)
    assert usage == [(40, 9, 49), (60, 4, 64)]
    for c in chats:
        a = c["attributes"]
        assert a[A.OPERATION_NAME] == "chat" and a[A.REQUEST_MODEL] == "gpt-4o-mini"
        assert a["llm.token_count.prompt"] == a[A.USAGE_INPUT_TOKENS] and a["tracewire.framework"] == "crewai"
    assert '"name":"multiply"' in chats[0]["attributes"][A.TOOL_DEFINITIONS]

    tool_span = next(s for s in spans if s["name"] == "execute_tool multiply")
    t = tool_span["attributes"]
    assert t[A.TOOL_NAME] == "multiply" and t[A.OPERATION_NAME] == "execute_tool"
    assert t["gen_ai.tool.call.result"] == "42"
    assert all(s["status_code"] == "OK" for s in spans)
    tracewire.shutdown()
