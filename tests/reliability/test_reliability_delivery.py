"""The delivery rules one at a time: Retry-After, backoff, framing, dead letters + doctor + replay,
per-event rejections, spool caps, durable with a second sink, queue overflow to the spool, loss
reported to the collector, TLS verification, and the key never leaving in logs or reports."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import os
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from rel_harness import TRACEWIRE, Collector, FaultProxy, free_port

import tracewire
from tracewire.delivery.doctor import mask_key
from tracewire.delivery.records import HEADER_BYTES, Damage, Record, frame, read_records
from tracewire.delivery.shipper import _ssl_context, backoff_seconds, retry_after_seconds
from tracewire.delivery.spool import Spool
from tracewire.engine.stats import balanced


def _http(collector: Collector, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"sink": "http", **collector.settings(), "spool_dir": str(tmp_path / "spool"), **extra}


def _record(tag: str, n: int, **kw: Any) -> str:
    with tracewire.span("agent", tag) as root:
        for i in range(1, n + 1):
            tracewire.record("log", name=f"{tag}:{i}", input={"i": i}, **kw)
    return root.trace_id


def _finish(timeout: float = 30) -> dict[str, Any]:
    assert tracewire.flush(timeout)
    s = tracewire.stats()
    tracewire.shutdown()
    assert balanced(s), s
    return s


def test_endpoint_alone_selects_the_http_sink(collector: Collector, tmp_path: Path) -> None:
    tracewire.init(endpoint=collector.url, api_key=collector.api_key, signing_key=collector.signing_key,
                   spool_dir=str(tmp_path / "spool"))
    trace_id = _record("ep", 5)
    s = _finish()
    assert s["delivery"]["http"]["shipped"] == 7 and len(collector.stored(trace_id, "ep:")) == 5


def test_retry_after_seconds_and_http_date_are_clamped() -> None:
    assert retry_after_seconds("5") == 5.0
    assert retry_after_seconds("0") == 0.0
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds("86400") == 60.0
    now = time.time()
    soon = email.utils.formatdate(now + 10, usegmt=True)
    assert 8.5 <= (retry_after_seconds(soon, now=now) or 0) <= 10.5
    assert retry_after_seconds(email.utils.formatdate(now - 100, usegmt=True), now=now) == 0.0
    assert retry_after_seconds(email.utils.formatdate(now + 7200, usegmt=True), now=now) == 60.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_backoff_is_full_jitter_capped() -> None:
    for attempt in range(1, 40):
        samples = [backoff_seconds(attempt, cap=2.0) for _ in range(200)]
        ceiling = min(2.0, 0.1 * 2**attempt)
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.6  # spread over the whole range, not a fixed delay


def test_framing_detects_flips_garbage_and_tears(tmp_path: Path) -> None:
    path = tmp_path / "seg"
    recs = [frame(f'{{"n":{i}}}'.encode()) for i in range(5)]
    data = bytearray(b"".join(recs))
    offs = [sum(len(r) for r in recs[:i]) for i in range(5)]
    data[offs[1] + 5] ^= 0xFF  # a length byte of record 1
    data[offs[3] + HEADER_BYTES] ^= 0x01  # a payload byte of record 3
    data[offs[4]:offs[4]] = b"garbage!"  # junk between records 3 and 4
    data += recs[0][:7]  # a torn header at the end
    path.write_bytes(bytes(data))
    fd = os.open(path, os.O_RDONLY)
    try:
        items = list(read_records(fd, 0, len(data)))
    finally:
        os.close(fd)
    good = [json.loads(i.payload)["n"] for i in items if isinstance(i, Record)]
    damage = [i.why for i in items if isinstance(i, Damage)]
    assert good == [0, 2, 4]
    assert damage == ["header", "crc", "torn"]


def test_spool_cap_policies_are_counted(tmp_path: Path) -> None:
    lines = ['{"x":"' + "a" * 1000 + '"}'] * 100  # ~100 KB a record
    newest = Spool(str(tmp_path / "a"), max_bytes=1024 * 1024, full_policy="drop_newest", segment_bytes=256 * 1024)
    results = [newest.append(lines) for _ in range(15)]
    assert results[:10] == [True] * 10 and not all(results)
    assert newest.counters.refused_events == 100 * results.count(False)
    assert newest.disk_bytes() <= 1024 * 1024
    oldest = Spool(str(tmp_path / "b"), max_bytes=1024 * 1024, full_policy="drop_oldest", segment_bytes=256 * 1024)
    assert all(oldest.append(lines) for _ in range(15))
    assert oldest.counters.evicted_events > 0 and oldest.disk_bytes() <= 1024 * 1024
    assert oldest.counters.committed_events - oldest.counters.evicted_events == oldest.backlog_events()
    newest.close()
    oldest.close()


def test_bad_signature_goes_to_dead_letters_then_doctor_and_replay(collector: Collector, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spool = tmp_path / "spool"
    tracewire.init(**_http(collector, tmp_path, signing_key="tws_" + "x" * 40))
    trace_id = _record("dead", 20)
    s = _finish()
    dl = s["delivery"]["http"]
    assert s["written"] == 22 and not s["dropped"]
    assert dl["dead_lettered"] == {"http_401:bad_signature": 22} and dl["backlog"] == 0, dl
    assert collector.stored(trace_id, "dead:") == {}
    text = json.dumps(s) + caplog.text + repr(tracewire) + "".join(str(r.__dict__) for r in caplog.records)
    secret = collector.api_key.split("_", 2)[2]  # twk_<key id>_<secret>; the secret itself may hold "_"
    assert collector.api_key not in text and secret not in text

    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    env.update({"TRACEWIRE_ENDPOINT": collector.url, "TRACEWIRE_API_KEY": collector.api_key,
                "TRACEWIRE_SIGNING_KEY": collector.signing_key, "TRACEWIRE_SPOOL_DIR": str(spool),
                "TRACEWIRE_DB": str(tmp_path / "local.db")})
    doctor = subprocess.run([TRACEWIRE, "doctor", "--json"], capture_output=True, env=env, timeout=60)
    report = json.loads(doctor.stdout)
    assert report["dead_letters"]["by_reason"] == {"http_401:bad_signature": 22}, report
    assert doctor.returncode == 1 and {"level": "needs fixing", "subject": "dead letters", "message": (
        "22 events refused by the collector (http_401:bad_signature: 22): fix the cause, then `tracewire replay`"
    )} in report["findings"]
    assert report["delivery"]["api_key"].endswith("_****") and collector.api_key not in doctor.stdout.decode()
    replay = subprocess.run([TRACEWIRE, "replay"], capture_output=True, env=env, timeout=60)
    out = json.loads(replay.stdout)
    assert out["ok"] and out["dead_letters_resent"] == 22 and out["shipped"] == 22, out
    assert len(collector.stored(trace_id, "dead:")) == 20
    again = subprocess.run([TRACEWIRE, "doctor"], capture_output=True, env=env, timeout=60)
    assert again.returncode == 0 and b"refused by the collector" not in again.stdout, again.stdout  # the verdict
    assert json.loads(subprocess.run([TRACEWIRE, "doctor", "--json"], capture_output=True, env=env,
                                     timeout=60).stdout)["dead_letters"]["events"] == 0


def test_doctor_shows_only_the_key_id_when_the_secret_contains_underscores(collector: Collector,
                                                                         tmp_path: Path) -> None:
    # token_urlsafe secrets can contain "_": a mask cut at the last "_" would print most of this one
    secret = "Qx7Vb2_Lm9Zt4_Wk3Rp8_Hy6Nc1_Gd5Fs0"
    key = f"twk_0123456789ab_{secret}"
    assert mask_key(key) == "twk_0123456789ab_****"
    assert mask_key("twk_0123456789ab_tooShort_x") == mask_key("sk-other") == "**** (not a twk_<key id>_<secret> key)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    env.update({"TRACEWIRE_ENDPOINT": collector.url, "TRACEWIRE_API_KEY": key,
                "TRACEWIRE_SIGNING_KEY": collector.signing_key, "TRACEWIRE_SPOOL_DIR": str(tmp_path / "spool"),
                "TRACEWIRE_DB": str(tmp_path / "local.db")})
    human = subprocess.run([TRACEWIRE, "doctor"], capture_output=True, env=env, timeout=60)
    doctor = subprocess.run([TRACEWIRE, "doctor", "--json"], capture_output=True, env=env, timeout=60)
    out = doctor.stdout.decode() + doctor.stderr.decode() + human.stdout.decode() + human.stderr.decode()
    report = json.loads(doctor.stdout)
    assert human.returncode == doctor.returncode == 1 and "refused the api_key (401" in human.stdout.decode()
    assert report["delivery"]["api_key"] == "twk_0123456789ab_****", report["delivery"]
    assert report["endpoint"]["auth"].startswith("401"), report["endpoint"]  # the key did go out
    fragments = [secret, *secret.split("_")]
    assert not [f for f in fragments if f in out], out


def test_rejected_events_alone_are_dead_lettered(collector: Collector, tmp_path: Path) -> None:
    def break_some(ev: dict[str, Any]) -> dict[str, Any]:
        if ev["name"].endswith("7"):
            ev.pop("trace_id")
        return ev

    tracewire.init(**_http(collector, tmp_path), processors=[break_some])
    trace_id = _record("rej", 30)
    s = _finish()
    dl = s["delivery"]["http"]
    (reason, n), = dl["dead_lettered"].items()
    assert reason.startswith("rejected:") and n == 3, dl  # rej:7, rej:17, rej:27
    stored = collector.stored(trace_id, "rej:")
    assert len(stored) == 27 and not any(name.endswith("7") for name in stored)


def test_413_splits_down_to_one_event_then_dead_letters(collector: Collector, proxy: FaultProxy,
                                                        tmp_path: Path) -> None:
    proxy.plan = lambda n, events: ("status", 413, {}) if events > 4 or n == 1 else "pass"
    tracewire.init(**_http(collector, tmp_path, endpoint=proxy.url))
    tracewire.record("log", name="solo", input={"big": "y" * 100})  # a batch of one, refused: too large
    assert tracewire.flush(10)
    trace_id = _record("split", 40)
    s = _finish()
    dl = s["delivery"]["http"]
    assert dl["splits"] > 0 and dl["dead_lettered"] == {"http_413:injected_413": 1}, dl
    assert len(collector.stored(trace_id, "split:")) == 40


def test_durable_with_a_second_sink_and_queue_overflow_to_spool(collector: Collector, tmp_path: Path) -> None:
    db = tmp_path / "local.db"
    tracewire.init(**_http(collector, tmp_path, durable=True, sink=["http", "sqlite"], db=str(db)))
    trace_id = _record("dur", 50)
    s = _finish()
    assert s["written"] == 52 and s["delivery"]["http"]["committed"] == 52
    assert len(collector.stored(trace_id, "dur:")) == 50
    import sqlite3

    assert sqlite3.connect(db).execute("SELECT count(*) FROM events WHERE name LIKE 'dur:%'").fetchone()[0] == 50

    tracewire.init(**_http(collector, tmp_path / "2"), queue_max_events=5, queue_full_policy="spool")
    trace_id = _record("spill", 2000)
    s = _finish()
    assert not s["dropped"] and s["written"] == 2002, s
    assert len(collector.stored(trace_id, "spill:")) == 2000


def test_loss_is_reported_to_the_collector(collector: Collector, tmp_path: Path) -> None:
    tracewire.init(**_http(collector, tmp_path), queue_max_events=3, flush_interval=5.0)
    _record("lossy", 50)
    s = _finish()
    assert s["dropped"].get("queue_full", 0) > 0
    metrics = requests.get(f"{collector.url}/metrics", timeout=10).text
    line = next(ln for ln in metrics.splitlines() if ln.startswith("tracewire_client_reported_loss")
                and 'reason="queue_full"' in ln)
    assert float(line.rsplit(" ", 1)[1]) > 0


def test_tls_is_verified_by_default(collector: Collector, tmp_path: Path) -> None:
    ctx = _ssl_context(True)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    cert, key = _self_signed(tmp_path)
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hits.append(self.path)
            n = len(json.loads(__import__("gzip").decompress(body) if self.headers.get("Content-Encoding") else body)["events"])
            out = json.dumps({"results": [{"status": "accepted"}] * n}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    server.socket = sctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        tracewire.init(**_http(collector, tmp_path, endpoint=url, retry_max_backoff=0.1))
        tracewire.record("log", name="tls")
        assert not tracewire.flush(1.5)  # a self-signed certificate is refused: the event waits in the spool
        st = tracewire.stats()
        assert st["delivery"]["http"]["last_error"].startswith("tls:") and not hits
        tracewire.shutdown(1)
        tracewire.init(**_http(collector, tmp_path, endpoint=url, verify_tls=False))
        s = _finish()  # the next start ships what the refused one left
        assert hits and s["delivery"]["http"]["shipped"] == 1 and s["delivery"]["http"]["recovered"] == 1
    finally:
        server.shutdown()


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cp, kp = tmp_path / "cert.pem", tmp_path / "key.pem"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return str(cp), str(kp)
