"""Pieces of the collector on their own: inflating with a cap, signatures, keys files, rate limits,
storage outages, the CLI registration and metrics text."""

from __future__ import annotations

import argparse
import gzip
import json
import time
import tracemalloc
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from collector_harness import make_event
from fastapi.testclient import TestClient

from tracewire.read.remote import RemoteStore
from tracewire.server.app import ServerConfig, create_app
from tracewire.server.cli import main as server_cli
from tracewire.server.cli import register
from tracewire.server.ingest import WireError, inflate
from tracewire.server.keys import FileKeyStore, create_key
from tracewire.server.metrics import Metrics
from tracewire.server.store import EventRow, StoreUnavailable, sqlite_path
from tracewire.server.store_sqlite import SQLiteStore
from tracewire.wire import MIB, Limits, hash_key, new_key, parse_key_id, sign, signed_headers, verify


def test_signature_test_vector() -> None:
    """The vector in docs/collector.md: any client implementation can check itself against it."""
    assert sign("tws_test-secret", 1700000000, b'{"events":[]}') == (
        "v1=d665ddd8ba6689a03f31492de2656fb282626f9053c415981654c45522f4ff67")
    assert verify("tws_test-secret", "1700000000", b'{"events":[]}', sign("tws_test-secret", 1700000000, b'{"events":[]}'))
    assert not verify("tws_test-secret", "1700000001", b'{"events":[]}', sign("tws_test-secret", 1700000000, b'{"events":[]}'))


def test_key_format() -> None:
    k = new_key("proj")
    assert parse_key_id(k.api_key) == k.key_id and len(k.key_id) == 12
    assert k.signing_secret.startswith("tws_") and len(k.signing_secret) >= 36
    assert k.key_hash == hash_key(k.api_key) and len(k.key_hash) == 64
    for bad in ("", "twk_", "twk_XYZ_secret", f"twk_{k.key_id}_short", "Bearer " + k.api_key):
        assert parse_key_id(bad) is None


