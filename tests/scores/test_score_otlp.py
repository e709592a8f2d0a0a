"""Scores through the `otlp` sink to a real OTLP receiver (Phoenix): a `gen_ai.evaluation.result` event
on the span it judges while that span is open; a late score, or a trace's, as a zero-length span of
its own in the scored trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracewire
from tests.otel.otel_receiver import Phoenix
from tracewire.model.score import SCORE_SCHEMA
from tracewire.sinks.base import Batch
from tracewire.sinks.otlp import OTLPSink


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


def test_a_score_otlp_cannot_place_is_settled_not_retried() -> None:
    """A trace id of the caller's own shape (not OpenTelemetry's hex) or a session's score: nothing to
    export, and the write succeeds instead of failing again on every retry."""
    exporter = InMemorySpanExporter()
    sink = OTLPSink(exporter)
    records = [{"id": "a", "schema": SCORE_SCHEMA, "type": "score", "name": "n", "value": 1, "trace_id": "order-17",
                "span_id": None, "session_id": None, "source": "code", "time": 5},
               {"id": "b", "schema": SCORE_SCHEMA, "type": "score", "name": "n", "value": 1, "trace_id": None,
                "span_id": None, "session_id": "s", "source": "code", "time": 5},
               {"id": "c", "schema": SCORE_SCHEMA, "type": "score", "name": "n", "value": True, "trace_id": "e" * 32,
                "span_id": "zz", "session_id": None, "source": "code", "time": 5}]
    assert sink.write(Batch(records, [json.dumps(r) for r in records])).ok
    (span,) = exporter.get_finished_spans()  # only the one with a hex trace id; its odd span id: no parent
    assert (span.name, span.parent, span.attributes["gen_ai.evaluation.score.value"]) == (
        "gen_ai.evaluation.result n", None, 1.0)
    sink.close()
