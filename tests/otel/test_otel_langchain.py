"""A LangChain tool-calling agent run (create_agent, scripted chat model at the model boundary),
recorded by the LangChain adapter and exported over OTLP to Phoenix."""

from __future__ import annotations

from typing import Any

import pytest

import tracewire
from tests.langchain.lc_fakes import weather_agent
from tests.otel.otel_receiver import Phoenix, chat_spans, received_tree
from tracewire.integrations.langchain import TracewireCallbackHandler
from tracewire.model import attributes as A


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_langchain_agent_run_exported(phoenix: Phoenix, protocol: str, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")  # content is opt-in
    client = tracewire.init(sink="otlp", otlp_endpoint=phoenix.endpoint(protocol), otlp_protocol=protocol,
                            flush_interval=0.01)
    with tracewire.span("chain", "request") as request:  # to know the trace id
        result = weather_agent().invoke(
            {"messages": [("user", "weather in Paris?")]},
            config={"callbacks": [TracewireCallbackHandler()], "configurable": {"thread_id": "conv-9"}},
        )
    assert result["messages"][-1].content == "The weather: sunny in Paris"
    assert client.flush(20)

    spans = phoenix.trace(request.trace_id, 8)
    assert received_tree(spans) == [
        ("request", "CHAIN", [
            ("invoke_agent LangGraph", "AGENT", [
                ("model", "CHAIN", [("chat gpt-4o-mini", "LLM", [])]),
                ("tools", "CHAIN", [("execute_tool get_weather", "TOOL", [])]),
                ("model", "CHAIN", [("chat gpt-4o-mini", "LLM", [])]),
            ]),
        ]),
    ]
    assert {s["context"]["trace_id"] for s in spans} == {request.trace_id}
    by_id = {s["context"]["span_id"]: s for s in spans}
    agent = next(s for s in spans if s["name"] == "invoke_agent LangGraph")
    assert agent["parent_id"] == request.span_id
    assert agent["attributes"][A.OPERATION_NAME] == "invoke_agent"
    assert agent["attributes"][A.AGENT_NAME] == "LangGraph"

    chats, usage = chat_spans(spans, "gpt-4o-mini")
    assert [by_id[c["parent_id"]]["name"] for c in chats] == ["model", "model"]
    assert usage == [(12, 7, 19), (30, 9, 39)]
    for c in chats:
        a = c["attributes"]
        assert a[A.OPERATION_NAME] == "chat" and a[A.REQUEST_MODEL] == "gpt-4o-mini"
        assert a[A.RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18" and a[A.PROVIDER_NAME] == "scripted"
        assert a[A.CONVERSATION_ID] == "conv-9" and a["tracewire.framework"] == "langchain"
        assert a["llm.token_count.total"] == a[A.USAGE_TOTAL_TOKENS]
    assert [c["attributes"][A.RESPONSE_FINISH_REASONS] for c in chats] == [["tool_calls"], ["stop"]]
    # input/output messages in the GenAI conventions' parts shape
    assert chats[0]["attributes"]["gen_ai.input.messages"] == (
        '[{"role":"user","parts":[{"type":"text","content":"weather in Paris?"}]}]')
    assert chats[0]["attributes"]["gen_ai.output.messages"] == (
        '[{"role":"assistant","parts":[{"type":"tool_call","id":"call_Paris","name":"get_weather",'
        '"arguments":{"city":"Paris"}}],"finish_reason":"tool_calls"}]')
    assert '{"type":"tool_call_response","id":"call_Paris","response":"sunny in Paris"}' in (
        chats[1]["attributes"]["gen_ai.input.messages"])

    tool = next(s for s in spans if s["name"] == "execute_tool get_weather")
    t = tool["attributes"]
    assert t[A.TOOL_NAME] == "get_weather" and t[A.TOOL_CALL_ID] == "call_Paris"
    assert t["gen_ai.tool.call.arguments"] == '{"city":"Paris"}' and t["gen_ai.tool.call.result"] == "sunny in Paris"
    assert all(s["status_code"] == "OK" for s in spans)
    tracewire.shutdown()
