"""Every way to get ingestion or reads wrong is refused with the right status, and nothing is stored."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from collector_harness import Collector, make_event

from tracewire.server.keys import FileKeyStore, create_key
from tracewire.wire import NewKey, sign


def _refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


@pytest.mark.parametrize("case", [
    "no_key", "not_bearer", "garbage_key", "unknown_key_id", "right_id_wrong_secret",
    "no_signature", "no_timestamp", "bad_signature", "signed_with_other_secret", "malformed_signature",
    "tampered_body", "old_timestamp", "future_timestamp", "non_numeric_timestamp", "revoked_key",
])
def test_ingestion_refused_and_nothing_stored(collector: Collector, key: NewKey, case: str) -> None:
    events = [make_event(), make_event()]
    body = orjson.dumps({"events": events})
    bad_secret = "tws_" + "A" * 43
    expected: dict[str, tuple[int, str]] = {
        "no_key": (401, "missing_key"), "not_bearer": (401, "missing_key"), "garbage_key": (401, "invalid_key"),
        "unknown_key_id": (401, "invalid_key"), "right_id_wrong_secret": (401, "invalid_key"),
        "no_signature": (401, "missing_signature"), "no_timestamp": (401, "missing_signature"),
        "bad_signature": (401, "bad_signature"), "signed_with_other_secret": (401, "bad_signature"),
        "malformed_signature": (401, "bad_signature"), "tampered_body": (401, "bad_signature"),
        "old_timestamp": (401, "stale_timestamp"), "future_timestamp": (401, "stale_timestamp"),
        "non_numeric_timestamp": (401, "stale_timestamp"), "revoked_key": (401, "revoked_key"),
    }
    if case == "no_key":
        r = collector.post(key, body=body, headers={"Authorization": ""})
    elif case == "not_bearer":
        r = collector.post(key, body=body, headers={"Authorization": f"Basic {key.api_key}"})
    elif case == "garbage_key":
        r = collector.post(key, body=body, headers={"Authorization": "Bearer hello"})
    elif case == "unknown_key_id":
        r = collector.post(key, body=body, headers={"Authorization": "Bearer twk_0123456789ab_" + "x" * 43})
    elif case == "right_id_wrong_secret":
        r = collector.post(key, body=body, headers={"Authorization": f"Bearer twk_{key.key_id}_" + "x" * 43})
    elif case == "no_signature":
        r = collector.post(key, body=body, headers={"X-Tracewire-Signature": ""})
    elif case == "no_timestamp":
        r = collector.post(key, body=body, headers={"X-Tracewire-Timestamp": ""})
    elif case == "bad_signature":
        r = collector.post(key, body=body, headers={"X-Tracewire-Signature": "v1=" + "0" * 64})
    elif case == "signed_with_other_secret":
        r = collector.post(key, body=body, secret=bad_secret)
    elif case == "malformed_signature":
        r = collector.post(key, body=body, headers={"X-Tracewire-Signature": "sha256=zz"})
    elif case == "tampered_body":  # signed one body, sent another (one event swapped for an attacker's)
        tampered = orjson.dumps({"events": [events[0], make_event(name="injected")]})
        r = collector.post(key, body=tampered, sign_body=body)
    elif case == "old_timestamp":  # a replay of a batch signed 10 minutes ago
        r = collector.post(key, body=body, timestamp=int(time.time()) - 600)
    elif case == "future_timestamp":
        r = collector.post(key, body=body, timestamp=int(time.time()) + 600)
    elif case == "non_numeric_timestamp":
        ts = "12.5"
        r = collector.post(key, body=body, headers={"X-Tracewire-Timestamp": ts,
                                                     "X-Tracewire-Signature": sign(key.signing_secret, ts, body)})
    else:
        assert collector.store.revoke_key(key.key_id, time.time())
        r = collector.post(key, body=body)
    _refused(r, *expected[case])
    if r.status_code == 401:
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert collector.count(key.project) == 0


def test_replay_within_window_is_only_a_duplicate(collector: Collector, key: NewKey) -> None:
    """A captured request replayed inside the window cannot add anything: event ids dedupe it."""
    body = orjson.dumps({"events": [make_event()]})
    ts = int(time.time())
    assert collector.post(key, body=body, timestamp=ts).json()["accepted"] == 1
    assert collector.post(key, body=body, timestamp=ts).json()["duplicate"] == 1
    assert collector.count(key.project) == 1


def test_another_projects_key_cannot_read_or_see_traces(collector: Collector) -> None:
    owner, other = collector.new_key(), collector.new_key()
    e = make_event(session_id="private-session")
    assert collector.post(owner, [e]).json()["accepted"] == 1
    assert collector.get(f"/v1/traces/{e['trace_id']}", owner).status_code == 200
    # 404 for another project's trace, exactly as for a trace that does not exist: existence never leaks
    _refused(collector.get(f"/v1/traces/{e['trace_id']}", other), 404, "not_found")
    _refused(collector.get("/v1/sessions/private-session", other), 404, "not_found")
    assert collector.get("/v1/traces", other).json() == {"traces": [], "next_offset": None}
    # the same event id under another project is that project's own event, not a duplicate of the first
    assert collector.post(other, [e]).json()["accepted"] == 1
    assert (collector.count(owner.project), collector.count(other.project)) == (1, 1)


@pytest.mark.parametrize("path", ["/v1/traces", "/v1/traces/abc", "/v1/sessions/abc"])
def test_reads_need_a_valid_active_key(collector: Collector, path: str) -> None:
    _refused(collector.get(path), 401, "missing_key")
    bogus = NewKey("0123456789ab", "x", "twk_0123456789ab_" + "y" * 43, "tws_")
    _refused(collector.get(path, bogus), 401, "invalid_key")
    key = collector.new_key()
    assert collector.store.revoke_key(key.key_id, time.time())
    _refused(collector.get(path, key), 401, "revoked_key")


def test_keys_are_stored_hashed(collector: Collector, tmp_path: Any) -> None:
    key = collector.new_key()
    rec = collector.store.get_key(key.key_id)
    assert rec is not None and key.api_key not in repr(rec) and rec.key_hash == key.key_hash
    files = FileKeyStore(str(tmp_path / "keys.json"))
    fkey = create_key(files, "proj")
    text = (tmp_path / "keys.json").read_text()
    assert fkey.api_key not in text and fkey.key_hash in text
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
