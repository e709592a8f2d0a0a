"""Transport: `tracewire serve` over TLS (a certificate made here, trusted by the SDK through a CA
file), and bounded connections: slow clients are cut off while normal requests keep working."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests
from collector_harness import Collector, free_port, make_event, start_collector

from tracewire.config import Config, ConfigError
from tracewire.delivery.shipper import Transport
from tracewire.read.remote import RemoteError, RemoteStore
from tracewire.server.backends import open_store
from tracewire.server.keys import create_key
from tracewire.wire import signed_headers

# ---------------------------------------------------------------------------------------------- TLS


def _make_certs(directory: Path, key_password: bytes | None = None) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tracewire test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    enc = (serialization.BestAvailableEncryption(key_password) if key_password
           else serialization.NoEncryption())
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
    os.chmod(paths[2], 0o600)
    return paths


def _serve(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tracewire.server.cli", "serve", *args], stdout=out,
                                stderr=subprocess.STDOUT, env=env)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def tls_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(https URL, db URL, CA file) of a collector serving TLS with an encrypted key."""
    d = tmp_path_factory.mktemp("tls")
    ca, cert, key = _make_certs(d, key_password=b"key-pass")
    port = free_port()
    db = f"sqlite:///{d}/collector.db"
    env = {**os.environ, "TRACEWIRE_TLS_KEY_PASSWORD": "key-pass"}
    proc = _serve(["--port", str(port), "--db", db, "--tls-cert", str(cert), "--tls-key", str(key)], d / "log", env)
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (d / "log").read_text()
            try:
                if requests.get(url + "/healthz", verify=str(ca), timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, (d / "log").read_text()
            time.sleep(0.1)
        assert "https://127.0.0.1" in (d / "log").read_text()
        yield url, db, ca
    finally:
        _stop(proc)


def test_tls_sdk_delivers_trusting_a_ca_file_and_reads_need_the_read_scope(
        tls_collector: tuple[str, str, Path], tmp_path: Path) -> None:
    url, db, ca = tls_collector
    store = open_store(db)
    try:
        project = f"tls-{uuid.uuid4().hex[:8]}"
        ingest = create_key(store, project)
        reader = create_key(store, project, scopes=["read"])
    finally:
        store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    env.update({"TRACEWIRE_ENDPOINT": url, "TRACEWIRE_API_KEY": ingest.api_key,
                "TRACEWIRE_SIGNING_KEY": ingest.signing_secret, "TRACEWIRE_CA_FILE": str(ca),
                "TRACEWIRE_SPOOL_DIR": str(tmp_path / "spool"), "TRACEWIRE_DB": str(tmp_path / "t.db")})
    code = ("import tracewire, sys\ntracewire.init()\n"
            "with tracewire.span('tool', 'over-tls'): pass\n"
            "ok = tracewire.flush(20)\nd = tracewire.stats()['delivery']['http']\n"
            "print(d['shipped'], d['last_error'])\nsys.exit(0 if ok and d['shipped'] == 2 else 1)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

    remote = RemoteStore(url, reader.api_key, verify=str(ca))
    traces = remote.list_traces()
    assert [t["name"] for t in traces] == ["over-tls"]
    with pytest.raises(RemoteError) as err:
        RemoteStore(url, ingest.api_key, verify=str(ca)).list_traces()
    assert (err.value.status, err.value.code) == (403, "insufficient_scope")

    # without the CA file the certificate is not trusted: refused, and said so without secrets
    plain = Transport(url, ingest.api_key, ingest.signing_secret, 5.0)
    with pytest.raises(ConnectionError, match="tls"):
        plain.request("GET", "/healthz", auth=False)
    trusted = Transport(url, ingest.api_key, ingest.signing_secret, 5.0, ca_file=str(ca))
    body = [orjson.dumps(make_event())]
    assert trusted.post_events(body, str(uuid.uuid4()), 1, None).status == 200
    trusted.close()
    # plain HTTP to the TLS port gets no answer
    with pytest.raises(requests.RequestException):
        requests.get(url.replace("https://", "http://") + "/healthz", timeout=5)


def test_ca_file_setting_is_checked_at_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca_file"):
        Config.resolve({"ca_file": str(tmp_path / "missing.pem")})
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="ca_file"):
        Config.resolve({"ca_file": str(tmp_path / "ca.pem")})


@pytest.mark.parametrize("case", ["cert_only", "key_only", "missing_cert", "missing_key", "not_pem",
                                  "wrong_password"])
def test_tls_options_fail_at_start_naming_the_option(tmp_path: Path, case: str) -> None:
    ca, cert, key = _make_certs(tmp_path, key_password=b"right" if case == "wrong_password" else None)
    (tmp_path / "junk.pem").write_text("junk")
    args, expect = {
        "cert_only": (["--tls-cert", str(cert)], "--tls-key"),
        "key_only": (["--tls-key", str(key)], "--tls-cert"),
        "missing_cert": (["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(key)], "--tls-cert"),
        "missing_key": (["--tls-cert", str(cert), "--tls-key", str(tmp_path / "nope.pem")], "--tls-key"),
        "not_pem": (["--tls-cert", str(tmp_path / "junk.pem"), "--tls-key", str(key)], "--tls-cert"),
        "wrong_password": (["--tls-cert", str(cert), "--tls-key", str(key), "--tls-key-password", "wrong"],
                           "--tls-key"),
    }[case]
    r = subprocess.run([sys.executable, "-m", "tracewire.server.cli", "serve", "--port", str(free_port()),
                        "--db", f"sqlite:///{tmp_path}/c.db", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert expect in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "wrong" not in r.stderr.replace("--tls-key-password", "")  # a password is never echoed


# --------------------------------------------------------------------------------- slow clients
HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    d = tmp_path_factory.mktemp("bounded")
    c = start_collector("sqlite", f"sqlite:///{d}/collector.db", d, "--header-timeout", str(HEADER_TIMEOUT),
                        "--body-timeout", str(BODY_TIMEOUT), "--keep-alive-timeout", "2")
    try:
        yield c
    finally:
        c.close()


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    return s


def _drip_until_closed(socks: list[socket.socket], drip: bytes, limit: float, during: object = None,
                       quiet: int = 0) -> tuple[list[float], list[bytes]]:
    """Send `drip` on every open socket (but the last `quiet` ones) every 0.2 s until the server closes
    each one (or `limit` seconds pass); return when each was closed (seconds from start; inf if never)
    and what it read. `during` is called once, 0.3 s in, while the slow clients are connected."""
    t0 = time.monotonic()
    closed = [float("inf")] * len(socks)
    got = [b""] * len(socks)
    next_drip = t0
    while time.monotonic() - t0 < limit and any(c == float("inf") for c in closed):
        now = time.monotonic()
        if now >= next_drip:
            next_drip = now + 0.2
            for i, s in enumerate(socks[:len(socks) - quiet]):
                if closed[i] == float("inf"):
                    try:
                        s.send(drip)
                    except OSError:
                        closed[i] = now - t0
        if callable(during) and now - t0 > 0.3:
            during()
            during = None
        open_ = [s for i, s in enumerate(socks) if closed[i] == float("inf")]
        readable, _, _ = select.select(open_, [], [], 0.05)
        for s in readable:
            i = socks.index(s)
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            got[i] += data
            if not data:
                closed[i] = time.monotonic() - t0
    for s in socks:
        s.close()
    return closed, got


def test_slow_headers_are_cut_off_while_normal_requests_work(bounded: Collector) -> None:
    port = int(bounded.url.rsplit(":", 1)[1])
    key = create_key(bounded.store, f"slow-{uuid.uuid4().hex[:8]}", scopes=["ingest", "read"])
    slow = [_connect(port) for _ in range(12)]
    silent = [_connect(port) for _ in range(3)]  # connect and never send a byte
    for s in slow:
        s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    served: dict[str, object] = {}

    def normal_traffic() -> None:
        t = time.monotonic()
        e = make_event()
        served["post"] = bounded.post(key, [e], timeout=5).json()["accepted"]
        served["get"] = bounded.get(f"/v1/traces/{e['trace_id']}", key).status_code
        served["healthz"] = bounded.healthy()
        served["seconds"] = time.monotonic() - t

    closed, got = _drip_until_closed(slow + silent, b"X", 10.0, during=normal_traffic, quiet=len(silent))
    assert served == {"post": 1, "get": 200, "healthz": True, "seconds": served["seconds"]}
    assert float(served["seconds"]) < 2.0, served  # type: ignore[arg-type]
    assert all(HEADER_TIMEOUT * 0.8 <= c <= HEADER_TIMEOUT + 1.5 for c in closed), closed
    assert all(g.startswith(b"HTTP/1.1 408") and b"header_timeout" in g for g in got), got[:2]
    assert bounded.healthy()


def test_oversized_headers_are_refused(bounded: Collector) -> None:
    s = socket.create_connection(("127.0.0.1", int(bounded.url.rsplit(":", 1)[1])), timeout=5)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(200):  # 200 x 1 KiB, far past the 64 KiB default
                s.sendall(b"X-Big: " + b"a" * 1017 + b"\r\n")
        except OSError:
            pass
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        data = b"reset"
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 431") or data == b"reset", data[:200]


def test_slow_body_gets_408_and_the_connection_is_closed(bounded: Collector) -> None:
    port = int(bounded.url.rsplit(":", 1)[1])
    key = create_key(bounded.store, f"body-{uuid.uuid4().hex[:8]}", scopes=["ingest"])
    h = signed_headers(key.api_key, key.signing_secret, b"{}")
    head = "".join(f"{k}: {v}\r\n" for k, v in h.items())
    authed = [_connect(port) for _ in range(3)]  # reaches the body read: 408 from the app side
    for s in authed:
        s.send(f"POST /v1/events HTTP/1.1\r\nHost: x\r\n{head}Content-Length: 100000\r\n\r\n".encode() + b"{")
    early = [_connect(port) for _ in range(3)]  # refused before its body is read (401), then trickles on
    for s in early:
        s.send(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
    closed, got = _drip_until_closed(authed + early, b"a", 10.0)
    assert all(c <= BODY_TIMEOUT + 1.5 for c in closed[:3]), closed
    assert all(g.startswith(b"HTTP/1.1 408") and b"body_timeout" in g for g in got[:3]), got[:3]
    assert all(c <= BODY_TIMEOUT + 1.5 for c in closed[3:]), closed
    assert all(g.startswith(b"HTTP/1.1 401") for g in got[3:]), got[3:]
    assert bounded.healthy()


def test_bodies_sent_at_a_normal_pace_are_not_cut(bounded: Collector) -> None:
    """A body that keeps arriving (each wait short) is accepted even when the whole takes longer
    than the header timeout: only waiting on the client counts."""
    port = int(bounded.url.rsplit(":", 1)[1])
    key = create_key(bounded.store, f"pace-{uuid.uuid4().hex[:8]}", scopes=["ingest"])
    body = orjson.dumps({"events": [make_event() for _ in range(4)]})
    h = signed_headers(key.api_key, key.signing_secret, body)
    head = "".join(f"{k}: {v}\r\n" for k, v in h.items())
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(f"POST /v1/events HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n"
                  "Connection: close\r\n\r\n".encode())
        step = len(body) // 4 + 1
        for i in range(0, len(body), step):  # 4 pieces, 0.4 s apart: 1.2 s in all, each wait < 1.5 s
            s.sendall(body[i:i + step])
            time.sleep(0.4)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:300]
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["accepted"] == 4
