"""Collector fixtures: the real `tracewire serve` in a subprocess on 127.0.0.1, once per backend.

The `collector` fixture is parametrised over SQLite and PostgreSQL. PostgreSQL needs a server:
`TRACEWIRE_TEST_PG_DSN`, or the loopback server `.ci/pg-start.sh` starts (`make test` runs it). An
unreachable server fails the PostgreSQL tests: they are never skipped.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from collector_harness import LOCAL_PG_DSN, Collector, start_collector

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
