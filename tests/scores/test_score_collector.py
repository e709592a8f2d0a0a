"""Scores over the wire: the SDK's `http` sink to the real collector (SQLite and PostgreSQL), stored
project-scoped and upserted by id, served by `/v1/traces/{id}`, `/v1/sessions/{id}` and `/v1/scores`;
and a collector that knows only schema-1 events refusing them item by item, dead-lettered, then
replayed to one that knows them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tests.server.collector_harness import Collector, make_event
from tracewire.model.score import SCORE_SCHEMA
from tracewire.server.ingest import Rejected, check_event, inflate, parse_batch
from tracewire.wire import Limits, NewKey


def _http_client(collector_url: str, key: NewKey, tmp_path: Path) -> tracewire.Client:
    return tracewire.init(sink="http", endpoint=collector_url, api_key=key.api_key, signing_key=key.signing_secret,
                          spool_dir=str(tmp_path / "spool"), flush_interval=0.01)


def _record(**fields: Any) -> dict[str, Any]:
    rec = {"id": "r-1", "schema": SCORE_SCHEMA, "type": "score", "name": "n", "value": 1, "label": None,
           "comment": None, "trace_id": "d" * 32, "span_id": None, "session_id": None, "source": "code",
           "time": 1_000}
    rec.update(fields)
    return rec


def test_the_sdk_delivers_scores_and_the_read_api_serves_them(collector: Collector, key: NewKey,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    client = _http_client(collector.url, key, tmp_path)
    with tracewire.session(session_id="chat-1"):
        with tracewire.span("agent", "answer") as root:
            with tracewire.span("tool", "lookup") as tool:
                pass
    on_span = tracewire.score("correct", True, trace_id=root.trace_id, span_id=tool.span_id)
    on_trace = tracewire.score("helpful", 0.5, trace_id=root.trace_id, source="llm", id="h-1",
                               comment="token=abcd1234abcd1234abcd1234")
    tracewire.score("helpful", 0.9, trace_id=root.trace_id, source="llm", id="h-1")  # an update of h-1
    on_session = tracewire.score("csat", 5, session_id="chat-1", source="user")
    assert client.flush(20)
    assert client.stats()["delivery"]["http"]["dead_lettered"] == {}
    tracewire.shutdown()

    doc = collector.get(f"/v1/traces/{root.trace_id}", key).json()
    by_id = {s["id"]: s for s in doc["scores"]}
    assert set(by_id) == {on_span, on_trace}
    assert (by_id[on_span]["span_id"], by_id[on_span]["value"]) == (tool.span_id, True)
    assert (by_id[on_trace]["value"], by_id[on_trace]["source"], by_id[on_trace]["comment"]) == (0.9, "llm", None)
    assert collector.get("/v1/sessions/chat-1", key).json()["scores"][0]["id"] == on_session

    assert [s["id"] for s in collector.get("/v1/scores", key, trace_id=root.trace_id, name="helpful").json()["scores"]] \
        == ["h-1"]
    assert [s["value"] for s in collector.get("/v1/scores", key, session_id="chat-1").json()["scores"]] == [5]
    # project-scoped: another project's key sees none of them
    other = collector.new_key()
    assert collector.get("/v1/scores", other, trace_id=root.trace_id).json() == {"scores": []}
    assert collector.get("/v1/scores", None).status_code == 401


def test_the_latest_write_by_its_own_time_wins_in_the_collector(collector: Collector, key: NewKey) -> None:
    trace = make_event()["trace_id"]
    r = collector.post(key, [_record(trace_id=trace, value=2, time=2_000)]).json()
    assert r["results"] == [{"id": "r-1", "status": "accepted"}]
    collector.post(key, [_record(trace_id=trace, value=1, time=1_000)])  # older, later: kept out
    # the same id twice in one batch: the later time wins there too
    collector.post(key, [_record(trace_id=trace, value=4, time=4_000), _record(trace_id=trace, value=3, time=3_000)])
    got = collector.get("/v1/scores", key, trace_id=trace).json()["scores"]
    assert [(s["value"], s["time"]) for s in got] == [(4, 4_000)]


def test_the_collector_rejects_a_malformed_score_by_field(collector: Collector, key: NewKey) -> None:
    bad = [_record(id="a", value="high"), _record(id="b", trace_id=None), _record(id="c", span_id="s" * 16, trace_id=None),
           _record(id="d", type="evaluation"), _record(id="e", name=None)]
    results = collector.post(key, bad).json()["results"]
    assert [(r["id"], r["status"], r["reason"]) for r in results] == [
        ("a", "rejected", "invalid_field:value"), ("b", "rejected", "missing_field:trace_id"),
        ("c", "rejected", "missing_field:trace_id"), ("d", "rejected", "unsupported_schema"),
        ("e", "rejected", "missing_field:name")]


class _SchemaOneCollector(BaseHTTPRequestHandler):
    """What a collector from before scores answers: each item through the schema-1 event check alone."""

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook
        raw = self.rfile.read(int(self.headers["content-length"]))
        events, _ = parse_batch(inflate(raw, self.headers.get("content-encoding") or "", 1 << 26), Limits())
        results = []
        for e in events:
            c = check_event(e, Limits().max_event_bytes)
            results.append({"id": c.id, "status": "rejected", "reason": c.reason, "retryable": False}
                           if isinstance(c, Rejected) else {"id": c.id, "status": "accepted"})
        data = json.dumps({"batch_id": None, "results": results}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def old_collector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SchemaOneCollector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_old_collector_refuses_scores_and_the_sdk_dead_letters_them_for_replay(
        old_collector: str, collector: Collector, key: NewKey, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tracewire.cli.main import main as tracewire_cli

    monkeypatch.chdir(tmp_path)
    client = _http_client(old_collector, key, tmp_path)
    with tracewire.span("agent", "answer") as root:
        pass
    score_id = tracewire.score("helpful", 1, trace_id=root.trace_id)
    client.flush(20)
    delivery = client.stats()["delivery"]["http"]
    tracewire.shutdown()
    assert delivery["dead_lettered"] == {"rejected:unsupported_schema": 1}  # the events went through
    assert delivery["shipped"] == 2

    # once the collector knows scores, `tracewire replay` delivers the dead letter
    code = tracewire_cli(["replay", "--endpoint", collector.url, "--api-key", key.api_key,
                          "--signing-key", key.signing_secret, "--spool-dir", str(tmp_path / "spool")])
    assert code == 0, capsys.readouterr()
    got = collector.get("/v1/scores", key, trace_id=root.trace_id).json()["scores"]
    assert [s["id"] for s in got] == [score_id]
