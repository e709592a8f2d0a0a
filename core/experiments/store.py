"""Datasets and experiment runs in the local store's SQLite file, in tables of their own beside the
event table. The tables are created, and migrated forward, here and only here.

Content (inputs, outputs, expected values, metadata) is stored as JSON text after the same scrubbing,
masking and size caps as an event's content, so a secret an agent echoes stays out of this table too.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tracewire.config import Config
from tracewire.model import codec as _json
from tracewire.pipeline.redact import Redactor
from tracewire.pipeline.sanitize import Sanitizer
from tracewire.sinks.sqlite_table import connect

# Each entry moves the schema one version forward; a store records the last one it applied.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE datasets (
        name TEXT NOT NULL, version INTEGER NOT NULL, created_ns INTEGER NOT NULL, digest TEXT NOT NULL,
        PRIMARY KEY (name, version));
    CREATE TABLE dataset_items (
        dataset TEXT NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL, item_id TEXT NOT NULL,
        input TEXT, expected TEXT, metadata TEXT, source_trace_id TEXT,
        PRIMARY KEY (dataset, version, position));
    CREATE TABLE experiment_runs (
        run_id TEXT PRIMARY KEY, name TEXT NOT NULL, dataset TEXT NOT NULL, dataset_version INTEGER NOT NULL,
        started_ns INTEGER NOT NULL, ended_ns INTEGER NOT NULL, summary TEXT NOT NULL);
    CREATE INDEX experiment_runs_name ON experiment_runs(name, started_ns);
    CREATE TABLE experiment_rows (
        run_id TEXT NOT NULL, position INTEGER NOT NULL, item_id TEXT NOT NULL, trace_id TEXT,
        status TEXT NOT NULL, input TEXT, output TEXT, expected TEXT, error TEXT, scores TEXT,
        evaluator_errors TEXT, latency_ms REAL, cost_usd REAL,
        PRIMARY KEY (run_id, position));
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


def store_path(db: str | None = None) -> str:
    """The SQLite file: `db` if given, else the running client's store, else the one the CLI reads."""
    if db:
        return os.path.abspath(db)
    from tracewire.engine import state

    if state.client is not None:
        return os.path.abspath(str(state.client.config.db))
    from tracewire.read.local import default_db

    return os.path.abspath(default_db())


def _sanitizer() -> Sanitizer:
    """Scrubbing, the user's mask and the size cap as the running client's settings (else the
    environment's) make them, so content stored here is treated as an event's content is."""
    from tracewire.engine import state

    config = state.client.config if state.client is not None else Config.resolve({})
    return Sanitizer(Redactor(config.redact_keys, config.allow_keys), config.max_string_length, config.mask)


def safe(value: Any) -> Any:
    """`value` as JSON-safe data, scrubbed, masked and capped."""
    return _sanitizer().value(value)


def dumps(value: Any) -> str:
    """JSON text of a value already made safe (see `safe`)."""
    return _json.dumps_strict(value)


