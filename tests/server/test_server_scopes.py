"""Key scopes: an ingest key cannot read, a read key cannot ingest; scopes are stored with the key,
shown by `keys list`, and keys minted before scopes existed keep working as ingest-only keys."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from collector_harness import Collector, make_event

from tracewire.server.backends import open_store
from tracewire.server.keys import FileKeyStore, create_key
from tracewire.wire import new_key

READ_PATHS = ["/v1/traces", "/v1/traces/{trace_id}", "/v1/sessions/{session_id}"]


def _forbidden(r: Any, scope: str) -> None:
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "insufficient_scope", r.text
    assert f"'{scope}'" in err["message"], r.text  # the reason names the missing scope


def _project() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def test_ingest_only_key_cannot_read(collector: Collector) -> None:
    key = create_key(collector.store, _project())  # the default: what an app's SDK gets
    e = make_event(session_id="sess-1")
    assert collector.post(key, [e]).json()["accepted"] == 1
    for path in READ_PATHS:
        _forbidden(collector.get(path.format(trace_id=e["trace_id"], session_id="sess-1"), key), "read")
    reader = create_key(collector.store, key.project, scopes=["read"])
    assert collector.get(f"/v1/traces/{e['trace_id']}", reader).json()["events"][0]["id"] == e["id"]
    assert collector.get("/v1/sessions/sess-1", reader).status_code == 200


def test_cli_reading_with_an_ingest_key_says_which_scope_is_missing(collector: Collector, tmp_path: Path) -> None:
    key = create_key(collector.store, _project())
    r = subprocess.run([sys.executable, "-m", "tracewire.cli", "traces", "--server", collector.url,
                        "--api-key", key.api_key], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "403 insufficient_scope" in r.stderr and "'read'" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert key.api_key not in r.stderr


def test_read_only_key_cannot_ingest_and_nothing_is_stored(collector: Collector) -> None:
    reader = create_key(collector.store, _project(), scopes=["read"])
    _forbidden(collector.post(reader, [make_event()]), "ingest")
    assert collector.count(reader.project) == 0
    assert collector.get("/v1/traces", reader).json() == {"traces": [], "next_offset": None}


def test_scope_check_comes_after_authentication(collector: Collector) -> None:
    key = create_key(collector.store, _project(), scopes=["ingest"])
    assert collector.store.revoke_key(key.key_id, time.time())
    r = collector.get("/v1/traces", key)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "revoked_key")


def test_unknown_scope_is_refused() -> None:
    class Nowhere:
        def create_key(self, record: Any) -> None:
            raise AssertionError("must not be stored")

    with pytest.raises(ValueError, match="scope"):
        create_key(Nowhere(), "p", scopes=["write"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scope"):
        create_key(Nowhere(), "p", scopes=[])  # type: ignore[arg-type]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracewire.server.cli", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("where", ["db", "keys"])
def test_cli_scopes_create_and_list(tmp_path: Path, where: str) -> None:
    store = ["--db", f"sqlite:///{tmp_path}/c.db"] if where == "db" else ["--keys", str(tmp_path / "k.json")]
    plain = _cli("keys", "create", "--project", "p1", "--json", *store)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["scopes"] == ["ingest"]
    both = _cli("keys", "create", "--project", "p1", "--scope", "read", "--scope", "ingest", *store)
    assert both.returncode == 0, both.stderr
    assert "scopes:         ingest,read" in both.stdout
    admin = _cli("keys", "create", "--project", "p1", "--scope", "admin", "--json", *store)
    assert json.loads(admin.stdout)["scopes"] == ["admin"]
    bad = _cli("keys", "create", "--project", "p1", "--scope", "write", *store)
    assert bad.returncode == 2 and "--scope" in bad.stderr
    listed = _cli("keys", "list", "--json", *store)
    assert sorted(tuple(k["scopes"]) for k in json.loads(listed.stdout)) == [
        ("admin",), ("ingest",), ("ingest", "read")]
    table = _cli("keys", "list", *store).stdout
    assert "SCOPES" in table.splitlines()[0] and "ingest,read" in table


def test_sqlite_store_from_before_scopes_is_migrated_ingest_only(tmp_path: Path) -> None:
    from tracewire.server.store_sqlite import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)")
    for stmt in filter(str.strip, MIGRATIONS[0].split(";")):
        conn.execute(stmt)
    conn.execute("INSERT INTO schema_migrations VALUES (1)")
    k = new_key("legacy")
    conn.execute("INSERT INTO api_keys (key_id, project, key_hash, signing_secret, created_at) VALUES (?,?,?,?,?)",
                 (k.key_id, k.project, k.key_hash, k.signing_secret, 1.0))
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")
    try:
        rec = store.get_key(k.key_id)
        assert rec is not None and tuple(rec.scopes) == ("ingest",) and rec.key_hash == k.key_hash
        assert [tuple(r.scopes) for r in store.list_keys()] == [("ingest",)]
    finally:
        store.close()


def test_postgres_store_from_before_scopes_is_migrated_ingest_only(pg_admin_dsn: str) -> None:
    import psycopg

    from tracewire.server.store_postgres import MIGRATIONS

    name = f"tracewire_scopes_{uuid.uuid4().hex[:10]}"  # a database of its own, at the old schema
    with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    dsn = urlsplit(pg_admin_dsn)._replace(path="/" + name).geturl()
    try:
        k = new_key("legacy")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY)")
            conn.execute(MIGRATIONS[0])  # type: ignore[arg-type]
            conn.execute("INSERT INTO schema_migrations VALUES (1)")
            conn.execute("INSERT INTO api_keys (key_id, project, key_hash, signing_secret, created_at)"
                         " VALUES (%s,%s,%s,%s,%s)", (k.key_id, k.project, k.key_hash, k.signing_secret, 1.0))
        store = open_store(dsn)
        try:
            rec = store.get_key(k.key_id)
            assert rec is not None and tuple(rec.scopes) == ("ingest",)
            made = create_key(store, "new", scopes=["read", "admin"])
            got = store.get_key(made.key_id)
            assert got is not None and tuple(got.scopes) == ("admin", "read")
        finally:
            store.close()
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def test_keys_file_from_before_scopes_is_read_ingest_only(tmp_path: Path) -> None:
    k = new_key("legacy")
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [{"key_id": k.key_id, "project": k.project, "key_hash": k.key_hash,
                                          "signing_secret": k.signing_secret, "created_at": 1.0,
                                          "revoked_at": None}]}))
    files = FileKeyStore(str(path))
    rec = files.get_key(k.key_id)
    assert rec is not None and tuple(rec.scopes) == ("ingest",)
    create_key(files, "legacy", scopes=["read"])  # rewriting the file keeps the old key ingest-only
    doc = json.loads(path.read_text())
    assert sorted(tuple(x["scopes"]) for x in doc["keys"]) == [("ingest",), ("read",)]
    assert FileKeyStore(str(path)).revoke_key(k.key_id, 2.0)
    again = FileKeyStore(str(path)).get_key(k.key_id)
    assert again is not None and tuple(again.scopes) == ("ingest",) and again.revoked_at == 2.0
