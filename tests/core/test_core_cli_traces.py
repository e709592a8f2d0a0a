"""`tracewire traces` filters and totals, `sessions`, `tail` lines, number formats and help text."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tests.runs import agent_run
from tracewire.cli.main import build_parser
from tracewire.read import formats as F

_run = agent_run


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    db = str(tmp_path / "list.db")
    tracewire.init(db=db)
    ids: dict[str, Any] = {"db": db}
    with tracewire.session(session_id="s-alpha", user_id="ada", tags=["prod", "eu"]):
        ids["a1"] = _run("alpha planner", "gpt-4o-mini", (1000, 200), 0.00027)
        ids["a2"] = _run("alpha writer", "gpt-4o", (2204, 100), 0.0065, fail=True)
    time.sleep(0.05)
    ids["mid"] = dt.datetime.now().isoformat(timespec="milliseconds")  # local time, as users type it
    time.sleep(0.05)
    with tracewire.session(session_id="s-beta", user_id="bob", tags=["prod"]):
        ids["b1"] = _run("beta planner", "claude-3-5-haiku", (50, 5), 12.3456)
    assert tracewire.shutdown()
    return ids


def _rows(out: str) -> tuple[list[list[str]], list[str]]:
    """Data rows (cells split at runs of 2+ spaces) and the totals row."""
    lines = out.splitlines()
    return [re.split(r"\s{2,}", x) for x in lines[1:-1]], re.split(r"\s{2,}", lines[-1])


def _names(out: str) -> list[str]:
    return [r[2] for r in _rows(out)[0]]


def test_each_filter(store: dict[str, Any], cli: Any) -> None:
    db = store["db"]
    assert _names(cli("traces", db=db).out) == ["agent beta planner", "agent alpha writer", "agent alpha planner"]
    assert _names(cli("traces", "--session", "s-alpha", db=db).out) == ["agent alpha writer", "agent alpha planner"]
    assert _names(cli("traces", "--user", "bob", db=db).out) == ["agent beta planner"]
    assert _names(cli("traces", "--tag", "prod", db=db).out) == _names(cli("traces", db=db).out)
    assert _names(cli("traces", "--tag", "prod", "--tag", "eu", db=db).out) == ["agent alpha writer",
                                                                               "agent alpha planner"]
    assert _names(cli("traces", "--tag", "nope", db=db).out) == []
    assert _names(cli("traces", "--status", "error", db=db).out) == ["agent alpha writer"]
    assert _names(cli("traces", "--status", "ok", db=db).out) == ["agent beta planner", "agent alpha planner"]
    assert _names(cli("traces", "--name", "PLANNER", db=db).out) == ["agent beta planner", "agent alpha planner"]
    assert _names(cli("traces", "--model", "gpt-4o", db=db).out) == ["agent alpha writer", "agent alpha planner"]
    assert _names(cli("traces", "--model", "haiku", db=db).out) == ["agent beta planner"]
    assert _names(cli("traces", "--since", store["mid"], db=db).out) == ["agent beta planner"]
    assert _names(cli("traces", "--until", store["mid"], db=db).out) == ["agent alpha writer", "agent alpha planner"]
    assert _names(cli("traces", "--since", "1h", db=db).out) == _names(cli("traces", db=db).out)
    assert _names(cli("traces", "--since", "2999-01-01", db=db).out) == []
    assert _names(cli("traces", "--limit", "1", "--status", "ok", db=db).out) == ["agent beta planner"]
    bad = cli("traces", "--since", "yesterday", db=db)
    assert bad.code == 2 and "--since: 'yesterday' is not a time" in bad.err


def test_rows_and_the_totals_row(store: dict[str, Any], cli: Any) -> None:
    r = cli("traces", db=store["db"])
    assert r.code == 0 and r.err == f"store: {store['db']}\n"
    rows, total = _rows(r.out)
    writer = rows[1]
    assert store["a2"].startswith(writer[0])
    assert writer[2:] == ["agent alpha writer", writer[3], "3", "1", "2,204 / 100", "$0.0065",
                          "error (tool get_weather)"]
    assert re.fullmatch(r"\d+(\.\d\d)? ms|\d\.\d\d s", writer[3]), writer[3]
    assert rows[0][-2:] == ["$12.35", "ok"]
    assert total == ["total", "3 traces", "3", "3,254 / 305", "$12.35", "1 error"]


def test_sessions(store: dict[str, Any], cli: Any) -> None:
    db = store["db"]
    r = cli("sessions", db=db)
    assert r.code == 0 and r.err == f"store: {db}\n"
    header, *lines = r.out.splitlines()
    assert re.split(r"\s{2,}", header) == ["session", "user", "first", "last", "traces", "LLM calls",
                                           "tokens in/out", "cost", "errors"]
    rows = [re.split(r"\s{2,}", x) for x in lines]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert [row[:2] + row[4:] for row in rows] == [["s-beta", "bob", "1", "1", "50 / 5", "$12.35", "0"],
                                                   ["s-alpha", "ada", "2", "2", "3,204 / 300", "$0.00677", "1"]]
    assert all(re.fullmatch(stamp, cell) for row in rows for cell in row[2:4])
    assert [x.split()[0] for x in cli("sessions", "--user", "ada", db=db).out.splitlines()[1:]] == ["s-alpha"]
    assert cli("sessions", "--since", "2999-01-01", db=db).out.splitlines()[1:] == []
    assert len(cli("sessions", "--limit", "1", db=db).out.splitlines()) == 2


def test_tail_lines(store: dict[str, Any], cli: Any) -> None:
    r = cli("tail", "--no-follow", "--all", db=store["db"])
    assert r.code == 0 and r.err == f"store: {store['db']}\n"
    lines = r.out.splitlines()
    assert len(lines) == 14  # 7 spans, start and end each
    clock = r"\d\d:\d\d:\d\d\.\d{3}"
    first = lines[0].split()
    assert re.fullmatch(clock, first[0]) and store["a1"].startswith(first[1]) and first[2:] == ["agent.start", "alpha",
                                                                                                  "planner"]
    llm_end = next(x for x in lines if " llm.end " in x)
    assert re.search(r"  llm\.end +chat  [\d.]+ ms  gpt-4o-mini  1,000 / 200 tokens  \$0\.00027$", llm_end), llm_end
    error = next(x for x in lines if " tool.error " in x)
    assert re.search(r"  tool\.error +get_weather  [\d.]+ ms  TimeoutError: weather API timed out$", error), error
    assert len(cli("tail", "--no-follow", "-n", "3", db=store["db"]).out.splitlines()) == 3
    full = cli("tail", "--no-follow", "-n", "1", "--full-ids", db=store["db"]).out.split()
    assert full[1] == store["b1"]


def test_number_formats() -> None:
    assert [F.duration(x) for x in (None, 0.0, 0.42, 850, 1240, 123_000, 7_380_000)] == [
        "-", "0.00 ms", "0.42 ms", "850 ms", "1.24 s", "2m 03s", "2h 03m"]
    assert (F.tokens(1204), F.tokens(None), F.tokens_in_out(0, 0), F.tokens_in_out(1204, 31)) == (
        "1,204", "-", "-", "1,204 / 31")
    assert [F.cost(x) for x in (None, 0.0, 0.0012, 0.000022800, 0.123456, 12.3456, 1234.5)] == [
        "-", "-", "$0.0012", "$0.0000228", "$0.1235", "$12.35", "$1,234.50"]
    assert F.ttft(312.4) == "ttft 312 ms"
    now = 1_800_000_000 * 10**9
    assert F.parse_when("30s", now) == now - 30 * 10**9 and F.parse_when("2h", now) == now - 7200 * 10**9
    assert F.parse_when("7d", now) == now - 7 * 86400 * 10**9
    assert F.parse_when("2026-12-06T10:00+00:00") == int(dt.datetime(2026, 12, 6, 10, tzinfo=dt.UTC).timestamp()) * 10**9
    assert F.parse_when("2026-12-06") == int(dt.datetime(2026, 12, 6).timestamp()) * 10**9  # local midnight
    with pytest.raises(ValueError, match="ISO-8601"):
        F.parse_when("last tuesday")


def test_every_option_has_help_text() -> None:
    parser = build_parser()
    missing = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif not action.help:
                missing.append((path, action.dest))

    walk(parser, "tracewire")
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    # every command that exists, the collector's included when its extra is installed
    assert {"traces", "show", "sessions", "tail", "export", "doctor", "replay", "ui", "serve", "keys"} <= set(subs.choices)
    assert missing == []
