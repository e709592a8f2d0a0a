"""Collector test harness: the real `tracewire serve` in a subprocess on 127.0.0.1, and event builders."""

from __future__ import annotations

import gzip as gzip_mod
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import requests

from tests.processes import free_port, stop_process
from tracewire.model.ids import new_event_id, new_span_id, new_trace_id
from tracewire.server.backends import open_store
from tracewire.server.keys import create_key
from tracewire.server.store import Store
from tracewire.wire import NewKey, signed_headers

LOCAL_PG_DSN = "postgresql://tracewire:tracewire@127.0.0.1:55432/tracewire"  # what .ci/pg-start.sh starts


def make_event(trace_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid schema-1 envelope (override any field; pass field=None to drop it)."""
    e: dict[str, Any] = {
        "id": new_event_id(), "schema": 1, "type": "tool.start", "kind": "tool", "phase": "start",
        "trace_id": trace_id or new_trace_id(), "span_id": new_span_id(), "parent_span_id": None,
        "session_id": None, "user_id": None, "name": "search", "framework": "manual", "time": time.time_ns(),
        "seq": 1, "attributes": {}, "input": {"q": "hello"},
    }
    e.update(fields)
    return {k: v for k, v in e.items() if v is not None or k in ("parent_span_id", "session_id", "user_id")}


class Collector:
    """A running collector plus a direct handle on its store (to count what was really stored)."""

    def __init__(self, backend: str, db: str, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.backend, self.db, self.url, self.proc, self.log = backend, db, url, proc, log
        self._store: Store | None = None
        self._local = threading.local()

    @property
    def http(self) -> requests.Session:
        """One session per thread (tests drive the collector from many threads)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.db)
        return self._store

    def new_key(self, project: str | None = None, scopes: tuple[str, ...] = ("ingest", "read")) -> NewKey:
        """A key that both sends and reads back (tests do both); an app's key would be ingest-only."""
        return create_key(self.store, project or f"p-{uuid.uuid4().hex[:10]}", scopes)

    def count(self, project: str) -> int:
        return self.store.count_events(project)

    def wait_for(self, project: str, events: int, timeout: float = 20) -> int:
        """The project's event count once it reaches `events` (delivery is asynchronous), or at the timeout."""
        deadline = time.monotonic() + timeout
        while (n := self.count(project)) < events and time.monotonic() < deadline:
            time.sleep(0.05)
        return n

    def post(self, key: NewKey | None, events: list[Any] | None = None, *, body: bytes | None = None,
             gzip: bool = False, timestamp: int | None = None, secret: str | None = None,
             batch_id: str | None = None, headers: dict[str, str] | None = None, sign_body: bytes | None = None,
             timeout: float = 60) -> requests.Response:
        if body is None:
            body = orjson.dumps({"events": events or []})
        if gzip:
            body = gzip_mod.compress(body)
        h: dict[str, str] = {"Content-Type": "application/json"}
        if key is not None:
            h = signed_headers(key.api_key, secret or key.signing_secret, body if sign_body is None else sign_body,
                               gzipped=gzip, batch_id=batch_id, timestamp=timestamp)
        h.update(headers or {})
        return self.http.post(self.url + "/v1/events", data=body, headers={k: v for k, v in h.items() if v},
                              timeout=timeout)

    def get(self, path: str, key: NewKey | None = None, **params: Any) -> requests.Response:
        h = {"Authorization": f"Bearer {key.api_key}"} if key else {}
        return self.http.get(self.url + path, headers=h, params=params, timeout=30)

    def healthy(self) -> bool:
        r = self.http.get(self.url + "/healthz", timeout=10)
        return r.status_code == 200 and r.json() == {"status": "ok"}

    def close(self) -> None:
        self.http.close()
        stop_process(self.proc, 15)
        if self._store is not None:
            self._store.close()


def spawn_collector(backend: str, db: str, log_dir: Path, port: int, *extra: str) -> Collector:
    """A real `tracewire serve` on 127.0.0.1:`port`, not yet waited for: see `wait_healthy`."""
    log = log_dir / f"collector-{backend}-{port}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracewire.server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--db", db, *extra],
            stdout=out, stderr=subprocess.STDOUT)
    return Collector(backend, db, f"http://127.0.0.1:{port}", proc, log)


def wait_healthy(c: Collector, timeout: float = 30) -> Collector:
    """`c` once it answers /healthz; closed and raised when it exits or does not answer in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.proc.poll() is not None:
            raise RuntimeError(f"collector exited with {c.proc.returncode}:\n{c.log.read_text()}")
        try:
            if c.healthy():
                return c
        except requests.ConnectionError:
            time.sleep(0.05)
    c.close()
    raise RuntimeError(f"collector did not answer /healthz within {timeout} s:\n{c.log.read_text()}")


def start_collector(backend: str, db: str, log_dir: Path, *extra: str) -> Collector:
    return wait_healthy(spawn_collector(backend, db, log_dir, free_port(), *extra))


