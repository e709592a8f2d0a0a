"""A three-turn tool-using conversation in a session: one session, turns in order, each tool result
linked to the call that asked for it, read back through `tracewire show` and `tracewire export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tests.openai.calls import TOOLS, client
from tracewire.cli.main import main
from tracewire.integrations.openai import instrument
from tracewire.model import attributes as A
from tracewire.testing.openai_server import OpenAIServer, Reply, ToolCall


def add(a: int, b: int) -> int:
    return a + b


def converse(server: OpenAIServer) -> str:
    """User asks; the model calls `add` twice in two turns, then answers. Returns the answer."""
    cl = client(server)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is (2 + 3) + 4?"}]
    with tracewire.session(session_id="conv-1", user_id="ada"):
        with tracewire.span("agent", "calculator"):
            while True:
                reply = cl.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
                msg = reply.choices[0].message
                messages.append(msg.model_dump(exclude_none=True))
                if not msg.tool_calls:
                    return str(msg.content)
                for call in msg.tool_calls:
                    with tracewire.span("tool", call.function.name, input=call.function.arguments,
                                        attributes={A.TOOL_CALL_ID: call.id}) as tool:
                        result = add(**json.loads(call.function.arguments))
                        tool.set_output(result)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": str(result)})


def test_three_turns_read_in_order_with_tool_results_linked(
        server: OpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "conv.db")
    tracewire.init(db=db, flush_interval=0.01)
    instrument()
    server.push(Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="call_first")]),
                Reply(tool_calls=[ToolCall("add", {"a": 5, "b": 4}, id="call_second")]),
                Reply("(2 + 3) + 4 = 9"))
    assert converse(server) == "(2 + 3) + 4 = 9"
    assert tracewire.flush(10)
    tracewire.shutdown()

    capsys.readouterr()
    assert main(["export", "--db", db]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert {e["session_id"] for e in events} == {"conv-1"} and len({e["trace_id"] for e in events}) == 1
    ends = sorted((e for e in events if e["phase"] == "end"), key=lambda e: e["time"])
    assert [(e["kind"], e["name"]) for e in ends] == [
        ("llm", "gpt-4o-mini"), ("tool", "add"), ("llm", "gpt-4o-mini"), ("tool", "add"), ("llm", "gpt-4o-mini"),
        ("agent", "calculator")]
    turn1, tool1, turn2, tool2, turn3 = ends[:5]
    starts = {e["span_id"]: e for e in events if e["phase"] == "start"}
    # each call's id, asked for in one turn, comes back with its result in the next request
    assert turn1["attributes"][A.TOOL_CALL_IDS] == ["call_first"] == [c["id"] for c in turn1["output"]["tool_calls"]]
    assert starts[tool1["span_id"]]["attributes"][A.TOOL_CALL_ID] == "call_first" and tool1["output"] == 5
    assert starts[turn2["span_id"]]["attributes"][A.TOOL_RESULT_IDS] == ["call_first"]
    assert starts[turn2["span_id"]]["input"][-1] == {"role": "tool", "content": "5", "tool_call_id": "call_first"}
    assert turn2["attributes"][A.TOOL_CALL_IDS] == ["call_second"]
    assert starts[tool2["span_id"]]["attributes"][A.TOOL_CALL_ID] == "call_second" and tool2["output"] == 9
    assert starts[turn3["span_id"]]["attributes"][A.TOOL_RESULT_IDS] == ["call_second"]
    assert turn3["output"] == {"role": "assistant", "content": "(2 + 3) + 4 = 9"}
    assert len(starts[turn3["span_id"]]["input"]) == 5  # user, call, result, call, result

    assert main(["show", "--last", "--full", "--db", db]) == 0
    shown = capsys.readouterr().out
    assert "conv-1" in shown
    order = [shown.index(s) for s in ("calculator", "call_first", "call_second", "(2 + 3) + 4 = 9")]
    assert order == sorted(order), shown
    assert shown.count("gpt-4o-mini") >= 3 and shown.count("add") >= 2
