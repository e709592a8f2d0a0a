"""Files are private: under a umask of 022 every store, spool, dead-letter and quarantine file tracewire
creates is 0600 and every folder it creates 0700; a `.tracewire/` folder gets a `.gitignore` of `*`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracewire.delivery.deadletters import DeadLetters
from tracewire.delivery.records import frame
from tracewire.delivery.spool import Spool
from tracewire.server.keys import FileKeyStore, create_key
from tracewire.server.store_sqlite import SQLiteStore


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    """Relative path -> permission bits of `root` and everything under it."""
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for p in root.rglob("*"):
        out[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def _loose(modes: dict[str, int], root: Path) -> dict[str, str]:
    bad = {}
    for rel, mode in modes.items():
        want = 0o700 if (root / rel).is_dir() else 0o600
        if mode != want:
            bad[rel] = oct(mode)
    return bad


_SDK_SCRIPT = r"""
import json, os, sys, stat
os.umask(0o022)
import tracewire
tracewire.init(sink="sqlite,jsonl")
with tracewire.span("tool", "files"):
    pass
assert tracewire.flush(10)
root = os.path.abspath(".tracewire")
seen = {}
for d, dirs, files in os.walk(root):
    for n in [*dirs, *files]:
        p = os.path.join(d, n)
        seen[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
seen["."] = stat.S_IMODE(os.stat(root).st_mode)
tracewire.shutdown()
print(json.dumps(seen))
"""


def test_sdk_sqlite_and_jsonl_stores_are_private(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    r = subprocess.run([sys.executable, "-c", _SDK_SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    while_open = json.loads(r.stdout.splitlines()[-1])
    assert {"tracewire.db", "tracewire.db-wal", "tracewire.db-shm", "events.jsonl"} <= set(while_open), while_open
    root = tmp_path / ".tracewire"
    assert _loose({k: v for k, v in while_open.items()}, root) == {}, while_open
    assert _loose(_modes(root), root) == {}
    assert (root / ".gitignore").read_text().strip() == "*"


def test_sdk_store_in_a_new_nested_folder_is_private(tmp_path: Path, umask_022: None) -> None:
    from tracewire.sinks.sqlite_table import connect

    path = tmp_path / "a" / "b" / "t.db"
    conn = connect(str(path))
    conn.execute("INSERT INTO events (id, body) VALUES ('x', '{}')")
    try:
        assert _loose(_modes(tmp_path / "a"), tmp_path / "a") == {}
        assert (path.parent / (path.name + "-wal")).exists()
    finally:
        conn.close()


def test_spool_dead_letters_and_quarantine_are_private(tmp_path: Path, umask_022: None) -> None:
    root = tmp_path / ".tracewire"
    spool_dir = root / "spool"
    spool = Spool(str(spool_dir), 1 << 30)
    assert spool.append([b'{"id":"1"}'])
    # a damaged segment left by a dead process: read, its bad bytes moved to quarantine/
    damaged = spool_dir / "seg-00000000000000000001-1-deadbeef.tws"
    good = frame(b'{"id":"2"}')
    damaged.write_bytes(good[:-3] + b"XYZ" + good)
    os.chmod(damaged, 0o600)
    assert spool.claim_orphans() == 1
    batch = spool.next_batch(100, 1 << 20)
    assert batch is not None
    spool.resolve(batch)
    dead = DeadLetters(str(spool_dir))
    dead.add("http_400:bad", [b'{"id":"3"}'], "b1", 400)
    try:
        modes = _modes(root)
        assert any(k.startswith("spool/quarantine/") and k.endswith(".bad") for k in modes), modes
        assert any(k.startswith("spool/dead/dl-") for k in modes), modes
        assert _loose(modes, root) == {}, modes
        assert (root / ".gitignore").read_text().strip() == "*"
    finally:
        spool.close()
        dead.close()


def test_collector_database_and_keys_file_are_private(tmp_path: Path, umask_022: None) -> None:
    root = tmp_path / ".tracewire"
    store = SQLiteStore(str(root / "collector.db"))
    try:
        create_key(store, "p")
        modes = _modes(root)
        assert {"collector.db", "collector.db-wal", "collector.db-shm"} <= set(modes), modes
        assert _loose(modes, root) == {}, modes
    finally:
        store.close()
    keys_dir = tmp_path / "keys"
    create_key(FileKeyStore(str(keys_dir / "keys.json")), "p")
    assert _loose(_modes(keys_dir), keys_dir) == {}


def test_serve_default_database_folder_is_private(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    code = "import os, sys; os.umask(0o022); from tracewire.server.cli import main; sys.exit(main(sys.argv[1:]))"
    r = subprocess.run([sys.executable, "-c", code, "keys", "create", "--project", "p"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    root = tmp_path / ".tracewire"
    assert _loose(_modes(root), root) == {}
    assert (root / ".gitignore").read_text().strip() == "*"
