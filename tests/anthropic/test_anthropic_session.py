"""A three-turn tool-using conversation in `tracewire.session()`: one session, each turn's tool_use
ids answered by the next request's tool_result blocks, the turns in order in `tracewire show`,
`tracewire sessions` and the JSONL export — and the API key never in the store."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tests.anthropic.clients import API_KEY, MODEL, aclient, client
from tracewire.cli.main import main
from tracewire.integrations.anthropic import wrap
from tracewire.testing.anthropic_server import AnthropicServer, Reply, ToolUse

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TOOLS = [{"name": "get_weather", "description": "Weather now", "input_schema": {"type": "object"}},
         {"name": "convert", "description": "Celsius to Fahrenheit", "input_schema": {"type": "object"}}]


def weather_script() -> list[Reply]:
    return [
        Reply("Checking Oslo.", tool_uses=[ToolUse("get_weather", {"city": "Oslo"}, id="toolu_w1")]),
        Reply(tool_uses=[ToolUse("convert", {"celsius": -3}, id="toolu_c2")]),
        Reply("It is -3 °C (26.6 °F) and snowing in Oslo."),
    ]


def run_tools(content: Any) -> list[dict[str, Any]]:
    results = {"get_weather": "-3 °C, snow", "convert": "26.6 °F"}
    return [{"type": "tool_result", "tool_use_id": b.id, "content": results[b.name]}
            for b in content if b.type == "tool_use"]


def converse(srv: AnthropicServer) -> None:
    c = wrap(client(srv))
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Oslo, in Fahrenheit?"}]
    with tracewire.session(session_id="sess-oslo", user_id="ada"):
        while True:
            reply = c.messages.create(model=MODEL, max_tokens=256, system="Use the tools.", tools=TOOLS,
                                      messages=messages)
            messages.append({"role": "assistant", "content": reply.content})
            if reply.stop_reason != "tool_use":
                break
            messages.append({"role": "user", "content": run_tools(reply.content)})


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0
    return ANSI.sub("", capsys.readouterr().out)


def test_three_turns_are_one_session_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "tw.db")
    tracewire.init(db=db, flush_interval=0.01)
    with AnthropicServer(weather_script()) as srv:
        converse(srv)
        sent = [r.body["messages"] for r in srv.requests]
    assert tracewire.shutdown()
    # the ids went back to the API as the SDK user sent them
    assert sent[2][4]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_c2", "content": "26.6 °F"}]

    events = [json.loads(line) for line in cli(capsys, "export", "--db", db).splitlines()]
    ends = [e for e in events if e["type"] == "llm.end"]
    assert len(ends) == 3 and {e["session_id"] for e in events} == {"sess-oslo"}
    assert len({e["trace_id"] for e in ends}) == 3  # a trace a turn, one session
    assert [e["output"].get("tool_calls", [{}])[0].get("id") for e in ends] == ["toolu_w1", "toolu_c2", None]
    # linked by id: a response's tool uses, and the next request's results answering them
    assert [e["attributes"].get("tracewire.tool_call.ids") for e in ends] == [["toolu_w1"], ["toolu_c2"], None]
    assert [e["attributes"].get("tracewire.tool_result.ids") for e in events if e["type"] == "llm.start"] == [
        None, ["toolu_w1"], ["toolu_c2"]]
    starts = [e for e in events if e["type"] == "llm.start"]
    last_input = starts[-1]["input"]
    assert [(m["role"], m.get("tool_call_id"), [c["id"] for c in m.get("tool_calls", [])]) for m in last_input] == [
        ("system", None, []), ("user", None, []), ("assistant", None, ["toolu_w1"]), ("tool", "toolu_w1", []),
        ("assistant", None, ["toolu_c2"]), ("tool", "toolu_c2", []),
    ]

    shown = cli(capsys, "show", "--last", "--db", db)
    order = [shown.index(s) for s in (
        "user: Weather in Oslo, in Fahrenheit?", "assistant: Checking Oslo.",
        "assistant → call get_weather [toolu_w1]", "tool (toolu_w1): -3 °C, snow",
        "assistant → call convert [toolu_c2]", "tool (toolu_c2): 26.6 °F",
        "assistant: It is -3 °C (26.6 °F) and snowing in Oslo.")]
    assert order == sorted(order), shown
    assert "session sess-oslo" in shown

    sessions = cli(capsys, "sessions", "--db", db)
    assert "sess-oslo" in sessions and len([ln for ln in sessions.splitlines() if "sess-oslo" in ln]) == 1


def store_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))


def test_api_key_and_auth_headers_never_reach_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import anthropic

    monkeypatch.chdir(tmp_path)
    db = tmp_path / "tw.db"
    tracewire.init(db=str(db), flush_interval=0.01)
    token = "at-bearer-8e2f4c6a1d3b5e79"
    with AnthropicServer([Reply("fine"), Reply(status=401, error_message="bad key"), Reply("streamed"),
                          Reply("bearer"), Reply("async")]) as srv:
        c = wrap(client(srv))
        c.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(anthropic.AuthenticationError):
            c.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}],
                              extra_headers={"x-api-key": API_KEY})
        with c.messages.stream(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]) as s:
            s.until_done()
        b = wrap(anthropic.Anthropic(base_url=srv.base_url, auth_token=token, max_retries=0))
        b.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        import asyncio

        asyncio.run(wrap(aclient(srv)).messages.create(model=MODEL, max_tokens=8,
                                                       messages=[{"role": "user", "content": "hi"}]))
        headers = [{k.lower(): v for k, v in r.headers.items()} for r in srv.requests]
    assert tracewire.shutdown()
    # sent, really: the key (as this SDK sends it), the extra header, the auth token
    assert headers[0]["authorization"] == f"Bearer {API_KEY}" and headers[1]["x-api-key"] == API_KEY
    assert headers[3]["authorization"] == f"Bearer {token}"
    raw = store_bytes(db)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 10  # five calls, start and end
    finally:
        conn.close()
    for secret in (API_KEY.encode(), token.encode(), b"x-api-key", b"Bearer", b"authorization", b"Authorization"):
        assert secret not in raw, secret
