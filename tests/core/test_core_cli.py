"""The `tracewire` command against a real SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import tracewire


def _cli(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracewire.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "TRACEWIRE_DB": db}, timeout=60)


def _record_two_traces(db: str) -> tuple[str, str]:
    from tracewire import attributes as A
    from tracewire.genai import usage_attributes

    tracewire.init(db=db)
    with tracewire.span("agent", "first") as first:
        pass
    with tracewire.session(session_id="sess-9"):
        with tracewire.span("agent", "second") as second:
            with tracewire.span("llm", "gpt-4o-mini", attributes={A.REQUEST_MODEL: "gpt-4o-mini"}) as llm:
                llm.set_attributes(usage_attributes(1000, 200, model="gpt-4o-mini"))
            try:
                with tracewire.span("tool", "lookup"):
                    raise LookupError("no such row")
            except LookupError:
                pass
    tracewire.shutdown()
    return first.trace_id, second.trace_id


def test_traces_show_export(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "cli.db")
    first, second = _record_two_traces(db)

    out = _cli("traces", db=db)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["trace", "root", "start"]
    assert lines[1].startswith(second) and "agent second" in lines[1] and " error " in lines[1]
    assert "1000/200" in lines[1] and "0.000270" in lines[1]  # 1000*0.15/1e6 + 200*0.60/1e6
    assert lines[2].startswith(first)

    show = _cli("show", "--last", db=db)
    assert show.returncode == 0, show.stderr
    tree = show.stdout.splitlines()
    assert tree[0] == f"trace {second}"
    assert tree[1].startswith("agent second")
    assert tree[2].startswith("├─ llm gpt-4o-mini") and "tokens=1000/200" in tree[2] and "model=gpt-4o-mini" in tree[2]
    assert tree[3].startswith("└─ tool lookup") and "ERROR" in tree[3] and "LookupError: no such row" in tree[3]
    assert _cli("show", first, db=db).stdout.splitlines()[1].startswith("agent first")

    exported = _cli("export", db=db).stdout.splitlines()
    assert len(exported) == 8
    events = [json.loads(line) for line in exported]
    assert {e["schema"] for e in events} == {1}
    only = _cli("export", "--trace", first, db=db).stdout.splitlines()
    assert [json.loads(x)["type"] for x in only] == ["agent.start", "agent.end"]

    tail = _cli("tail", "--no-follow", "-n", "3", db=db)
    assert len(tail.stdout.splitlines()) == 3 and "agent.end" in tail.stdout.splitlines()[-1]

    by_session = _cli("traces", "--session", "sess-9", db=db).stdout.splitlines()
    assert len(by_session) == 2 and by_session[1].startswith(second)


def test_missing_store_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = _cli("show", "--last", db=str(tmp_path / "nope.db"))
    assert r.returncode == 1 and "no tracewire store at" in r.stderr
