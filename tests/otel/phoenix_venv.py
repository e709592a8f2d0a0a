"""Create (idempotently) the virtualenv holding Arize Phoenix, the real OTLP receiver of the
otel tests. Phoenix's dependencies conflict with tracewire's pins, so it gets its own venv,
installed from the lock file beside this script. Run by `make phoenix-venv` and by the tests.

    python tests/otel/phoenix_venv.py      # prints the path of the `phoenix` executable
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("phoenix-requirements.txt")
VENV = Path(os.environ.get("TRACEWIRE_PHOENIX_VENV") or ROOT / ".venv-phoenix")


def _digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def phoenix_executable() -> Path:
    return VENV / "bin" / "phoenix"


def ensure() -> Path:
    """The `phoenix` executable, installing the venv first if it is missing or out of date."""
    stamp = VENV / ".installed"
    exe = phoenix_executable()
    if exe.exists() and stamp.exists() and stamp.read_text().strip() == _digest():
        return exe
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(str(VENV) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once install it once
        if exe.exists() and stamp.exists() and stamp.read_text().strip() == _digest():
            return exe
        python = VENV / "bin" / "python"
        if not python.exists():
            base = getattr(sys, "_base_executable", None) or sys.executable
            subprocess.run([base, "-m", "venv", str(VENV)], check=True)
        uv = Path(sys.executable).with_name("uv")
        uv_path = str(uv) if uv.exists() else shutil.which("uv")
        # --compile-bytecode: with PYTHONDONTWRITEBYTECODE set, Phoenix would otherwise start
        # from source every time (~35 s instead of ~14 s).
        if uv_path:
            cmd = [uv_path, "pip", "install", "--python", str(python), "--compile-bytecode", "-r", str(REQUIREMENTS)]
            subprocess.run(cmd, check=True)
        else:
            subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True)
            subprocess.run([str(python), "-m", "compileall", "-q", str(VENV / "lib")], check=False)
        stamp.write_text(_digest() + "\n")
    return exe


if __name__ == "__main__":
    print(ensure())
