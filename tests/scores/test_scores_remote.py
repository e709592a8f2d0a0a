"""Scores read from a collector (SQLite and PostgreSQL): `RemoteStore.scores` over `GET /v1/scores`, and
`show`, `traces`, `sessions` and `export` with `--server` showing them as they do for the local store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tracewire
from tests.server.collector_harness import Collector
from tracewire.cli.main import main
from tracewire.read.remote import MAX_SCORE_TRACES, RemoteStore
from tracewire.wire import NewKey


def _sent(collector: Collector, key: NewKey, tmp_path: Path) -> tuple[tracewire.Span, tracewire.Span]:
    """A trace with a tool span, scored on the span, on the trace and on its session, sent to the collector."""
    client = tracewire.init(sink="http", endpoint=collector.url, api_key=key.api_key, signing_key=key.signing_secret,
                            spool_dir=str(tmp_path / "spool"), flush_interval=0.01)
    try:
        with tracewire.session(session_id="chat-r"):
            with tracewire.span("agent", "planner") as root:
                with tracewire.span("tool", "search") as tool:
                    tracewire.score("relevant", 0.5, source="llm", comment="half of the hits", id="s-1")
        tracewire.score("tone", label="curt", trace_id=root.trace_id, source="human", id="s-2")
        tracewire.score("helpful", True, trace_id=root.trace_id, id="s-3")
        tracewire.score("csat", 4, session_id="chat-r", source="user", id="s-4")
        assert client.flush(20)
        assert client.stats()["delivery"]["http"]["dead_lettered"] == {}
    finally:
        tracewire.shutdown()
    collector.wait_for(key.project, 4)
    return root, tool


@pytest.fixture
def sent(collector: Collector, key: NewKey, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> tuple[tracewire.Span, tracewire.Span]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACEWIRE_API_KEY", key.api_key)
    return _sent(collector, key, tmp_path)


def _cli(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> list[str]:
    capsys.readouterr()
    assert main([*args, "--server", url]) == 0
    return [line.rstrip() for line in capsys.readouterr().out.splitlines()]


def test_remote_store_reads_scores_by_trace_session_and_name(
        collector: Collector, key: NewKey, sent: tuple[tracewire.Span, tracewire.Span]) -> None:
    root, tool = sent
    store = RemoteStore(collector.url, key.api_key)
    try:
        by_trace = store.scores(trace_ids=[root.trace_id])
        assert [(s["id"], s["name"], s["span_id"]) for s in by_trace] == [
            ("s-1", "relevant", tool.span_id), ("s-2", "tone", None), ("s-3", "helpful", None)]
        assert (by_trace[0]["value"], by_trace[0]["comment"], by_trace[0]["source"]) == (0.5, "half of the hits", "llm")
        assert by_trace[2]["value"] is True
        assert [s["id"] for s in store.scores(session_id="chat-r")] == ["s-4"]
        assert [s["id"] for s in store.scores(trace_ids=[root.trace_id], name="tone")] == ["s-2"]
        assert store.scores(trace_ids=[]) == []
        # more trace ids than one request takes: asked in parts, merged oldest first
        many = [f"{i:032x}" for i in range(MAX_SCORE_TRACES + 3)] + [root.trace_id]
        assert [s["id"] for s in store.scores(trace_ids=many)] == ["s-1", "s-2", "s-3"]
    finally:
        store.close()
    other = RemoteStore(collector.url, collector.new_key().api_key)
    try:
        assert other.scores(trace_ids=[root.trace_id]) == []  # another project's key sees none
    finally:
        other.close()


def test_show_traces_and_sessions_with_server_show_scores(
        collector: Collector, sent: tuple[tracewire.Span, tracewire.Span], capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = sent
    out = _cli(capsys, collector.url, "show", root.trace_id)
    assert out[out.index("score   tone = curt  [human]") + 1] == "score   helpful = true  [code]"
    at = next(i for i, line in enumerate(out) if line.startswith("└─ tool search  "))
    assert out[at + 1] == "      score: relevant = 0.5  [llm]  half of the hits"

    out = _cli(capsys, collector.url, "traces")
    assert out[0].split()[-1] == "scores"
    assert out[1].endswith("helpful 1, relevant 0.5, tone curt")

    out = _cli(capsys, collector.url, "sessions")
    assert out[0].split()[-1] == "scores"
    assert out[1].startswith("chat-r") and out[1].endswith("csat 4")


def test_export_with_server_writes_score_records_after_the_events(
        collector: Collector, sent: tuple[tracewire.Span, tracewire.Span], capsys: pytest.CaptureFixture[str]) -> None:
    root, tool = sent
    records = [json.loads(line) for line in _cli(capsys, collector.url, "export", "--trace", root.trace_id)]
    events, scores = records[:4], records[4:]
    assert {e["type"] for e in events} == {"agent.start", "agent.end", "tool.start", "tool.end"}
    assert [(s["id"], s["type"], s["schema"], s["name"], s["span_id"]) for s in scores] == [
        ("s-1", "score", 2, "relevant", tool.span_id), ("s-2", "score", 2, "tone", None),
        ("s-3", "score", 2, "helpful", None)]
    assert list(scores[0])[:4] == ["id", "schema", "type", "name"]  # a record as the SDK writes it
    everything = [json.loads(line) for line in _cli(capsys, collector.url, "export")]
    assert [s["id"] for s in everything if s["type"] == "score"] == ["s-1", "s-2", "s-3", "s-4"]
    assert [r["type"] for r in everything].index("score") == 4  # after every event
