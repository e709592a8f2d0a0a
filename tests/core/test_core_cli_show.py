"""`tracewire show`: the header and, under each span, what it carried — over a store filled by real recording."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tracewire.model import attributes as A
from tracewire.model.genai import message, usage_attributes

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LONG = "".join(f"line {i:02d} of the report\n" for i in range(40))  # 40 lines, 880 characters


class UpstreamDown(Exception):
    pass


def _record(db: str) -> str:
    tracewire.init(db=db)
    with tracewire.session(session_id="sess-show", user_id="ada", tags=["beta", "eu"]):
        with tracewire.span("agent", "planner", input={"question": "weather in Oslo?"}) as agent:
            tracewire.record("user.input", name="question", input="weather in Oslo?")
            with tracewire.span("llm", "chat", attributes={A.REQUEST_MODEL: "gpt-4o-mini"},
                                input=[message("system", "You answer weather questions."),
                                       message("user", "weather in Oslo?")]) as llm:
                llm.end(output=message("assistant", "", tool_calls=[
                    {"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}]),
                    attributes={**usage_attributes(1204, 310, cost=0.0012), A.RESPONSE_MODEL: "gpt-4o-mini-2024",
                                A.TTFT_MS: 312.4})
            with tracewire.span("tool", "get_weather", input={"city": "Oslo"},
                                attributes={A.TOOL_CALL_ID: "call_1"}) as tool:
                tool.end(output="light snow, -3°C")
            with tracewire.span("retriever", "docs", input="Oslo climate") as ret:
                ret.end(output=[{"content": "Oslo is cold in winter.", "score": 0.91, "metadata": {}},
                                {"content": "Snow is common.", "score": 0.5, "metadata": {}}])
            with tracewire.span("chain", "report") as chain:
                chain.end(output=LONG)
            try:
                with tracewire.span("tool", "fetch_forecast", input={"days": 3}):
                    try:
                        raise ConnectionRefusedError("connect to forecast.internal:443 refused")
                    except ConnectionRefusedError as exc:
                        raise UpstreamDown("the forecast service did not answer after 3 attempts; "
                                           "the last attempt waited 30 s for a connection to the upstream "
                                           "forecast.internal service in region eu-north-1") from exc
            except UpstreamDown:
                pass
            tracewire.record("agent.response", output="Light snow, -3°C in Oslo. " * 6)  # too long for one line
            agent.end(output={"answer": "Light snow, -3°C."})
    assert tracewire.shutdown()
    return agent.trace_id


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str]:
    db = str(tmp_path / "show.db")
    return db, _record(db)


def test_show_prints_header_and_every_kind_of_content(store: tuple[str, str], cli: Any) -> None:
    db, trace_id = store
    r = cli("show", "--last", db=db)
    assert r.code == 0 and r.err == f"store: {db}\n"
    lines = r.out.splitlines()
    start, rest = lines[1], lines[2:]
    assert lines[0] == f"trace   {trace_id}  agent planner"
    assert re.fullmatch(r"start   \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  \(\d+(\.\d\d)? (ms|s)\)", start), start
    assert rest[:5] == ["status  error (tool fetch_forecast)", "session sess-show", "user    ada", "tags    beta, eu",
                        "usage   1 LLM calls  1,204 / 310 tokens  $0.0012"]
    body = "\n".join(re.sub(r"  [\d.]+ (ms|s)  ", "  <t>  ", x) for x in rest[6:])
    assert body.startswith("""agent planner  <t>  ok
│  input: {"question": "weather in Oslo?"}
│  output: {"answer": "Light snow, -3°C."}
├─ · user.input question weather in Oslo?
├─ llm chat  <t>  gpt-4o-mini-2024  1,204 / 310 tokens  $0.0012  ttft 312 ms  ok
│     system: You answer weather questions.
│     user: weather in Oslo?
│     assistant → call get_weather [call_1]: {"city": "Oslo"}
├─ tool get_weather  <t>  call call_1  ok
│     args: {"city": "Oslo"}
│     result: light snow, -3°C
├─ retriever docs  <t>  ok
│     query: Oslo climate
│     doc 1 (score 0.91): Oslo is cold in winter.
│     doc 2 (score 0.5): Snow is common.
├─ chain report  <t>  ok
│     output: line 00 of the report
│             line 01 of the report
│             line 02 of the report
│             line 03 of the report
│             line 04 of the report
│             line 05 of the report … (+749 chars; --full shows all)
├─ tool fetch_forecast  <t>  error
│     args: {"days": 3}
│     error: test_core_cli_show.UpstreamDown: the forecast service did not answer after 3 attempts; the last \
attempt waited 30 s for a connection to the upstream forecast.internal service in region eu-north-1
│     caused by: ConnectionRefusedError: connect to forecast.internal:443 refused
└─ · agent.response
      output: """ + "Light snow, -3°C in Oslo. " * 6), body


def test_full_shows_content_whole(store: tuple[str, str], cli: Any) -> None:
    db, trace_id = store
    r = cli("show", trace_id, "--full", db=db)
    assert r.code == 0
    assert "│             line 39 of the report" in r.out.splitlines() and "--full shows all" not in r.out


def test_rich_output_shows_the_same_content(store: tuple[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    db, _ = store
    plain = cli("show", "--last", db=db).out
    assert "\x1b[" not in plain  # not a terminal: plain text
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = cli("show", "--last", db=db).out
    assert "\x1b[1;31m" in coloured  # the error in bold red
    assert ANSI.sub("", coloured) == plain
    monkeypatch.setenv("NO_COLOR", "1")  # NO_COLOR wins over FORCE_COLOR
    assert cli("show", "--last", db=db).out == plain


def test_the_entry_point_in_a_pipe_prints_plain_text(store: tuple[str, str]) -> None:
    db, trace_id = store
    exe = Path(sys.executable).with_name("tracewire")
    env = {**os.environ, "TRACEWIRE_DB": db, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("FORCE_COLOR", None)
    r = subprocess.run([str(exe), "show", trace_id[:12]], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"store: {db}\n"
    assert r.stdout.splitlines()[0] == f"trace   {trace_id}  agent planner"
    assert "│     assistant → call get_weather [call_1]: {\"city\": \"Oslo\"}" in r.stdout.splitlines()
    assert "\x1b[" not in r.stdout
