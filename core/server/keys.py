"""API keys: minted by `tracewire keys create`, stored hashed, in the database or in a keys file.

A keys file (`--keys FILE`) is JSON, written atomically with mode 0600; the collector re-reads it
when it changes, so a revocation takes effect on the next request without a restart.

Every key carries scopes (`ingest`, `read`, `admin`); a key without a stored scope list (minted
before scopes existed) is ingest-only.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, replace
from typing import Any

from tracewire._files import private_dir
from tracewire.server.store import LEGACY_SCOPES, KeyRecord, KeyStore, normalize_scopes, scopes_from_text
from tracewire.wire import NewKey, new_key

DEFAULT_SCOPES: tuple[str, ...] = ("ingest",)  # what an app's SDK needs, and nothing more


def create_key(keys: KeyStore, project: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> NewKey:
    if not project or len(project) > 128 or "\x00" in project:
        raise ValueError("project must be 1-128 characters")
    granted = normalize_scopes(scopes)
    key = new_key(project)
    keys.create_key(KeyRecord(key.key_id, project, key.key_hash, key.signing_secret, time.time(), scopes=granted))
    return key


def _record(doc: dict[str, Any]) -> KeyRecord:
    raw = doc.get("scopes")
    scopes = scopes_from_text(",".join(map(str, raw))) if isinstance(raw, list) else LEGACY_SCOPES
    return KeyRecord(doc["key_id"], doc["project"], doc["key_hash"], doc["signing_secret"], doc["created_at"],
                     doc.get("revoked_at"), scopes)


class FileKeyStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, KeyRecord] = {}

    def _load(self) -> dict[str, KeyRecord]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                with open(self.path, encoding="utf-8") as f:
                    doc = json.load(f)
                self._keys = {k["key_id"]: _record(k) for k in doc.get("keys", [])}
                self._stamp = stamp
            return self._keys

    def _save(self, keys: dict[str, KeyRecord]) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        private_dir(directory)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".keys-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"keys": [{**asdict(k), "scopes": list(k.scopes)} for k in keys.values()]}, f, indent=1)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise

    def create_key(self, record: KeyRecord) -> None:
        keys = dict(self._load())
        keys[record.key_id] = record
        self._save(keys)

    def get_key(self, key_id: str) -> KeyRecord | None:
        return self._load().get(key_id)

    def list_keys(self) -> list[KeyRecord]:
        return sorted(self._load().values(), key=lambda k: k.created_at)

    def revoke_key(self, key_id: str, when: float) -> bool:
        keys = dict(self._load())
        rec = keys.get(key_id)
        if rec is None or rec.revoked_at is not None:
            return False
        keys[key_id] = replace(rec, revoked_at=when)
        self._save(keys)
        return True
