"""The documentation site builds under `--strict`, with nothing loaded from a CDN, and the strict
build really refuses a broken link."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build(config: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(out)],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})  # its banner is not a warning of ours


def test_the_site_builds_strict_with_every_page(tmp_path: Path) -> None:
    run = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert run.returncode == 0, run.stderr
    site = tmp_path / "site"
    for page in ("index.html", "quickstart/index.html", "configuration/index.html", "cli/index.html",
                 "collector/index.html", "delivery/index.html", "opentelemetry/index.html", "security/index.html",
                 "performance/index.html", "architecture/index.html", "integrations/langchain/index.html",
                 "integrations/litellm/index.html", "integrations/crewai/index.html",
                 "integrations/llamaindex/index.html", "integrations/vertex/index.html",
                 "integrations/openai/index.html", "integrations/anthropic/index.html", "pricing/index.html",
                 "viewer/index.html", "scores/index.html", "experiments/index.html"):
        assert (site / page).is_file(), page
    assert "TRACEWIRE_SAMPLE_RATE" in (site / "configuration/index.html").read_text()
    html = "".join(p.read_text() for p in site.rglob("*.html"))
    assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html


def test_the_strict_build_refuses_a_link_to_a_missing_anchor(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", project / "docs")
    with (project / "docs" / "index.md").open("a") as f:
        f.write("\nSee [the setting](configuration.md#no-such-heading).\n")
    run = build(project / "mkdocs.yml", tmp_path / "site")
    assert run.returncode != 0
    assert "no-such-heading" in run.stderr
