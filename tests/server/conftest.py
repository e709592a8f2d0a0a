"""Collector fixtures: the real `tracewire serve` in a subprocess on 127.0.0.1, once per backend.

The `collector` fixture is parametrised over SQLite and PostgreSQL. PostgreSQL needs a server:
`TRACEWIRE_TEST_PG_DSN`, or the loopback server `.ci/pg-start.sh` starts (`make test` runs it). An
unreachable server fails the PostgreSQL tests: they are never skipped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from collector_harness import LOCAL_PG_DSN, Collector, spawn_collector, start_collector, wait_healthy

from tests.processes import free_port, stop_process
from tracewire.wire import NewKey


def _pg_reachable(dsn: str) -> bool:
    import psycopg

    try:
        psycopg.connect(dsn, connect_timeout=2).close()
        return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    dsn = os.environ.get("TRACEWIRE_TEST_PG_DSN") or LOCAL_PG_DSN
    if not _pg_reachable(dsn):
        pytest.fail(f"PostgreSQL is not reachable at {dsn}: the collector's PostgreSQL tests need it "
                    "(`make test` starts one with .ci/pg-start.sh; or set TRACEWIRE_TEST_PG_DSN)", pytrace=False)
    return dsn


def fresh_pg_database(admin_dsn: str) -> tuple[str, Any]:
    """A new empty database (so every run starts clean and migrations run from zero), and its dropper."""
    import psycopg

    name = f"tracewire_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]

    def drop() -> None:
        for attempt in range(5):  # a backend of the collector that is still exiting can refuse it briefly
            try:
                with psycopg.connect(admin_dsn, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
                return
            except psycopg.Error:
                if attempt == 4:
                    raise
                time.sleep(0.5)

    return urlsplit(admin_dsn)._replace(path="/" + name).geturl(), drop


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def collector(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    log_dir = tmp_path_factory.mktemp("collector")
    drop = None
    if request.param == "sqlite":
        db = f"sqlite:///{log_dir}/collector.db"
    else:
        db, drop = fresh_pg_database(request.getfixturevalue("pg_admin_dsn"))
    c = start_collector(request.param, db, log_dir)
    try:
        yield c
        assert c.proc.poll() is None, f"collector died:\n{c.log.read_text()}"
        assert c.healthy()
    finally:
        c.close()
        if drop is not None:
            drop()


@pytest.fixture
def key(collector: Collector) -> NewKey:
    return collector.new_key()


# -- replicas behind a load balancer ----------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Replicas:
    """`n` collectors on one PostgreSQL database behind a real nginx (`.ci/lb.sh run`) on loopback."""

    def __init__(self, db: str, workdir: Path, n: int, *extra: str) -> None:
        self.db, self.workdir, self.extra = db, workdir, extra
        self.ports = [free_port() for _ in range(n)]
        self.replicas: list[Collector] = []
        self.lb: subprocess.Popen[bytes] | None = None
        try:
            self.replicas = [spawn_collector("postgresql", db, workdir, p, *extra) for p in self.ports]
            for c in self.replicas:
                wait_healthy(c, 60)
            lb_port = free_port()
            lb_dir = workdir / "nginx"
            with open(workdir / "nginx.out", "wb") as out:
                self.lb = subprocess.Popen(["bash", str(REPO / ".ci" / "lb.sh"), "run", str(lb_dir), str(lb_port),
                                            *map(str, self.ports)], stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 300  # the first run may install nginx
            while not _listening(lb_port):
                if self.lb.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start:\n{(workdir / 'nginx.out').read_text()}")
                time.sleep(0.05)
            self.url = f"http://127.0.0.1:{lb_port}"
            # the balanced address, with the first replica's handle on the store
            self.front = Collector("postgresql", db, self.url, self.lb, workdir / "nginx.out")
            self.front._store = self.replicas[0].store
        except BaseException:
            self.close()
            raise

    def kill(self, i: int) -> None:
        """kill -9 replica i, whatever it is doing."""
        self.replicas[i].proc.send_signal(signal.SIGKILL)
        self.replicas[i].proc.wait(10)

    def restart(self, i: int) -> Collector:
        """A new process for replica i, on its port (nginx's upstream)."""
        old = self.replicas[i]
        self.replicas[i] = wait_healthy(spawn_collector("postgresql", self.db, self.workdir, self.ports[i], *self.extra), 60)
        self.replicas[i]._store, old._store = old._store, None
        return self.replicas[i]

    def close(self) -> None:
        if self.lb is not None:
            stop_process(self.lb, 10)
        for c in self.replicas:
            c.close()


@pytest.fixture
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Replicas]]:
    """Starts three replicas (`serve` options as arguments) behind nginx, each time on a fresh database."""
    started: list[tuple[Replicas, Callable[[], None]]] = []

    def start(*extra: str) -> Replicas:
        db, drop = fresh_pg_database(request.getfixturevalue("pg_admin_dsn"))
        workdir = tmp_path / f"cluster-{len(started)}"
        workdir.mkdir()
        try:
            started.append((Replicas(db, workdir, 3, *extra), drop))
        except BaseException:
            drop()
            raise
        return started[-1][0]

    yield start
    try:
        for r, _ in started:
            assert all(c.proc.poll() is None for c in r.replicas), "a replica died"
            assert r.lb is not None and r.lb.poll() is None, "nginx died"
    finally:
        for r, drop in started:
            r.close()
            drop()
