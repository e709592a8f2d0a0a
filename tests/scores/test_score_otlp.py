"""Scores through the `otlp` sink to a real OTLP receiver (Phoenix): a `gen_ai.evaluation.result` event
on the span it judges while that span is open; a late score, or a trace's, as a zero-length span of
its own in the scored trace."""

from __future__ import annotations

from pathlib import Path

import pytest

import tracewire
from tests.otel.otel_receiver import Phoenix


def test_scores_arrive_as_genai_evaluation_results(phoenix: Phoenix, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    client = tracewire.init(sink="otlp", otlp_endpoint=phoenix.endpoint("http/protobuf"),
                            otlp_protocol="http/protobuf", flush_interval=0.01)
    with tracewire.span("agent", "answer") as root:
        with tracewire.span("tool", "lookup") as tool:
            tracewire.score("relevant", 0.8, label="mostly", comment="two of three hits", source="llm")
    assert client.flush(20)
    # after the spans went out: a late score of the tool, one of the trace, one of a session
    late = tracewire.score("correct", False, trace_id=root.trace_id, span_id=tool.span_id, source="human")
    whole = tracewire.score("helpful", 1, trace_id=root.trace_id, source="user")
    tracewire.score("csat", 5, session_id="s-1")  # no trace to go in: not exported
    assert client.flush(20)
    tracewire.shutdown()

    spans = phoenix.spans(root.trace_id, 4)
    assert set(spans) == {"invoke_agent answer", "execute_tool lookup", "gen_ai.evaluation.result correct",
                          "gen_ai.evaluation.result helpful"}
    (event,) = spans["execute_tool lookup"]["events"]
    assert event["name"] == "gen_ai.evaluation.result"
    e = event["attributes"]
    assert (e["gen_ai.evaluation.name"], e["gen_ai.evaluation.score.value"], e["gen_ai.evaluation.score.label"],
            e["gen_ai.evaluation.explanation"], e["tracewire.score.source"]) == (
        "relevant", 0.8, "mostly", "two of three hits", "llm")

    correct = spans["gen_ai.evaluation.result correct"]
    assert correct["parent_id"] == tool.span_id  # under the span it judges
    assert correct["start_time"] == correct["end_time"]
    a = correct["attributes"]
    assert (a["gen_ai.evaluation.name"], a["gen_ai.evaluation.score.value"], a["tracewire.score.id"]) == (
        "correct", 0.0, late)
    assert [ev["name"] for ev in correct["events"]] == ["gen_ai.evaluation.result"]
    helpful = spans["gen_ai.evaluation.result helpful"]
    assert helpful["parent_id"] is None and helpful["attributes"]["tracewire.score.id"] == whole
