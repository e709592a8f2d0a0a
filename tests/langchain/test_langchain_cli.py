"""`tracewire show` of a real LangChain agent run: the prompt, the messages role by role, the tool call's
arguments and its result, as the callback handler recorded them into a SQLite store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from lc_fakes import ToolCallingFakeChatModel, get_weather_tool, usage

import tracewire
from tracewire.cli.main import main
from tracewire.integrations.langchain import TracewireCallbackHandler


def test_show_prints_what_the_agent_said_and_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "agent.db")
    tracewire.init(db=db)
    script = iter([
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_Oslo"}],
                  usage_metadata=usage(84, 17), response_metadata={"model_name": "gpt-4o-mini-2024-07-18"}),
        AIMessage("It is sunny in Oslo.", usage_metadata=usage(126, 12),
                  response_metadata={"model_name": "gpt-4o-mini-2024-07-18"}),
    ])
    agent = create_agent(ToolCallingFakeChatModel(messages=script), tools=[get_weather_tool()],
                         system_prompt="You answer weather questions.")
    handler = TracewireCallbackHandler(user_id="demo-user", tags=["example"])
    agent.invoke({"messages": [("user", "What is the weather in Oslo?")]},
                 config={"callbacks": [handler], "configurable": {"thread_id": "chat-1"}})
    assert tracewire.shutdown()

    assert main(["show", "--last", "--db", db]) == 0
    out, err = capsys.readouterr()
    assert err == f"store: {db}\n"
    lines = [re.sub(r"  [\d.]+ (ms|s)  ", "  <t>  ", x) for x in out.splitlines()]
    assert lines[0].startswith("trace   ") and lines[0].endswith("  agent LangGraph")
    assert lines[2:7] == ["status  ok", "session chat-1", "user    demo-user", "tags    example",
                          "usage   2 LLM calls  210 / 29 tokens  $0.0000489"]
    tree = lines[lines.index("") + 1:]
    assert tree == [
        "agent LangGraph  <t>  ok",
        "│  user: What is the weather in Oslo?",
        "│  assistant → call get_weather [call_Oslo]: {\"city\": \"Oslo\"}",
        "│  tool (get_weather): sunny in Oslo",
        "│  assistant: It is sunny in Oslo.",
        "├─ chain model  <t>  ok",
        "│  │  user: What is the weather in Oslo?",
        "│  │  assistant → call get_weather [call_Oslo]: {\"city\": \"Oslo\"}",
        "│  └─ llm ToolCallingFakeChatModel  <t>  gpt-4o-mini-2024-07-18  84 / 17 tokens  $0.0000228  ok",
        "│        system: You answer weather questions.",
        "│        user: What is the weather in Oslo?",
        "│        assistant → call get_weather [call_Oslo]: {\"city\": \"Oslo\"}",
        "├─ chain tools  <t>  ok",
        "│  │  call get_weather [call_Oslo]: {\"city\": \"Oslo\"}",
        "│  │  tool (get_weather): sunny in Oslo",
        "│  └─ tool get_weather  <t>  call call_Oslo  ok",
        "│        args: {\"city\": \"Oslo\"}",
        "│        result: sunny in Oslo",
        "└─ chain model  <t>  ok",
        "   │  user: What is the weather in Oslo?",
        "   │  assistant → call get_weather [call_Oslo]: {\"city\": \"Oslo\"}",
        "   │  tool (get_weather): sunny in Oslo",
        "   │  assistant: It is sunny in Oslo.",
        "   └─ llm ToolCallingFakeChatModel  <t>  gpt-4o-mini-2024-07-18  126 / 12 tokens  $0.0000261  ok",
        "         system: You answer weather questions.",
        "         user: What is the weather in Oslo?",
        "         assistant → call get_weather [call_Oslo]: {\"city\": \"Oslo\"}",
        "         tool (get_weather): sunny in Oslo",
        "         assistant: It is sunny in Oslo.",
    ], "\n".join(tree)
