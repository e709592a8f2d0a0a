"""What is scrubbed before any sink sees an event: key names in any spelling, secret shapes in any
text (names, tags, errors and dict keys included), and what happens when a value cannot be checked."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tracewire.pipeline.redact import REDACTED, WITHHELD, Redactor
from tracewire.pipeline.sanitize import Sanitizer
from tracewire.sinks.memory import MemorySink


def _stored(db: Path) -> bytes:
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _events(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        return [json.loads(line) for (line,) in conn.execute("SELECT body FROM events ORDER BY seq_no")]


# Spellings a careless user writes: none of them end in a word the old list knew.
SECRET_KEYS = [
    "refreshToken", "DB_PASSWORD", "x-auth-token", " Api Key ", "signingKey", "STRIPE_SECRET",
    "Proxy-Authorization", "sessionToken", "ANTHROPIC_API_KEY", "cookie", "userPassphrase", "MISTRAL_KEY",
    "azure.openai.key", "smtp_pass", "oauth", "githubPat_token", "X-Goog-Api-Key", "storageAccountKey",
    "credentials", "jwtSecret", "bearerToken", "id-token", "client_secret_value", "dbPwd",
]
# Key names that look like the vocabulary and must stay readable.
READABLE_KEYS = {
    "max_tokens": 256, "input_tokens": 12, "token_count": 7, "maxTokens": 64, "promptTokenCount": 3,
    "tokenizer": "cl100k", "author": "ann", "primary_key": "id", "token_type": "bearer", "auth_method": "oauth",
    "gen_ai.usage.output_tokens": 5, "keyboard": "us", "pass_rate": 0.5,
}


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_a_secret_key_in_any_spelling_is_scrubbed_wherever_it_is_recorded(tmp_path: Path, key: str) -> None:
    db = tmp_path / "t.db"
    value = f"v4lue-{abs(hash(key)):x}-unguessable"
    client = tracewire.init(sink="sqlite", db=str(db))
    tracewire.record("log", input={key: value, **READABLE_KEYS}, metadata={key: value})
    with tracewire.span("tool", "t", input={"nested": [{key: value}]}, metadata={"deep": {key: value}},
                        attributes={key: value}) as s:
        s.set_output({"headers": {key: value}})
    assert client.flush(10)
    tracewire.shutdown()
    assert value.encode() not in _stored(db)
    log = _events(db)[0]
    assert {k: log["input"][k] for k in READABLE_KEYS} == READABLE_KEYS
    assert log["input"][key] == REDACTED


def test_the_redactor_reads_key_names_as_words() -> None:
    r = Redactor(["tenant id"], allow_keys=["session_token_count_x", "myAuth"])
    for key in SECRET_KEYS + ["tenantId", "TENANT-ID", "x_tenant_id"]:
        assert r.is_secret_key(key), key
    for key in [*READABLE_KEYS, "sessionTokenCountX", "my_auth", "tenant"]:
        assert not r.is_secret_key(key), key


B64 = base64.b64encode(b"ops:Pa55-basic-only").decode()
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
PEM = ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIPemBodyLineOneQQQ\nPemBodyLineTwoWWW==\n"
       "-----END EC PRIVATE KEY-----")
SHAPES = {
    "pem": (PEM, ["PemBodyLineOneQQQ", "PemBodyLineTwoWWW"]),
    "service_account_json": (json.dumps({"type": "service_account", "project_id": "p",
                                         "private_key_id": "f00dfacef00dface1234",
                                         "private_key": PEM + "\n", "client_email": "a@p.iam"}),
                             ["f00dfacef00dface1234", "PemBodyLineOneQQQ"]),
    "url_password": ("redis://cache:s3cr3t@w1th-at@cache.internal:6379/0", ["s3cr3t@w1th-at"]),
    "basic": (f"Authorization: Basic {B64}", [B64]),
    "bearer_inline": ("curl -H 'authorization: bearer opaque.tok3n.value-123'", ["opaque.tok3n.value-123"]),
    "pairs": ("export aws_secret_access_key=wJalrXUtnFEMIK7MDENGbPxRfiCYz and db_password=Tr0ub4dor&3",
              ["wJalrXUtnFEMIK7MDENGbPxRfiCYz", "Tr0ub4dor"]),
    "repr": ("KeyError: {'x-api-key': 'k3y-in-a-repr-0987', 'model': 'm'}", ["k3y-in-a-repr-0987"]),
    "openai": ("key: sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe", ["Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe"]),
    "anthropic": ("sk-ant-api03-Qw3rTy6UiOp9AsDfGhJkL-zXcVbNm12345", ["Qw3rTy6UiOp9AsDfGhJkL"]),
    "google": ("AIzaSyDd8Fh3Kk9Ll0Mm1Nn2Oo3Pp4Qq5Rr6Ss7", ["SyDd8Fh3Kk9Ll0Mm1Nn2Oo3Pp4Qq5Rr6Ss7"]),
    "github": ("ghp_R4nd0mG1tHubT0kenAbCdEfGhIjKlMnOpQr", ["R4nd0mG1tHubT0kenAbCdEfGhIjKlMnOpQr"]),
    "github_pat": ("github_pat_11AAAAAAA0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789", ["11AAAAAAA0aBcDeFgHiJkL"]),
    "gitlab": ("glpat-a1B2-c3D4_e5F6g7H8i9J0", ["a1B2-c3D4_e5F6g7H8i9J0"]),
    "slack": ("xoxp-2048-4096-8192-aB3dE5gH7jK9mN1pQ3sT5vX7", ["aB3dE5gH7jK9mN1pQ3sT5vX7"]),
    "aws": ("ASIAY34FZKBOKMUTVV7A in use", ["ASIAY34FZKBOKMUTVV7A"]),
    "jwt": (f"session {JWT}", ["c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"]),
    "huggingface": ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", ["AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"]),
}


def _raise(text: str) -> None:
    raise ConnectionError(f"upstream said: {text}")


@pytest.mark.parametrize("shape", SHAPES)
def test_secret_shapes_in_any_text_are_scrubbed(tmp_path: Path, shape: str) -> None:
    text, secrets = SHAPES[shape]
    db, jsonl = tmp_path / "t.db", tmp_path / "t.jsonl"
    client = tracewire.init(sink="sqlite,jsonl", db=str(db), jsonl_path=str(jsonl))
    tracewire.record("user.input", input=f"please use {text} now", metadata={"note": [text]})
    with pytest.raises(ConnectionError), tracewire.span("tool", f"call {text}", tags=[f"t:{text}"]):
        _raise(text)
    tracewire.record("log", input={text: "as a key", "plain": 1})
    assert client.flush(10)
    tracewire.shutdown()
    for blob in (_stored(db), jsonl.read_bytes()):
        for secret in secrets:
            assert secret.encode() not in blob, (shape, secret)
        assert REDACTED.encode() in blob
    err = next(e for e in _events(db) if e["phase"] == "error")
    assert err["error"]["type"] == "ConnectionError" and "upstream said" in err["error"]["message"]
    assert "Traceback" in err["error"]["stacktrace"] and "_raise" in err["error"]["stacktrace"]


def test_secret_shapes_inside_error_types_are_scrubbed() -> None:
    sink = MemorySink()
    client = tracewire.init(sink=[sink])
    tracewire.record("log", error={"type": "ghp_R4nd0mG1tHubT0kenAbCdEfGhIjKlMnOpQr", "message": "m"})
    assert client.flush(10)
    assert "ghp_" not in json.dumps(sink.events)


class Hostile(str):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class Unreadable(Mapping[str, Any]):
    def __getitem__(self, k: str) -> Any:
        raise RuntimeError("unreadable")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("unreadable")

    def __len__(self) -> int:
        return 1


def test_a_value_that_cannot_be_checked_does_not_leave_and_the_rest_is_still_scrubbed(tmp_path: Path) -> None:
    db, jsonl = tmp_path / "t.db", tmp_path / "t.jsonl"
    bearer = "Bearer unrelatedBearerTokenValue0123456789"
    client = tracewire.init(sink="sqlite,jsonl", db=str(db), jsonl_path=str(jsonl))
    tracewire.record("log", input={"odd": Unreadable(), "auth_header_value": bearer,
                                   "text": Hostile("sk-proj-HostileStrSubclass0123456789")})
    assert client.flush(10)
    tracewire.shutdown()
    for blob in (_stored(db), jsonl.read_bytes()):
        assert b"unrelatedBearerTokenValue" not in blob and b"HostileStrSubclass" not in blob
    (ev,) = _events(db)
    assert ev["input"]["odd"] == WITHHELD
    assert ev["input"]["text"] == REDACTED
    assert client.stats()["withheld"]["values"] == 1


def test_a_failing_privacy_stage_withholds_the_event_content_and_counts_it(tmp_path: Path) -> None:
    sink = MemorySink()
    client = tracewire.init(sink=[sink])
    boom = RuntimeError("scrubber bug")

    def broken(_: Any, *a: Any, **k: Any) -> Any:
        raise boom

    client._pipeline.sanitizer.value = broken  # type: ignore[method-assign]  # the full walk fails on this event
    tracewire.record("log", name="n", input={"x": object(), "y": "Bearer abcdefghijklmnopqrstu"})
    assert client.flush(10)
    (ev,) = sink.events
    assert "input" not in ev and ev["attributes"] == {"tracewire.withheld": "processor:SanitizeContent failed"}
    assert "abcdefghijklmnopqrstu" not in json.dumps(ev)
    assert client.stats()["withheld"]["events"] == 1


def test_a_key_with_trailing_space_is_scrubbed_alone_as_with_company() -> None:
    for extra in ({}, {"note": "Bearer abcdefghijklmnop"}):
        sink = MemorySink()
        client = tracewire.init(sink=[sink])
        tracewire.record("log", input={"api_key ": "lonely-value-123", **extra})
        assert client.flush(10)
        assert sink.events[0]["input"]["api_key "] == REDACTED, extra


def test_event_size_cap_counts_utf8_bytes_and_marks_the_original(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    client = tracewire.init(sink="sqlite", db=str(db), max_event_bytes=1024 * 1024, max_string_length=10**7)
    cjk = "漢字かな交じり文" * 112_500  # 900,000 characters, 2.7 MB of UTF-8
    tracewire.record("log", input={"text": cjk}, output=cjk)
    assert client.flush(30)
    tracewire.shutdown()
    with sqlite3.connect(db) as conn:
        (line,) = conn.execute("SELECT body FROM events").fetchone()
    assert len(line.encode("utf-8")) <= 1024 * 1024
    ev = json.loads(line)
    cut = [ev[f] for f in ("input", "output") if isinstance(ev.get(f), dict) and "$truncated" in ev[f]]
    assert cut and all(c["original_bytes"] > 2_700_000 for c in cut)
    assert all(c["$truncated"] == "" or c["$truncated"].startswith(('{"text":"漢字', '"漢字')) for c in cut)
    assert sum(len(c["$truncated"].encode()) for c in cut) > 900_000  # what fits is kept


def test_str_of_a_failed_operations_exception_is_taken_once() -> None:
    calls = []

    class Slow(Exception):
        def __str__(self) -> str:
            calls.append(1)
            return "slow message"

    sink = MemorySink()
    client = tracewire.init(sink=[sink])
    with pytest.raises(Slow), tracewire.span("tool", "t"):
        raise Slow()
    assert client.flush(10)
    assert len(calls) == 1
    err = sink.events[-1]["error"]
    assert err["message"] == "slow message" and err["stacktrace"].rstrip().endswith("Slow: slow message")


def test_sanitizer_keeps_booleans_of_secret_keys_and_scrubs_dict_keys() -> None:
    s = Sanitizer(Redactor(), 1000)
    assert s.value({"password": True, "api_key": None, "token": 5}) == {"password": True, "api_key": None,
                                                                         "token": REDACTED}
    assert s.value({"AKIAIOSFODNN7EXAMPLE": 1}) == {REDACTED: 1}
