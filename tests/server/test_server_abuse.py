"""Oversize, bombs, garbage and huge batches get a clear 4xx (or a per-event rejection), and the collector
keeps answering /healthz afterwards."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from collector_harness import Collector, make_event

from tracewire.wire import MIB, NewKey, signed_headers


@pytest.fixture(autouse=True)
def still_healthy(collector: Collector) -> Iterator[None]:
    yield
    assert collector.healthy(), "the collector must keep answering /healthz"
    assert collector.proc.poll() is None


def _error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:500]
    assert r.json()["error"]["code"] == code


def test_oversize_body_is_refused(collector: Collector, key: NewKey) -> None:
    big = make_event(input="x" * (11 * MIB))
    _error(collector.post(key, [big]), 413, "body_too_large")
    assert collector.count(key.project) == 0


def test_oversize_chunked_body_without_length_is_refused(collector: Collector, key: NewKey) -> None:
    body = orjson.dumps({"events": [make_event(input="y" * (11 * MIB))]})
    headers = signed_headers(key.api_key, key.signing_secret, body)

    def chunks() -> Iterator[bytes]:  # a generator body goes out with Transfer-Encoding: chunked
        for i in range(0, len(body), MIB):
            yield body[i:i + MIB]

    r = collector.http.post(collector.url + "/v1/events", data=chunks(), headers=headers, timeout=60)
    _error(r, 413, "body_too_large")
    assert collector.count(key.project) == 0


def gzip_bomb(inflated_mib: int) -> bytes:
    """A valid single-member gzip that inflates to `inflated_mib` MiB of zeros, ~1 KiB per MiB: one
    full-flushed deflate block of 1 MiB of zeros (byte-aligned, no back-references) repeated."""
    zeros = bytes(MIB)
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(inflated_mib):
        crc = zlib.crc32(zeros, crc)
    size = (inflated_mib * MIB) & 0xFFFFFFFF
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + block * inflated_mib + c.flush() + crc.to_bytes(4, "little") + size.to_bytes(4, "little")


def test_gzip_bomb_is_refused_without_inflating_it_all(collector: Collector, key: NewKey) -> None:
    assert gzip.decompress(gzip_bomb(2)) == bytes(2 * MIB)  # a real gzip member
    bomb = gzip_bomb(1024)  # 1 GiB inflated, ~1 MiB sent: under the 10 MiB wire limit, far over the 50 MiB one
    assert len(bomb) < 2 * MIB
    r = collector.post(key, body=bomb, headers={"Content-Encoding": "gzip"})
    _error(r, 413, "body_too_large")
    assert "inflated" in r.json()["error"]["message"]
    assert collector.count(key.project) == 0


@pytest.mark.parametrize(("body", "code"), [
    (b'{"events": [', "malformed_json"),
    (b"\xff\xfe not json", "malformed_json"),
    (b'"just a string"', "bad_batch"),
    (b'{"events": {"id": 1}}', "bad_batch"),
    (b'{"no_events": []}', "bad_batch"),
    (b'{"schema": 2, "events": []}', "unsupported_schema"),
])
def test_malformed_batches(collector: Collector, key: NewKey, body: bytes, code: str) -> None:
    _error(collector.post(key, body=body), 400, code)
    assert collector.count(key.project) == 0


def test_corrupt_gzip_and_unknown_encoding(collector: Collector, key: NewKey) -> None:
    _error(collector.post(key, body=b"\x1f\x8b\x08\x00garbage", headers={"Content-Encoding": "gzip"}),
           400, "malformed_json")
    _error(collector.post(key, [make_event()], headers={"Content-Encoding": "br"}), 415, "unsupported_encoding")
    assert collector.count(key.project) == 0


def test_ten_thousand_events_in_one_batch(collector: Collector, key: NewKey) -> None:
    events = [make_event(f"big-{i % 100}") for i in range(10_000)]
    r = collector.post(key, events, gzip=True)
    assert r.status_code == 200, r.text[:300]
    assert (r.json()["accepted"], len(r.json()["results"])) == (10_000, 10_000)
    assert collector.count(key.project) == 10_000
    _error(collector.post(key, [*events, make_event()]), 413, "too_many_events")
    assert collector.count(key.project) == 10_000


def test_one_invalid_event_does_not_sink_the_batch(collector: Collector, key: NewKey) -> None:
    events = [make_event() for _ in range(20)]
    bad = make_event(trace_id=None)
    bad.pop("trace_id")
    batch = events[:10] + [bad] + events[10:]
    doc = collector.post(key, batch).json()
    assert (doc["accepted"], doc["duplicate"], doc["rejected"]) == (20, 0, 1)
    assert doc["results"][10] == {"id": bad["id"], "status": "rejected", "reason": "missing_field:trace_id",
                                  "retryable": False}
    assert collector.count(key.project) == 20


@pytest.mark.parametrize(("change", "reason"), [
    ({"schema": 2}, "unsupported_schema"),
    ({"schema": "1"}, "unsupported_schema"),
    ({"schema": None}, "missing_field:schema"),
    ({"id": None}, "missing_field:id"),
    ({"type": None}, "missing_field:type"),
    ({"span_id": None}, "missing_field:span_id"),
    ({"time": None}, "missing_field:time"),
    ({"id": ""}, "invalid_field:id"),
    ({"id": 12}, "invalid_field:id"),
    ({"trace_id": "t" * 300}, "invalid_field:trace_id"),
    ({"span_id": "a\x00b"}, "invalid_field:span_id"),
    ({"session_id": ["x"]}, "invalid_field:session_id"),
    ({"time": "yesterday"}, "invalid_field:time"),
    ({"time": -1}, "invalid_field:time"),
    ({"time": 1.5}, "invalid_field:time"),
    ({"input": "z" * (MIB + 10)}, "event_too_large"),
])
def test_per_event_rejections(collector: Collector, key: NewKey, change: dict[str, Any], reason: str) -> None:
    bad = {k: v for k, v in {**make_event(), **change}.items() if v is not None}
    good = make_event()
    doc = collector.post(key, [bad, good]).json()
    assert doc["results"][0]["status"] == "rejected" and doc["results"][0]["reason"] == reason
    assert doc["results"][1] == {"id": good["id"], "status": "accepted"}
    assert collector.count(key.project) == 1


def test_not_an_object_and_nul_in_content(collector: Collector, key: NewKey) -> None:
    ok = make_event(input="nul \x00 inside content is fine")
    doc = collector.post(key, [42, "x", ok]).json()
    assert [r["status"] for r in doc["results"]] == ["rejected", "rejected", "accepted"]
    assert doc["results"][0] == {"id": None, "status": "rejected", "reason": "not_an_object", "retryable": False}
    (stored,) = collector.get(f"/v1/traces/{ok['trace_id']}", key).json()["events"]
    assert stored["input"] == ok["input"]


def test_nul_and_odd_values_in_reads_and_headers(collector: Collector, key: NewKey) -> None:
    """NUL cannot reach PostgreSQL text columns; odd timestamps are refused, never a 500."""
    _error(collector.get("/v1/traces", key, session_id="a\x00b"), 400, "bad_request")
    _error(collector.get("/v1/traces/a%00b", key), 404, "not_found")
    _error(collector.get("/v1/sessions/a%00b", key), 404, "not_found")
    body = orjson.dumps({"events": [make_event()]})
    for ts in ("--5", "1e9", "99999999999999999999999", "12 34", "١٢٣".encode()):  # last: Arabic digits
        r = collector.post(key, body=body, headers={"X-Tracewire-Timestamp": ts})  # type: ignore[dict-item]
        assert r.status_code == 401, (ts, r.text)
    assert collector.count(key.project) == 0


def test_bad_query_wrong_method_and_unknown_path_get_the_documented_codes(collector: Collector, key: NewKey) -> None:
    for params in ({"limit": 0}, {"limit": "many"}, {"offset": -1}, {"status": "sideways"}):
        _error(collector.get("/v1/traces", key, **params), 400, "bad_request")
    _error(collector.http.get(collector.url + "/v1/events", timeout=30), 405, "method_not_allowed")
    _error(collector.http.delete(collector.url + "/v1/traces", timeout=30), 405, "method_not_allowed")
    _error(collector.get("/v1/no-such-thing", key), 404, "not_found")


def test_the_optional_batch_schema_field(collector: Collector, key: NewKey) -> None:
    e = make_event()
    doc = collector.post(key, body=orjson.dumps({"schema": 1, "events": [e]})).json()
    assert [r["status"] for r in doc["results"]] == ["accepted"]
    _error(collector.post(key, body=orjson.dumps({"schema": "1", "events": [make_event()]})), 400,
           "unsupported_schema")
    assert collector.count(key.project) == 1
