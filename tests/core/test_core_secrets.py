"""Planted secrets never reach the SQLite file, the JSONL file, or `tracewire export`."""

from __future__ import annotations

import subprocess
import sys

import tracewire

OPENAI_KEY = "sk-proj-Abc123Def456Ghi789Jkl012Mno345"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PASSWORD = "hunter2-correct-horse"
AWS = "AKIAIOSFODNN7EXAMPLE"
SECRETS = [OPENAI_KEY, BEARER.split()[1], PASSWORD, AWS, "tok-abcdef-123456"]


def _plant() -> None:
    with tracewire.span("llm", "call", input={
        "api_key": OPENAI_KEY,
        "headers": {"Authorization": BEARER, "X-Api-Key": "plain-but-secret-key-value"},
        "db": {"user": "app", "password": PASSWORD},
        "note": f"my key is {OPENAI_KEY} and aws {AWS}",
        "access_token": "tok-abcdef-123456",
        "max_tokens": 256,  # not a secret: must survive
    }, metadata={"client_secret": "cs-very-secret-value"}) as s:
        s.set_output({"echo": f"Authorization: {BEARER}"})
    tracewire.record("log", input=["sk-live-ZZZZZZZZZZZZZZZZZZZZ", {"passwd": PASSWORD}])


def test_secrets_absent_from_sqlite_jsonl_and_export(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db, jsonl = tmp_path / "t.db", tmp_path / "t.jsonl"
    client = tracewire.init(sink="sqlite,jsonl", db=str(db), jsonl_path=str(jsonl))
    _plant()
    assert client.flush(10)
    tracewire.shutdown()
    exported = subprocess.run(
        [sys.executable, "-m", "tracewire.cli", "export", "--db", str(db)], capture_output=True, check=True
    ).stdout
    files = {"sqlite": db.read_bytes() + (tmp_path / "t.db-wal").read_bytes() if (tmp_path / "t.db-wal").exists() else db.read_bytes(),
             "jsonl": jsonl.read_bytes(), "export": exported}
    for where, blob in files.items():
        assert b"[REDACTED]" in blob, where
        for secret in [*SECRETS, "plain-but-secret-key-value", "cs-very-secret-value", "sk-live-ZZZZ"]:
            assert secret.encode() not in blob, (where, secret)
        assert b'"max_tokens":256' in blob, where
    assert exported.count(b"\n") == 3
