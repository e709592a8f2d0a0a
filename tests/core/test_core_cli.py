"""The `tracewire` command against a real SQLite store."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time

import tracewire
from tracewire.model import attributes as A
from tracewire.model.genai import usage_attributes


def _cli(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracewire.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "TRACEWIRE_DB": db}, timeout=60)


def _record_two_traces(db: str) -> tuple[str, str]:
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
    assert out.stderr == f"store: {db}\n"  # stdout stays pipeable
    lines = out.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["id", "start", "name", "duration", "spans", "LLM calls",
                                             "tokens in/out", "cost", "status"]
    row = re.split(r"\s{2,}", lines[1])
    assert second.startswith(row[0]) and len(row[0]) >= 8 and not first.startswith(row[0])
    assert row[2:] == ["agent second", row[3], "3", "1", "1,000 / 200", "$0.00027", "error (tool lookup)"]
    assert first.startswith(lines[2].split()[0])

    show = _cli("show", "--last", db=db)
    assert show.returncode == 0, show.stderr
    tree = show.stdout.splitlines()
    assert tree[0] == f"trace   {second}  agent second"
    assert tree[2] == "status  error (tool lookup)"
    at = tree.index("") + 1
    assert tree[at].startswith("agent second  ") and tree[at].endswith("  ok")  # a child failed, not the root
    assert tree[at + 1].startswith("├─ llm gpt-4o-mini  ") and "  gpt-4o-mini  1,000 / 200 tokens  $0.00027  ok" in tree[at + 1]
    assert tree[at + 2].startswith("└─ tool lookup  ") and tree[at + 2].endswith("  error")
    assert tree[at + 3] == "      error: LookupError: no such row"
    assert _cli("show", first, db=db).stdout.splitlines()[0] == f"trace   {first}  agent first"

    exported = _cli("export", db=db).stdout.splitlines()
    assert len(exported) == 8
    events = [json.loads(line) for line in exported]
    assert {e["schema"] for e in events} == {1}
    only = _cli("export", "--trace", first, db=db).stdout.splitlines()
    assert [json.loads(x)["type"] for x in only] == ["agent.start", "agent.end"]

    tail = _cli("tail", "--no-follow", "-n", "3", db=db)
    assert len(tail.stdout.splitlines()) == 3 and "agent.end" in tail.stdout.splitlines()[-1]

    by_session = _cli("traces", "--session", "sess-9", db=db).stdout.splitlines()
    assert len(by_session) == 3 and second.startswith(by_session[1].split()[0])
    assert by_session[2].split()[:3] == ["total", "1", "traces"]


def test_missing_store_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = _cli("show", "--last", db=str(tmp_path / "nope.db"))
    assert r.returncode == 1 and "no tracewire store at" in r.stderr


def test_traces_row_counts_llm_calls_tokens_and_cost(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "cols.db")
    tracewire.init(db=db)
    with tracewire.span("agent", "planner") as root:
        with tracewire.span("llm", "gpt-4o", attributes={A.REQUEST_MODEL: "gpt-4o"}) as llm:
            llm.set_attributes(usage_attributes(1200, 300, cost=0.0125))
        with tracewire.span("tool", "search"):
            pass
        with tracewire.span("chain", "summarize"):
            with tracewire.span("llm", "gpt-4o-mini") as llm2:
                llm2.end(attributes=usage_attributes(800, 150, cost=0.0075))
    with tracewire.span("agent", "other"):  # a later trace: its own row, not summed into ours
        with tracewire.span("llm", "m") as other:
            other.set_attributes(usage_attributes(5, 5, cost=1.0))
    assert tracewire.shutdown()

    out = _cli("traces", "--full-ids", db=db)
    assert out.returncode == 0, out.stderr
    header, *rows, total = out.stdout.splitlines()
    names = re.split(r"\s{2,}", header)
    by_id = {r.split()[0]: dict(zip(names, re.split(r"\s{2,}", r), strict=True)) for r in rows}
    row = by_id[root.trace_id]
    assert row["name"] == "agent planner" and row["status"] == "ok" and row["spans"] == "5"
    assert (row["LLM calls"], row["tokens in/out"], row["cost"]) == ("2", "2,000 / 450", "$0.02"), row
    assert row["duration"].endswith(" ms") and row["start"] != "-"
    assert len(by_id) == 2 and by_id[other.trace_id]["tokens in/out"] == "5 / 5"
    assert by_id[other.trace_id]["cost"] == "$1.00"
    assert re.split(r"\s{2,}", total) == ["total", "2 traces", "3", "2,005 / 455", "$1.02", "0 errors"]


def test_tail_follows_events_written_after_it_started(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "tail.db")
    client = tracewire.init(db=db, flush_interval=0.01)
    tracewire.record("log", name="before-tail")
    assert client.flush(10)  # tail needs the store to exist
    proc = subprocess.Popen([sys.executable, "-m", "tracewire.cli", "tail", "--interval", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TRACEWIRE_DB": db})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True).start()

    def wait_for(needles: list[str], timeout: float) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not all(any(n in line for line in seen) for n in needles):
            try:
                seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"tail did not print {needles} in {timeout}s; got {seen}") from None
        return seen

    try:
        wait_for(["before-tail"], 30)  # started (a cold interpreter may be slow on a busy machine)
        spans = []
        for i in range(3):
            with tracewire.span("tool", f"after-{i}") as s:
                pass
            spans.append(s)
        tracewire.record("user.input", name="late-point", input="hi")
        assert client.flush(10)
        written = time.monotonic()
        seen = wait_for([f" after-{i}" for i in range(3)] + ["late-point"], 5)
        assert time.monotonic() - written < 5
        assert proc.poll() is None  # still following
        for i, s in enumerate(spans):
            mine = [line.split() for line in seen if line.split()[3:4] == [f"after-{i}"]]
            assert [cells[2] for cells in mine] == ["tool.start", "tool.end"], mine
            assert all(s.trace_id.startswith(cells[1]) for cells in mine)
            assert mine[1][5] == "ms"  # the end's duration: "0.42 ms"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def test_show_renders_a_trace_deeper_than_the_recursion_limit_and_flags_parent_cycles() -> None:
    from tracewire.cli.main import render_tree

    depth = 3000
    events = [{"id": f"e{i}", "type": "chain.start", "kind": "chain", "phase": "start", "trace_id": "t",
               "span_id": f"s{i}", "parent_span_id": f"s{i - 1}" if i else None, "name": f"n{i}", "time": i}
              for i in range(depth)]
    events += [{"id": "c1", "type": "tool.start", "kind": "tool", "phase": "start", "trace_id": "t", "span_id": "a",
                "parent_span_id": "b", "name": "loop-a", "time": 1},
               {"id": "c2", "type": "tool.start", "kind": "tool", "phase": "start", "trace_id": "t", "span_id": "b",
                "parent_span_id": "a", "name": "loop-b", "time": 2}]
    lines = render_tree(events)
    assert len(lines) == depth + 2
    assert lines[0].startswith("chain n0") and "n2999" in lines[depth - 1]
    assert sum("parent cycle" in line for line in lines) == 2
    assert [sum(f"loop-{x}" in line for line in lines) for x in "ab"] == [1, 1]