def test_inflate_never_holds_more_than_the_limit() -> None:
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = b"".join(c.compress(bytes(MIB)) for _ in range(64)) + c.flush()  # 64 MiB inflated
    tracemalloc.start()
    try:
        with pytest.raises(WireError) as err:
            inflate(bomb, "gzip", 4 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (err.value.status, err.value.code) == (413, "body_too_large")
    assert peak < 4 * MIB + 2 * MIB, peak  # the cap plus one chunk of slack, never the 64 MiB


def test_inflate_variants() -> None:
    assert inflate(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 10) == b"abcd"  # multi-member
    assert inflate(zlib.compress(b"xyz"), "deflate", 10) == b"xyz"
    assert inflate(b"plain", "identity", 10) == b"plain"
    for body, enc, code in ((b"x" * 11, "", "body_too_large"), (gzip.compress(b"x" * 11), "gzip", "body_too_large"),
                            (gzip.compress(b"abc")[:-12], "gzip", "malformed_json"), (b"abc", "br", "unsupported_encoding")):
        with pytest.raises(WireError) as err:
            inflate(body, enc, 10)
        assert err.value.code == code


def _app(tmp_path: Path, **cfg: Any) -> tuple[TestClient, Any]:
    config = ServerConfig(db=f"sqlite:///{tmp_path}/c.db", **cfg)
    app = create_app(config)
    return TestClient(app), app.state.collector


def _post(client: TestClient, key: Any, events: list[dict[str, Any]]) -> Any:
    body = orjson.dumps({"events": events})
    return client.post("/v1/events", content=body, headers=signed_headers(key.api_key, key.signing_secret, body))


def test_keys_file_revocation_applies_to_the_next_request(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    client, col = _app(tmp_path, keys_file=str(keys_file))
    key = create_key(FileKeyStore(str(keys_file)), "filed")
    assert _post(client, key, [make_event()]).json()["accepted"] == 1
    assert FileKeyStore(str(keys_file)).revoke_key(key.key_id, time.time())
    r = _post(client, key, [make_event()])
    assert (r.status_code, r.json()["error"]["code"]) == (401, "revoked_key")
    assert col.store.count_events("filed") == 1
    assert col.store.list_keys() == []  # file mode: the database holds no keys


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    client, col = _app(tmp_path, rate_limit=1.0)
    key = create_key(col.store, "limited")
    statuses = [_post(client, key, [make_event()]) for _ in range(4)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    limited = statuses[-1]
    assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert col.store.count_events("limited") == 2


class _DownStore(SQLiteStore):
    def insert_events(self, project: str, rows: Sequence[EventRow]) -> set[str]:
        raise StoreUnavailable("disk on fire")

    def ping(self) -> None:
        raise StoreUnavailable("disk on fire")


def test_storage_outage_is_503_with_retry_after(tmp_path: Path) -> None:
    store = _DownStore(str(tmp_path / "down.db"))
    key = create_key(store, "down")
    client = TestClient(create_app(ServerConfig(db="unused"), store=store))
    r = _post(client, key, [make_event()])
    assert (r.status_code, r.json()["error"]["code"], r.headers["Retry-After"]) == (503, "unavailable", "1")
    assert client.get("/healthz").status_code == 503
    assert 'tracewire_requests_rejected_total{code="unavailable"} 1' in client.get("/metrics").text


def test_custom_limits(tmp_path: Path) -> None:
    client, col = _app(tmp_path, limits=Limits(max_body_bytes=2000, max_events=3, max_event_bytes=600))
    key = create_key(col.store, "small")
    r = _post(client, key, [make_event() for _ in range(4)])
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_many_events")
    doc = _post(client, key, [make_event(input="x" * 700), make_event()]).json()
    assert [x.get("reason") for x in doc["results"]] == ["event_too_large", None]
    r = _post(client, key, [make_event(input="x" * 500) for _ in range(3)])
    assert (r.status_code, r.json()["error"]["code"]) == (413, "body_too_large")


def test_openapi_documents_the_api(tmp_path: Path) -> None:
    client, _ = _app(tmp_path)
    spec = client.get("/openapi.json").json()
    assert {"/v1/events", "/v1/traces", "/v1/traces/{trace_id}", "/v1/sessions/{session_id}", "/healthz",
            "/metrics"} <= set(spec["paths"])
    params = {p["name"] for p in spec["paths"]["/v1/events"]["post"]["parameters"]}
    assert {"x-tracewire-timestamp", "x-tracewire-signature", "x-tracewire-batch-id"} <= params


def test_cli_registers_serve_and_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="tracewire")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve"])
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 4319, 1) and callable(args.func)
    keys_file = str(tmp_path / "k.json")
    assert server_cli(["keys", "create", "--project", "demo", "--keys", keys_file]) == 0
    out = capsys.readouterr().out
    assert "api key:        twk_" in out and "signing secret: tws_" in out
    key_id = next(line.split()[-1] for line in out.splitlines() if line.startswith("key id:"))
    assert server_cli(["keys", "list", "--keys", keys_file]) == 0
    assert key_id in capsys.readouterr().out
    assert server_cli(["keys", "revoke", key_id, "--keys", keys_file]) == 0
    assert server_cli(["keys", "list", "--keys", keys_file, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])[0]["revoked_at"] is not None


def test_metrics_text_format() -> None:
    m = Metrics()
    m.events(3, 1, ["missing_field:id", "missing_field:id"])
    m.request_rejected("bad_signature")
    m.observe(0.003)
    text = m.render([("p\"1", "queue_full", 4)])
    assert "tracewire_events_accepted_total 3\n" in text
    assert 'tracewire_events_rejected_total{reason="missing_field:id"} 2' in text
    assert 'tracewire_request_duration_seconds_bucket{le="0.0025"} 0' in text
    assert 'tracewire_request_duration_seconds_bucket{le="0.005"} 1' in text
    assert 'tracewire_client_reported_loss{project="p\\"1",reason="queue_full"} 4' in text


def test_db_urls_and_remote_store_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sqlite_path("sqlite:///rel/x.db") == "rel/x.db"
    assert sqlite_path("sqlite:////abs/x.db") == "/abs/x.db"
    assert sqlite_path("plain.db") == "plain.db"
    with pytest.raises(ValueError):
        sqlite_path("mysql://x")
    monkeypatch.delenv("TRACEWIRE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="TRACEWIRE_API_KEY"):
        RemoteStore("http://127.0.0.1:9")
