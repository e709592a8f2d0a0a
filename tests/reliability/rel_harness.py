"""The reliability suite's moving parts: the real collector (`tracewire serve`, SQLite) in a
subprocess, a fault-injecting HTTP proxy in front of it, and producer subprocesses."""

from __future__ import annotations

import gzip
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracewire.read.remote import RemoteStore

HERE = Path(__file__).parent
PRODUCER = HERE / "rel_producer.py"
TRACEWIRE = str(Path(sys.executable).parent / "tracewire")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector:
    """The real collector on 127.0.0.1 with its own SQLite file and one API key."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.db = workdir / "collector.db"
        self.url_db = f"sqlite:///{self.db}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        # one key to send and to read back with (an app's own key would be ingest-only)
        out = subprocess.run([TRACEWIRE, "keys", "create", "--project", "rel", "--db", self.url_db, "--json",
                              "--scope", "ingest", "--scope", "read"],
                             capture_output=True, check=True, timeout=60)
        key = json.loads(out.stdout)
        self.api_key: str = key["api_key"]
        self.signing_key: str = key["signing_secret"]

    def start(self) -> None:
        log = open(self.workdir / "collector.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen([TRACEWIRE, "serve", "--port", str(self.port), "--db", self.url_db],
                                     stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b"200" in s.recv(100):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError((self.workdir / "collector.log").read_text()[-3000:])
            time.sleep(0.05)
        raise RuntimeError("collector did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def stored(self, trace_id: str, prefix: str) -> Counter[str]:
        """name -> times stored, for the trace's events whose name starts with `prefix`, read back
        through the collector's read API (`GET /v1/traces/{id}`); an id stored twice counts twice."""
        store = RemoteStore(self.url, self.api_key, timeout=30)
        try:
            events = store.trace_events(trace_id)  # every page (an unknown trace: none)
        finally:
            store.close()
        ids = Counter(e["id"] for e in events)
        assert max(ids.values(), default=1) == 1, f"event ids stored twice: {[i for i, n in ids.items() if n > 1][:5]}"
        return Counter(e["name"] for e in events if str(e.get("name", "")).startswith(prefix))

    def settings(self, endpoint: str | None = None) -> dict[str, Any]:
        return {"endpoint": endpoint or self.url, "api_key": self.api_key, "signing_key": self.signing_key}


# ---------------------------------------------------------------------- fault proxy
Action = Any  # "pass" | "reset" | "stall" | "after500" | ("status", code, {headers})


class FaultProxy:
    """HTTP/1.1 proxy on 127.0.0.1. `plan(n, events)` picks the fate of request n (1-based) carrying
    `events` events. `down()` stops listening (connection refused) and cuts open connections."""

    def __init__(self, upstream_port: int, stall_s: float = 1.5) -> None:
        self.upstream_port = upstream_port
        self.stall_s = stall_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.plan: Callable[[int, int], Action] = lambda n, k: "pass"
        self.forwarded: Counter[str] = Counter()  # event id -> times handed to the collector
        self.log: list[tuple[float, int, str, int]] = []  # (time, request no, action, events)
        self._n = 0
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._closed = False
        self.up()

    def reset_counters(self) -> None:
        with self._lock:
            self._n = 0
            self.forwarded.clear()
            self.log.clear()

    def up(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self) -> None:
        s, self._listener = self._listener, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            _rst(c)

    def close(self) -> None:
        self._closed = True
        self.down()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        try:
            while True:
                req = _read_request(f)
                if req is None:
                    return
                method, path, headers, body = req
                events = _event_ids(headers, body) if path.endswith("/v1/events") else []
                with self._lock:
                    self._n += 1
                    n = self._n
                action = self.plan(n, len(events)) if path.endswith("/v1/events") else "pass"
                self.log.append((time.monotonic(), n, action if isinstance(action, str) else f"{action[1]}",
                                 len(events)))
                if action == "reset":
                    _rst(conn)
                    return
                if action == "stall":
                    time.sleep(self.stall_s)
                    _rst(conn)
                    return
                if isinstance(action, tuple):
                    _, code, extra = action
                    _respond(conn, code, json.dumps({"error": {"code": f"injected_{code}", "message": "fault"}}).encode(),
                             extra)
                    continue
                status, rheaders, rbody = self._forward(method, path, headers, body)
                if events:
                    with self._lock:
                        self.forwarded.update(events)
                if action == "after500":
                    _respond(conn, 500, b'{"error":{"code":"injected_after_commit","message":"fault"}}', {})
                    continue
                _respond(conn, status, rbody, {k: v for k, v in rheaders.items() if k.lower() == "retry-after"})
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        import http.client

        c = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            fwd = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection", "content-length")}
            c.request(method, path, body=body if body else None, headers=fwd)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()


def _read_request(f: Any) -> tuple[str, str, dict[str, str], bytes] | None:
    line = f.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip()] = v.strip()
    n = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    body = f.read(n) if n else b""
    return method, path, headers, body


def _event_ids(headers: dict[str, str], body: bytes) -> list[str]:
    try:
        if any(k.lower() == "content-encoding" and "gzip" in v for k, v in headers.items()):
            body = gzip.decompress(body)
        return [e["id"] for e in json.loads(body)["events"]]
    except Exception:  # noqa: BLE001 - not ours to judge: the collector will
        return []


def _respond(conn: socket.socket, code: int, body: bytes, extra: dict[str, str]) -> None:
    head = f"HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
    conn.sendall(head.encode() + b"\r\n" + body)


def _rst(conn: socket.socket) -> None:
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    except OSError:
        pass


# ---------------------------------------------------------------------- producers
def producer_cmd(spec: dict[str, Any]) -> list[str]:
    return [sys.executable, str(PRODUCER), json.dumps(spec)]


def run_producer(spec: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
    out = subprocess.run(producer_cmd(spec), capture_output=True, timeout=timeout, env=_env())
    if out.returncode != 0:
        raise AssertionError(f"producer failed ({out.returncode}): {out.stderr.decode()[-3000:]}")
    return json.loads(out.stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


def finish_producer(proc: subprocess.Popen[bytes], timeout: float = 90) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"producer failed ({proc.returncode}): {err.decode()[-3000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


def start_producer(spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(producer_cmd(spec), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())


def wait_ready(proc: subprocess.Popen[bytes], timeout: float = 30) -> str:
    """Wait for the producer's READY line; returns its trace id."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(b"READY "):
            return line.split()[1].decode()
        if not line and proc.poll() is not None:
            raise AssertionError(f"producer exited: {proc.stderr.read().decode()[-3000:] if proc.stderr else ''}")
    raise AssertionError("producer not ready")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


MARK_RING = 4096  # as in rel_producer.py


def read_mark(path: Path) -> tuple[int, int]:
    """(last n whose record() returned, when it returned: perf_counter_ns) from a producer's mark file."""
    data = path.read_bytes()[:16]
    n, t = struct.unpack("<qq", data)
    return n, t


def returned_at(path: Path, n: int) -> int | None:
    """When event n's record() returned (perf_counter_ns), if it is among the last MARK_RING."""
    last, _ = read_mark(path)
    if not 0 < n <= last or last - n >= MARK_RING:
        return None
    (t,) = struct.unpack_from("<q", path.read_bytes(), 16 + (n % MARK_RING) * 8)
    return int(t)
