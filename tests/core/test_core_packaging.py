"""Import hygiene and the built wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_tracewire_imports_no_framework() -> None:
    code = ("import tracewire, sys; bad = {m for m in sys.modules if m.split('.')[0] in "
            "('langchain_core','litellm','crewai','llama_index','google','opentelemetry','fastapi','requests')}; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_built_wheel_imports_and_holds_every_package(tmp_path) -> None:  # type: ignore[no-untyped-def]
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("tracewire-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for pkg in ("tracewire/__init__.py", "tracewire/sinks/sqlite.py", "tracewire/cli/main.py", "tracewire/py.typed",
                *(f"tracewire/integrations/{fw}/__init__.py" for fw in ("langchain", "litellm", "crewai", "vertex", "llamaindex"))):
        assert pkg in names, pkg
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # -S: no site-packages, so the editable install cannot answer instead of the wheel
    out = subprocess.run([sys.executable, "-S", "-c", "import tracewire, tracewire.cli.main; print(tracewire.__file__)"],
                         env={"PYTHONPATH": str(site)}, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == str(site / "tracewire" / "__init__.py")
    assert any(n.endswith("entry_points.txt") for n in names)
