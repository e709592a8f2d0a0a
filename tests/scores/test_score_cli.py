"""Scores on the command line: `show` lists a trace's scores and its spans' at their spans, `traces` and
`sessions` carry a summary column, `export` writes score records after the events."""

from __future__ import annotations

import json

import pytest

import tracewire
from tracewire.cli.main import main
from tracewire.cli.render import score_summary


def _recorded() -> tuple[tracewire.Span, tracewire.Span]:
    tracewire.init(flush_interval=0.01)
    with tracewire.session(session_id="chat-9"):
        with tracewire.span("agent", "planner") as root:
            with tracewire.span("tool", "search") as tool:
                tracewire.score("relevant", 0.5, source="llm", comment="half of the hits\nsecond line")
            tracewire.score("relevant", 1, trace_id=root.trace_id, span_id=tool.span_id, id="r2")
    tracewire.score("tone", label="curt", trace_id=root.trace_id, source="human")
    tracewire.score("helpful", True, trace_id=root.trace_id, id="h1")
    tracewire.score("csat", 4, session_id="chat-9", source="user")
    assert tracewire.flush(10)
    return root, tool


def _lines(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[str]:
    assert main(argv) == 0
    return [line.rstrip() for line in capsys.readouterr().out.splitlines()]


def test_show_lists_trace_scores_under_the_header_and_span_scores_at_their_span(
        db: str, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = _recorded()
    out = _lines(capsys, ["show", root.trace_id])
    assert out[out.index("score   tone = curt  [human]") + 1] == "score   helpful = true  [code]"
    at = next(i for i, line in enumerate(out) if line.startswith("└─ tool search  "))
    assert out[at + 1:at + 3] == ["      score: relevant = 0.5  [llm]  half of the hits",
                              "      score: relevant = 1  [code]"]


def test_traces_shows_a_score_summary_column(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    _recorded()
    out = _lines(capsys, ["traces"])
    assert out[0].split()[-1] == "scores"
    assert out[1].endswith("ok        helpful 1, relevant 0.75 ×2, tone curt")
    assert out[2].endswith("helpful 1, relevant 0.75 ×2, tone curt")  # the totals row, over every listed trace


def test_sessions_show_the_session_scores(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    _recorded()
    out = _lines(capsys, ["sessions"])
    assert out[0].split()[-1] == "scores"
    assert out[1].startswith("chat-9") and out[1].endswith("csat 4")


def test_export_writes_score_records_after_the_events(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    root, tool = _recorded()
    records = [json.loads(line) for line in _lines(capsys, ["export", "--trace", root.trace_id])]
    events, scores = records[:4], records[4:]
    assert {e["type"] for e in events} == {"agent.start", "agent.end", "tool.start", "tool.end"}
    assert [(s["type"], s["schema"], s["name"], s["trace_id"], s["span_id"]) for s in scores] == [
        ("score", 2, "relevant", root.trace_id, tool.span_id), ("score", 2, "relevant", root.trace_id, tool.span_id),
        ("score", 2, "tone", root.trace_id, None), ("score", 2, "helpful", root.trace_id, None)]
    everything = [json.loads(line) for line in _lines(capsys, ["export"])]
    assert [s["session_id"] for s in everything if s["type"] == "score"][-1] == "chat-9"


def test_score_summary_means_numbers_and_keeps_the_latest_label() -> None:
    assert score_summary([]) == "-"
    assert score_summary([{"name": "ok", "value": True}, {"name": "ok", "value": False},
                          {"name": "grade", "label": "b"}, {"name": "grade", "label": "a"}]) == "grade a ×2, ok 0.5 ×2"


def test_the_scores_column_appears_once_there_are_scores(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    tracewire.init(flush_interval=0.01)
    with tracewire.span("agent", "planner") as root:
        pass
    assert tracewire.flush(10)
    assert _lines(capsys, ["traces"])[0].split()[-1] == "status"
    tracewire.score("helpful", 1, trace_id=root.trace_id)
    assert tracewire.flush(10)
    assert _lines(capsys, ["traces"])[0].split()[-1] == "scores"
