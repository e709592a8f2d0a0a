"""`tracewire.score()` into the local store: targets, defaults, idempotency and updates by id, late
scores from another process, scrubbing, and the errors bad arguments raise at the call."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tracewire.model.score import SCORE_SCHEMA, Score
from tracewire.read.local import LocalStore
from tracewire.sinks.base import Batch
from tracewire.sinks.sqlite import SQLiteSink


def read(db: str, **filters: Any) -> list[dict[str, Any]]:
    assert tracewire.flush(10)
    store = LocalStore(db)
    try:
        return store.scores(**filters)
    finally:
        store.close()


def test_scores_on_trace_span_and_session(db: str) -> None:
    tracewire.init(flush_interval=0.01)
    with tracewire.span("agent", "planner") as root:
        with tracewire.span("tool", "search") as tool:
            in_tool = tracewire.score("relevant", True)  # the current span: the tool
        on_trace = tracewire.score("helpful", 0.75, trace_id=root.trace_id, source="llm", comment="mostly")
    on_span = tracewire.score("tone", label="curt", trace_id=root.trace_id, span_id=root.span_id, source="human")
    on_session = tracewire.score("csat", 4, session_id="s-1", source="user", metadata={"ticket": 12})

    rows = {r["id"]: r for r in read(db)}
    assert rows[in_tool] == {
        "id": in_tool, "name": "relevant", "value": True, "label": None, "comment": None,
        "trace_id": tool.trace_id, "span_id": tool.span_id, "session_id": None, "source": "code",
        "metadata": None, "time": rows[in_tool]["time"]}
    assert (rows[on_trace]["value"], rows[on_trace]["span_id"], rows[on_trace]["source"],
            rows[on_trace]["comment"]) == (0.75, None, "llm", "mostly")
    assert (rows[on_span]["label"], rows[on_span]["span_id"], rows[on_span]["value"]) == ("curt", root.span_id, None)
    assert (rows[on_session]["session_id"], rows[on_session]["trace_id"], rows[on_session]["metadata"]) == (
        "s-1", None, {"ticket": 12})
    # the filters: a trace's scores include its spans'; a session's are its own
    assert {r["id"] for r in read(db, trace_ids=[root.trace_id])} == {in_tool, on_trace, on_span}
    assert [r["id"] for r in read(db, session_id="s-1")] == [on_session]
    assert [r["id"] for r in read(db, trace_ids=[root.trace_id], name="tone")] == [on_span]
    assert read(db, trace_ids=[]) == []
    many = [f"{i:032x}" for i in range(1200)] + [root.trace_id]  # more ids than one statement may bind
    assert {r["id"] for r in read(db, trace_ids=many)} == {in_tool, on_trace, on_span}
    # a row reads back as the value type an evaluator returns
    assert Score.of(rows[on_trace]) == Score(name="helpful", value=0.75, comment="mostly", id=on_trace,
                                             trace_id=root.trace_id, source="llm", time=rows[on_trace]["time"])


def test_same_id_is_one_score_and_a_later_write_updates_it(db: str) -> None:
    tracewire.init(flush_interval=0.01)
    assert tracewire.score("quality", 1, trace_id="t" * 32, id="q-1") == "q-1"
    assert tracewire.score("quality", 1, trace_id="t" * 32, id="q-1") == "q-1"
    assert [r["value"] for r in read(db)] == [1]
    tracewire.score("quality", 0, label="wrong", trace_id="t" * 32, id="q-1", comment="second look")
    (row,) = read(db)
    assert (row["id"], row["value"], row["label"], row["comment"]) == ("q-1", 0, "wrong", "second look")


def test_the_latest_write_by_its_own_time_wins_whatever_the_arrival_order(tmp_path: Path) -> None:
    """Retries and replays can deliver an older write after a newer one: the store keeps the newer."""
    path = str(tmp_path / "s.db")
    sink = SQLiteSink(path)

    def write(value: int, time_ns: int) -> None:
        rec = {"id": "x", "schema": SCORE_SCHEMA, "type": "score", "name": "n", "value": value, "label": None,
               "comment": None, "trace_id": "a" * 32, "span_id": None, "session_id": None, "source": "code",
               "time": time_ns}
        assert sink.write(Batch([rec], [json.dumps(rec)])).ok

    write(2, 2_000)
    write(1, 1_000)  # older, later: ignored
    write(1, 1_000)
    sink.close()
    assert [(r["value"], r["time"]) for r in LocalStore(path).scores()] == [(2, 2_000)]
    sink = SQLiteSink(path)
    write(3, 3_000)
    sink.close()
    assert [(r["value"], r["time"]) for r in LocalStore(path).scores()] == [(3, 3_000)]


def test_a_late_score_from_another_process_joins_a_trace_recorded_earlier(db: str, tmp_path: Path) -> None:
    tracewire.init(flush_interval=0.01)
    with tracewire.span("agent", "answer") as root:
        pass
    assert tracewire.flush(10)
    tracewire.shutdown()
    script = textwrap.dedent(f"""
        import tracewire
        tracewire.init()
        print(tracewire.score("thumbs", False, trace_id={root.trace_id!r}, source="user", comment="wrong city"))
        assert tracewire.flush(10)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    score_id = proc.stdout.strip()
    (row,) = LocalStore(db).scores(trace_ids=[root.trace_id])
    assert (row["id"], row["value"], row["source"], row["comment"]) == (score_id, False, "user", "wrong city")


