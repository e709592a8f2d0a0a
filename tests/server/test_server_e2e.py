"""End to end against the real collector (SQLite and PostgreSQL): events the SDK records go in signed,
come back through the read API, RemoteStore, /metrics and the keys CLI."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from collector_harness import Collector, make_event

import tracewire
from tracewire.model import attributes as A
from tracewire.read.remote import RemoteError, RemoteStore
from tracewire.server.cli import main as server_cli


def _agent_run(question: str, *, fail: bool = False) -> None:
    with tracewire.span("agent", "researcher", input={"q": question}) as agent:
        with tracewire.span("llm", "gpt-4o-mini", attributes={A.REQUEST_MODEL: "gpt-4o-mini"}) as llm:
            llm.end(output="thinking", attributes={A.USAGE_INPUT_TOKENS: 12, A.USAGE_OUTPUT_TOKENS: 5,
                                                   A.COST_USD: 0.001})
        with tracewire.span("tool", "web_search", input={"q": question}) as tool:
            if fail:
                tool.fail(ValueError("no results"))
            else:
                tool.end(output=["a", "b"])
        agent.end(output="done")


def _recorded(recorder: Any) -> list[dict[str, Any]]:
    with tracewire.session(session_id="sess-1", user_id="alice"):
        _agent_run("first")
        time.sleep(0.002)
        _agent_run("second", fail=True)
    return recorder.events()


def test_sdk_events_round_trip_through_the_read_api(collector: Collector, key: Any, recorder: Any) -> None:
    events = _recorded(recorder)
    r = collector.post(key, events, gzip=True)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["accepted"], doc["duplicate"], doc["rejected"]) == (len(events), 0, 0)
    assert [x["id"] for x in doc["results"]] == [e["id"] for e in events]
    assert collector.count(key.project) == len(events)

    listing = collector.get("/v1/traces", key).json()
    assert listing["next_offset"] is None
    traces = listing["traces"]
    assert [t["status"] for t in traces] == ["error", "ok"]  # newest first
    assert all(t["name"] == "researcher" and t["kind"] == "agent" and t["spans"] == 3 for t in traces)
    ok = traces[1]
    assert (ok["llm_calls"], ok["input_tokens"], ok["output_tokens"], ok["cost_usd"]) == (1, 12, 5, 0.001)
    assert ok["session_id"] == "sess-1"

    trace = collector.get(f"/v1/traces/{ok['trace_id']}", key).json()
    assert sorted(e["id"] for e in trace["events"]) == sorted(e["id"] for e in events if e["trace_id"] == ok["trace_id"])
    (root,) = trace["spans"]
    assert (root["kind"], root["name"], root["status"]) == ("agent", "researcher", "ok")
    assert [(c["kind"], c["name"], c["status"]) for c in root["children"]] == [
        ("llm", "gpt-4o-mini", "ok"), ("tool", "web_search", "ok")]
    assert root["children"][0]["attributes"][A.USAGE_INPUT_TOKENS] == 12

    session = collector.get("/v1/sessions/sess-1", key).json()
    assert [t["trace_id"] for t in session["traces"]] == [t["trace_id"] for t in traces]


def test_trace_filters_and_paging(collector: Collector, key: Any) -> None:
    t0 = 1_700_000_000_000_000_000
    batch = []
    for i in range(5):
        tid = f"trace-{i}"
        status = "end" if i % 2 == 0 else "error"
        span = f"span-{i}"
        common = {"span_id": span, "kind": "chain", "name": f"pipeline-{i}", "session_id": f"s{i % 2}",
                  "user_id": "bob" if i < 3 else "carol"}
        batch.append(make_event(tid, type="chain.start", phase="start", time=t0 + i * 1000, **common))
        batch.append(make_event(tid, type=f"chain.{status}", phase=status, time=t0 + i * 1000 + 500, **common))
    batch.append(make_event("trace-open", type="chain.start", phase="start", time=t0 + 10_000, span_id="so",
                            kind="chain", name="still-running"))
    assert collector.post(key, batch).json()["accepted"] == len(batch)

    def ids(**params: Any) -> list[str]:
        r = collector.get("/v1/traces", key, **params)
        assert r.status_code == 200, r.text
        return [t["trace_id"] for t in r.json()["traces"]]

    assert ids() == ["trace-open", "trace-4", "trace-3", "trace-2", "trace-1", "trace-0"]
    assert ids(status="error") == ["trace-3", "trace-1"]
    assert ids(status="open") == ["trace-open"]
    assert ids(status="ok", user_id="bob") == ["trace-2", "trace-0"]
    assert ids(session_id="s1") == ["trace-3", "trace-1"]
    assert ids(name="PIPELINE-4") == ["trace-4"]
    assert ids(start=t0 + 1000, end=t0 + 3000) == ["trace-3", "trace-2", "trace-1"]
    page1 = collector.get("/v1/traces", key, limit=2).json()
    page2 = collector.get("/v1/traces", key, limit=2, offset=page1["next_offset"]).json()
    last = collector.get("/v1/traces", key, limit=2, offset=4).json()
    assert [t["trace_id"] for t in page1["traces"] + page2["traces"] + last["traces"]] == ids()
    assert (page1["next_offset"], page2["next_offset"], last["next_offset"]) == (2, 4, None)
    filtered = collector.get("/v1/traces", key, status="ok", limit=1, offset=1).json()
    assert ([t["trace_id"] for t in filtered["traces"]], filtered["next_offset"]) == (["trace-2"], 2)

    remote = RemoteStore(collector.url, key.api_key)
    assert [t["trace_id"] for t in remote.list_traces(limit=3, status="ok")] == ["trace-4", "trace-2", "trace-0"]
    assert remote.last_trace_id() == "trace-open"
    assert [e["type"] for e in remote.trace_events("trace-1")] == ["chain.start", "chain.error"]
    assert remote.trace_events("no-such-trace") == []
    assert [t["trace_id"] for t in remote.session_traces("s0")] == ["trace-4", "trace-2", "trace-0"]
    with pytest.raises(RemoteError) as err:
        RemoteStore(collector.url, "twk_000000000000_" + "x" * 40).list_traces()
    assert (err.value.status, err.value.code) == (401, "invalid_key")


def test_metrics_and_client_reported_loss(collector: Collector, key: Any) -> None:
    body = json.dumps({"events": [make_event(), make_event(id=None)],
                       "client": {"sdk": "tracewire-python", "version": "0.1.0",
                                  "loss": {"queue_full": 7, "spool_full": 1}}}).encode()
    r = collector.post(key, body=body)
    assert (r.json()["accepted"], r.json()["rejected"]) == (1, 1)
    text = collector.http.get(collector.url + "/metrics").text
    assert f'tracewire_client_reported_loss{{project="{key.project}",reason="queue_full"}} 7' in text
    assert 'tracewire_events_rejected_total{reason="missing_field:id"}' in text
    assert "tracewire_events_accepted_total " in text
    assert 'tracewire_request_duration_seconds_bucket{le="+Inf"}' in text
    body = json.dumps({"events": [], "client": {"loss": {"queue_full": 9}}}).encode()
    assert collector.post(key, body=body).status_code == 200
    text = collector.http.get(collector.url + "/metrics").text
    assert f'tracewire_client_reported_loss{{project="{key.project}",reason="queue_full"}} 9' in text
    assert f'project="{key.project}",reason="spool_full"' not in text  # the latest report replaces the last


def test_keys_cli_against_the_running_collector(collector: Collector, capsys: pytest.CaptureFixture[str]) -> None:
    assert server_cli(["keys", "create", "--project", "cli-proj", "--db", collector.db, "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["api_key"].startswith(f"twk_{created['key_id']}_") and created["signing_secret"].startswith("tws_")
    assert server_cli(["keys", "list", "--db", collector.db, "--json"]) == 0
    listed = {k["key_id"]: k for k in json.loads(capsys.readouterr().out)}
    assert listed[created["key_id"]]["project"] == "cli-proj" and listed[created["key_id"]]["revoked_at"] is None
    assert "signing_secret" not in listed[created["key_id"]] and "key_hash" not in listed[created["key_id"]]

    class K:
        api_key, signing_secret = created["api_key"], created["signing_secret"]

    assert collector.post(K, [make_event()]).json()["accepted"] == 1  # type: ignore[arg-type]
    assert server_cli(["keys", "revoke", created["key_id"], "--db", collector.db]) == 0
    r = collector.post(K, [make_event()])  # type: ignore[arg-type]
    assert (r.status_code, r.json()["error"]["code"]) == (401, "revoked_key")
    assert server_cli(["keys", "revoke", created["key_id"], "--db", collector.db]) == 1
    assert collector.count("cli-proj") == 1


def test_the_sdks_http_sink_delivers_to_the_collector_and_the_cli_reads_it(
        collector: Collector, key: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The other side of the wire protocol: tracewire's own `http` sink, then `tracewire show --server`."""
    from tracewire.cli.main import main as tracewire_cli

    monkeypatch.chdir(tmp_path)
    client = tracewire.init(sink="http", endpoint=collector.url, api_key=key.api_key, signing_key=key.signing_secret,
                            spool_dir=str(tmp_path / "spool"), flush_interval=0.01)
    try:
        with tracewire.session(session_id="via-http"):
            _agent_run("over the wire")
        assert client.flush(10)
        collector.wait_for(key.project, 6)
    finally:
        tracewire.shutdown()
    assert collector.count(key.project) == 6  # 3 spans x (start, end), stored once each

    assert tracewire_cli(["show", "--last", "--server", collector.url, "--api-key", key.api_key]) == 0
    out = capsys.readouterr().out
    assert "agent researcher" in out and "llm gpt-4o-mini" in out and "tool web_search" in out
    monkeypatch.setenv("TRACEWIRE_API_KEY", key.api_key)
    assert tracewire_cli(["traces", "--server", collector.url]) == 0
    assert "researcher" in capsys.readouterr().out


def test_export_from_a_collector_pages_through_every_trace(collector: Collector, key: Any,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from tracewire.cli.main import main as tracewire_cli

    batch = [make_event(f"exp-{i}", type="chain.start", phase="start", kind="chain", span_id=f"s{i}")
             for i in range(7)]
    assert collector.post(key, batch).json()["accepted"] == 7
    remote = RemoteStore(collector.url, key.api_key)
    assert sorted(remote.trace_ids(page=3)) == sorted(f"exp-{i}" for i in range(7))  # pages of 3, 3 and 1
    assert tracewire_cli(["export", "--server", collector.url, "--api-key", key.api_key]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(e["trace_id"] for e in exported) == sorted(f"exp-{i}" for i in range(7))