def loads(text: str | None) -> Any:
    return None if text is None else _json.loads(text)


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS experiment_schema (version INTEGER NOT NULL)")
    conn.execute("BEGIN IMMEDIATE")  # two processes opening a new store at once migrate it once
    try:
        have = conn.execute("SELECT COALESCE(MAX(version), 0) FROM experiment_schema").fetchone()[0]
        if have > SCHEMA_VERSION:
            raise RuntimeError(f"the experiment tables in this store are schema {have}; this tracewire knows "
                               f"up to {SCHEMA_VERSION}: upgrade tracewire")
        for version in range(have + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO experiment_schema (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@contextmanager
def opened(path: str, *, write: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection with the tables in place; `write` wraps the block in one transaction."""
    if not write and not os.path.exists(path):
        raise FileNotFoundError(f"no tracewire store at {path} (set TRACEWIRE_DB or --db)")
    conn = connect(path)
    try:
        _migrate(conn)
        if not write:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


# -- datasets -----------------------------------------------------------------------------------------
def latest_version(conn: sqlite3.Connection, name: str) -> tuple[int, str] | None:
    """(version, digest) of the newest version of a dataset, or None."""
    row = conn.execute("SELECT version, digest FROM datasets WHERE name = ? ORDER BY version DESC LIMIT 1",
                       (name,)).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def insert_version(conn: sqlite3.Connection, name: str, digest: str, items: Sequence[dict[str, Any]]) -> int:
    """A new version of `name` holding `items` (dicts of id, input, expected, metadata, source_trace_id)."""
    found = latest_version(conn, name)
    version = 1 if found is None else found[0] + 1
    conn.execute("INSERT INTO datasets (name, version, created_ns, digest) VALUES (?, ?, ?, ?)",
                 (name, version, time.time_ns(), digest))
    conn.executemany(
        "INSERT INTO dataset_items (dataset, version, position, item_id, input, expected, metadata, source_trace_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(name, version, i, it["id"], dumps(it["input"]), dumps(it["expected"]), dumps(it["metadata"]),
          it["source_trace_id"]) for i, it in enumerate(items)])
    return version


def version_items(conn: sqlite3.Connection, name: str, version: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT item_id, input, expected, metadata, source_trace_id FROM dataset_items"
        " WHERE dataset = ? AND version = ? ORDER BY position", (name, version)).fetchall()
    return [{"id": r[0], "input": loads(r[1]), "expected": loads(r[2]), "metadata": loads(r[3]) or {},
             "source_trace_id": r[4]} for r in rows]


def dataset_versions(conn: sqlite3.Connection) -> list[tuple[str, int, int, int]]:
    """(name, latest version, its item count, its creation time) per dataset, by name."""
    return [(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in conn.execute(
        "SELECT d.name, d.version, (SELECT COUNT(*) FROM dataset_items i WHERE i.dataset = d.name"
        " AND i.version = d.version), d.created_ns FROM datasets d"
        " WHERE d.version = (SELECT MAX(version) FROM datasets e WHERE e.name = d.name) ORDER BY d.name")]


# -- experiment runs ----------------------------------------------------------------------------------
RUN_COLUMNS = "run_id, name, dataset, dataset_version, started_ns, ended_ns, summary"
ROW_COLUMNS = ("position, item_id, trace_id, status, input, output, expected, error, scores, evaluator_errors,"
               " latency_ms, cost_usd")


def insert_run(conn: sqlite3.Connection, run: tuple[Any, ...], rows: Sequence[tuple[Any, ...]]) -> None:
    """`run` in RUN_COLUMNS order (summary as JSON text); `rows` in ROW_COLUMNS order, content as JSON text."""
    conn.execute(f"INSERT INTO experiment_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", run)
    conn.executemany(f"INSERT INTO experiment_rows (run_id, {ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(run[0], *r) for r in rows])


def list_runs(conn: sqlite3.Connection, name: str | None = None, limit: int = 50) -> list[tuple[Any, ...]]:
    """Runs in RUN_COLUMNS order, newest first."""
    where, args = ("WHERE name = ?", [name]) if name else ("", [])
    return conn.execute(f"SELECT {RUN_COLUMNS} FROM experiment_runs {where} ORDER BY started_ns DESC, run_id DESC"
                        " LIMIT ?", [*args, limit]).fetchall()


def find_run(conn: sqlite3.Connection, given: str) -> tuple[Any, ...] | None:
    """The newest run named `given`, else the one run whose id starts with `given`. LookupError when
    several run ids share the prefix."""
    found = list_runs(conn, given, 1)
    if found:
        return found[0]
    pattern = given.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(f"SELECT {RUN_COLUMNS} FROM experiment_runs WHERE run_id LIKE ? ESCAPE '\\' LIMIT 2",
                        (pattern,)).fetchall()
    if len(rows) > 1:
        raise LookupError(f"{given!r} starts more than one run id: give more characters")
    return rows[0] if rows else None


def run_rows(conn: sqlite3.Connection, run_id: str) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT {ROW_COLUMNS} FROM experiment_rows WHERE run_id = ? ORDER BY position",
                        (run_id,)).fetchall()
