"""Connection strings are printed with their credentials masked: by `tracewire serve`, `keys`,
`doctor`, and in configuration errors, whatever the DSN's spelling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracewire._dsn import redact_dsn

SECRET = "S3cr@t/p?w"  # '@', '/' and '?' unescaped: the hard cases for a naive pattern

SPELLINGS = [
    (f"postgresql://u:{SECRET}@db.example:5432/x", "postgresql://u:***@db.example:5432/x"),
    ("postgresql://u:pw@h/x?sslmode=require&password=S3cr@t&application_name=a",
     "postgresql://u:***@h/x?sslmode=require&password=***&application_name=a"),
    ("postgres://u@h/x?password=S3cr@t", "postgres://u@h/x?password=***"),
    ("postgresql://u@h/x?sslpassword=S3cr@t&sslmode=verify-full", "postgresql://u@h/x?sslpassword=***&sslmode=verify-full"),
    ("postgresql://u@h/x?PASSWORD=S3cr@t", "postgresql://u@h/x?PASSWORD=***"),
    ("host=h port=5432 user=u password=S3cr@t dbname=x", "host=h port=5432 user=u password=*** dbname=x"),
    ("host=h password = 'S3c r@t \\' x' dbname=x", "host=h password = *** dbname=x"),
    ("dbname=x sslpassword=S3cr@t", "dbname=x sslpassword=***"),
    ("https://user:tok@n@collector.internal:4319/", "https://user:***@collector.internal:4319/"),
    ("postgresql://:S3cr@t@h/x", "postgresql://:***@h/x"),
]


@pytest.mark.parametrize(("dsn", "shown"), SPELLINGS)
def test_redact_dsn_spellings(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown
    assert redact_dsn(f"error: cannot open {dsn} (refused)") == f"error: cannot open {shown} (refused)"
    if "'" not in dsn:
        assert redact_dsn(f"error: cannot open {dsn!r}: refused") == f"error: cannot open {shown!r}: refused"


@pytest.mark.parametrize("kept", [
    "sqlite:///.tracewire/collector.db", "postgresql://u@h:5432/x", "host=h dbname=x user=u",
    "https://collector:4319", "/tmp/plain.db",
])
def test_redact_dsn_leaves_credential_free_text_alone(kept: str) -> None:
    assert redact_dsn(kept) == kept


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    env["HOME"] = str(tmp_path)
    return env


def _leaks(text: str) -> list[str]:
    return [f for f in ("S3cr", "cr@t", "p?w") if f in text]


@pytest.mark.parametrize("db", [
    f"postgresql://u:{SECRET}@127.0.0.1:1/x?connect_timeout=1",
    "postgresql://u@127.0.0.1:1/x?connect_timeout=1&password=S3cr@t",
    "host=127.0.0.1 port=1 connect_timeout=1 password=S3cr@t dbname=x",
    f"mysql://u:{SECRET}@h/x",
])
def test_serve_never_prints_the_database_password(tmp_path: Path, db: str) -> None:
    """The banner comes first, then the refusal to start: neither shows the password."""
    proc = subprocess.Popen([sys.executable, "-m", "tracewire.server.cli", "serve", "--port", "1", "--db", db],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_clean_env(tmp_path), cwd=tmp_path)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode()
    assert proc.returncode != 0, text
    assert not _leaks(text), text
    assert "***" in text or "--db" in text, text  # a masked banner, or a refusal naming the option


@pytest.mark.parametrize("command", [["keys", "list"], ["keys", "create", "--project", "p"]])
def test_keys_commands_never_print_the_database_password(tmp_path: Path, command: list[str]) -> None:
    db = f"postgresql://u:{SECRET}@127.0.0.1:1/x?connect_timeout=1"
    r = subprocess.run([sys.executable, "-m", "tracewire.server.cli", *command, "--db", db], capture_output=True,
                       text=True, env=_clean_env(tmp_path), cwd=tmp_path, timeout=60)
    assert r.returncode != 0
    assert not _leaks(r.stdout + r.stderr), r.stdout + r.stderr


def test_doctor_and_config_errors_never_print_endpoint_credentials(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    env.update({"TRACEWIRE_ENDPOINT": f"http://u:{SECRET}@127.0.0.1:1", "TRACEWIRE_SPOOL_DIR": str(tmp_path / "s"),
                "TRACEWIRE_DB": str(tmp_path / "t.db"), "TRACEWIRE_HTTP_TIMEOUT": "0.5"})
    r = subprocess.run([sys.executable, "-m", "tracewire.cli", "doctor", "--json"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 1, r.stderr  # the collector is unreachable: that needs fixing
    report = json.loads(r.stdout)
    assert report["delivery"]["endpoint"] == "http://u:***@127.0.0.1:1"
    assert not _leaks(r.stdout + r.stderr), r.stdout
    human = subprocess.run([sys.executable, "-m", "tracewire.cli", "doctor"], capture_output=True, text=True,
                           env=env, timeout=60)
    assert human.returncode == 1 and "http://u:***@127.0.0.1:1 unreachable" in human.stdout, human.stdout
    assert not _leaks(human.stdout + human.stderr), human.stdout
    env["TRACEWIRE_ENDPOINT"] = f"ftp://u:{SECRET}@h"  # refused at init: the error names the setting, not the password
    r = subprocess.run([sys.executable, "-c", "import tracewire; tracewire.init()"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode != 0 and "endpoint" in r.stderr
    assert not _leaks(r.stderr), r.stderr
