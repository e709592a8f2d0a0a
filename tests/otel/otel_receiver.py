"""A real OTLP receiver for the otel tests: Arize Phoenix (`phoenix serve`, from its own venv)
on free 127.0.0.1 ports, read back through its REST API; and a relay that plays a receiver
going down and coming back up."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.otel import phoenix_venv
from tests.processes import free_port, stop_process
from tracewire.model import attributes as A

LOOPBACK_SHIM = Path(__file__).with_name("phoenix_loopback.py")


class Phoenix:
    def __init__(self, http_port: int, grpc_port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.proc = proc
        self.log = log
        self.url = f"http://127.0.0.1:{http_port}"

    def endpoint(self, protocol: str) -> str:
        """The `otlp_endpoint` for a protocol (a base URL: the sink appends /v1/traces for http)."""
        return self.url if protocol == "http/protobuf" else f"http://127.0.0.1:{self.grpc_port}"

    def trace(self, trace_id: str, expect: int, timeout: float = 20.0, project: str = "default") -> list[dict[str, Any]]:
        """The spans Phoenix holds for a trace, in start order, once at least `expect` arrived
        (Phoenix inserts asynchronously)."""
        deadline = time.monotonic() + timeout
        got: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            r = requests.get(f"{self.url}/v1/projects/{project}/spans",
                             params={"trace_id": trace_id, "limit": 1000}, timeout=5)
            if r.status_code == 200:
                got = r.json()["data"]
                if len(got) >= expect:
                    return sorted(got, key=lambda s: (s["start_time"], s["context"]["span_id"]))
            time.sleep(0.1)
        raise AssertionError(f"Phoenix has {len(got)} of {expect} spans for trace {trace_id}: {[s['name'] for s in got]}")

    def spans(self, trace_id: str, expect: int, timeout: float = 20.0) -> dict[str, dict[str, Any]]:
        """The same, by span name (for traces whose names are unique)."""
        return {s["name"]: s for s in self.trace(trace_id, expect, timeout)}


def received_tree(spans: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(name, OpenInference kind, [children]) from the parent links Phoenix received, roots
    being spans whose parent is not in the list."""
    ids = {s["context"]["span_id"] for s in spans}

    def node(s: dict[str, Any]) -> tuple[Any, ...]:
        children = [c for c in spans if c["parent_id"] == s["context"]["span_id"]]
        return (s["name"], s["span_kind"], [node(c) for c in children])

    return [node(s) for s in spans if s["parent_id"] not in ids]


def start_phoenix(work: Path) -> Phoenix:
    """Launch `phoenix serve` (installing its venv first if needed); does not wait for it."""
    exe = phoenix_venv.ensure()
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
    env.update({
        "PHOENIX_WORKING_DIR": str(work), "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(http_port), "PHOENIX_GRPC_PORT": str(grpc_port),
        # nothing leaves the machine: no telemetry pixels, no external resources, no assistant
        "PHOENIX_TELEMETRY_ENABLED": "false", "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        "PHOENIX_DISABLE_AGENT_ASSISTANT": "true", "PHOENIX_LOG_MIGRATIONS": "false",
        "PHOENIX_LOGGING_LEVEL": "warning", "PHOENIX_DB_LOGGING_LEVEL": "warning",
        "DO_NOT_TRACK": "1",
    })
    log = work / "phoenix.log"
    # through the shim that keeps Phoenix's gRPC receiver on 127.0.0.1 (PHOENIX_HOST does not)
    cmd = [str(exe.with_name("python")), str(LOOPBACK_SHIM), "serve"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=work)
    return Phoenix(http_port, grpc_port, proc, log)


def wait_ready(server: Phoenix, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"phoenix exited with {server.proc.returncode}:\n{server.log.read_text()[-4000:]}")
        try:
            if requests.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"phoenix did not start in time:\n{server.log.read_text()[-4000:]}")
        time.sleep(0.2)


def listening_sockets(pid: int) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """(address, port) of every TCP socket in LISTEN state held by `pid` or its descendants,
    from /proc/net/tcp and tcp6 matched to the processes' socket inodes."""
    inodes: set[str] = set()
    for p in [pid, *_descendants(pid)]:
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A: LISTEN
                    host, port = local.split(":")
                    found.append((_proc_address(host), int(port, 16)))
    return found


def _proc_address(hex_host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # /proc/net/tcp* write addresses as 32-bit words in host (little-endian) byte order
    raw = b"".join(bytes.fromhex(hex_host[i:i + 8])[::-1] for i in range(0, len(hex_host), 8))
    return ipaddress.ip_address(raw)


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = [], [pid]
    while frontier:
        children = [c for c, parent in parents.items() if parent in frontier]
        out += children
        frontier = children
    return out


def is_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def chat_spans(spans: list[dict[str, Any]], model: str) -> tuple[list[dict[str, Any]], list[tuple[int, int, int]]]:
    """The received spans of the chat calls to `model`, and each one's (input, output, total) tokens."""
    chats = [s for s in spans if s["name"] == f"chat {model}"]
    usage = [(c["attributes"][A.USAGE_INPUT_TOKENS], c["attributes"][A.USAGE_OUTPUT_TOKENS],
              c["attributes"][A.USAGE_TOTAL_TOKENS]) for c in chats]
    return chats, usage


def stop(server: Phoenix) -> None:
    stop_process(server.proc, 10)


class TcpRelay:
    """A port that refuses connections until `up()`, then relays to the receiver: the receiver
    as a client sees it, down and then back up, without restarting Phoenix."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []

    def up(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(16)
        srv.settimeout(0.2)
        self._server = srv
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        for s in [*self._sockets, *([self._server] if self._server is not None else [])]:
            try:
                s.close()
            except OSError:
                pass
