"""The `tracewire` command's answers when something is missing: one line saying what, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tracewire

# Runs the command with some modules made unimportable, as on an installation without their extra.
WITHOUT = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # `import name` now raises ModuleNotFoundError
from tracewire.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def _run(*args: str, tmp_path: Path, without: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    return subprocess.run([sys.executable, "-c", WITHOUT, without, *args], capture_output=True, text=True,
                          cwd=tmp_path, env={**base, **(env or {})}, timeout=60)


def test_version() -> None:
    out = subprocess.run([sys.executable, "-m", "tracewire.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"tracewire {tracewire.__version__}"


def test_serve_and_keys_without_the_server_extra_say_how_to_install_it(tmp_path: Path) -> None:
    for args in (["serve", "--port", "0"], ["keys", "create", "--project", "p"], ["keys", "list"]):
        out = _run(*args, tmp_path=tmp_path, without="uvicorn,fastapi,starlette")
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.strip() == "this command needs: pip install 'tracewire[server]'", (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_replay_exits_non_zero_when_nothing_could_be_delivered(tmp_path: Path) -> None:
    out = _run("replay", tmp_path=tmp_path)
    assert out.returncode == 1 and json.loads(out.stdout) == {"ok": False, "error": "no endpoint configured"}
    # its options stand in for the TRACEWIRE_* variables; a collector that is not there leaves events behind
    spool = tmp_path / "spool"
    tracewire.init(sink="http", endpoint="http://127.0.0.1:9", spool_dir=str(spool), durable=True)
    tracewire.record("log", name="kept")
    tracewire.shutdown(timeout=0.5)
    out = _run("replay", "--endpoint", "http://127.0.0.1:9", "--spool-dir", str(spool), tmp_path=tmp_path)
    report = json.loads(out.stdout)
    assert out.returncode == 1 and not report["ok"] and report["left_in_spool"] >= 1, report