def test_secrets_in_a_comment_label_or_metadata_are_scrubbed(db: str, tmp_path: Path) -> None:
    jsonl = tmp_path / "scores.jsonl"
    tracewire.init(sink=["sqlite", "jsonl"], jsonl_path=str(jsonl), flush_interval=0.01)
    secret = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
    tracewire.score("judge", 0.2, trace_id="b" * 32, comment=f"the reply leaked {secret} verbatim",
                    label=f"key {secret}", metadata={"api_key": "hunter2", "why": f"saw {secret}"})
    (row,) = read(db)
    assert secret not in json.dumps(row) and "hunter2" not in json.dumps(row)
    assert row["comment"] == "the reply leaked [REDACTED] verbatim"
    assert row["label"] == "key [REDACTED]"
    assert row["metadata"] == {"api_key": "[REDACTED]", "why": "saw [REDACTED]"}
    (line,) = jsonl.read_text().splitlines()
    assert secret not in line and json.loads(line)["comment"] == "the reply leaked [REDACTED] verbatim"


def test_metadata_that_cannot_be_serialized_is_recorded_safely(db: str) -> None:
    tracewire.init(flush_interval=0.01)

    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    tracewire.score("n", 1, trace_id="c" * 32, metadata={"obj": Odd(), "n": float("nan")})
    (row,) = read(db)
    assert row["metadata"]["obj"] == "<odd>"
    assert tracewire.stats()["internal_errors"] == {}


@pytest.mark.parametrize(("kwargs", "error", "says"), [
    ({}, ValueError, "no target"),
    ({"span_id": "a" * 16}, ValueError, "span_id needs its trace_id"),
    ({"trace_id": "a" * 32, "session_id": "s"}, ValueError, "not both"),
    ({"trace_id": "a" * 32, "value": None}, ValueError, "a value (number or bool) or a label"),
    ({"trace_id": "a" * 32, "value": "good"}, TypeError, "label="),
    ({"trace_id": "a" * 32, "value": float("inf")}, ValueError, "finite"),
    ({"trace_id": "a" * 32, "source": "robot"}, ValueError, "code, human, llm, user"),
    ({"trace_id": "a" * 32, "metadata": [1]}, TypeError, "metadata must be a mapping"),
    ({"trace_id": "a" * 32, "id": ""}, ValueError, "id must be 1 to 256"),
    ({"trace_id": 7}, TypeError, "trace_id must be a str"),
    ({"trace_id": "a" * 32, "comment": 3}, TypeError, "comment must be a str"),
])
def test_bad_arguments_raise_at_the_call_naming_them(db: str, kwargs: dict[str, Any], error: type[Exception],
                                                      says: str) -> None:
    tracewire.init(flush_interval=0.01)
    kwargs = {"value": 1, **kwargs}
    with pytest.raises(error, match=re.escape(says)):
        tracewire.score("n", **kwargs)
    tracewire.score("ok", 1, trace_id="a" * 32)
    assert [r["name"] for r in read(db)] == ["ok"]  # nothing of the refused call was recorded


def test_a_store_written_before_scores_existed_reads_none(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    sqlite3.connect(path).executescript("CREATE TABLE events (seq_no INTEGER PRIMARY KEY, id TEXT, trace_id TEXT,"
                                        " time INTEGER, body TEXT);")
    assert LocalStore(str(path)).scores() == []


def test_the_mask_and_the_processors_see_score_records(db: str) -> None:
    seen: list[str] = []

    def note(record: dict[str, Any]) -> dict[str, Any]:
        seen.append(str(record.get("type")))
        return record

    tracewire.init(flush_interval=0.01, mask=lambda text: text.replace("Alice", "[name]"), processors=[note])
    tracewire.score("judge", 1, trace_id="f" * 32, comment="Alice asked twice")
    (row,) = read(db)
    assert row["comment"] == "[name] asked twice"
    assert seen == ["score"]
