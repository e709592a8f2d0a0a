"""Every python block of the quickstart and the integration pages, and the README's 60-second
agent, runs as written: offline, in a process of its own, and records a trace."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
OFFLINE = {  # as the Makefile exports them: no framework phones home
    "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OTEL_SDK_DISABLED": "true", "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false", "CREWAI_DISABLE_VERSION_CHECK": "true", "ANONYMIZED_TELEMETRY": "False",
    "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "GRPC_VERBOSITY": "ERROR",
}


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def doc_blocks() -> list[Any]:
    pages = [DOCS / "quickstart.md", *sorted((DOCS / "integrations").glob("*.md"))]
    found = []
    for page in pages:
        python = [code for lang, code in blocks(page.read_text()) if lang == "python"]
        for i, code in enumerate(python):
            name = f"{page.relative_to(DOCS).with_suffix('')}-{i + 1}"
            found.append(pytest.param(code, id=name))
    return found


def run_block(code: str, tmp_path: Path) -> list[dict[str, Any]]:
    """Run `code` as a script in `tmp_path` with the store there; the events it recorded."""
    (tmp_path / "snippet.py").write_text(code)
    db = tmp_path / "store" / "tracewire.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    # HOME: CrewAI keeps its local state there
    env.update(OFFLINE, TRACEWIRE_DB=str(db), HOME=str(tmp_path))
    run = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, f"the block failed:\n{run.stdout}\n{run.stderr}"
    export = subprocess.run([sys.executable, "-m", "tracewire.cli", "export", "--db", str(db)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
    assert export.returncode == 0, export.stderr
    return [json.loads(line) for line in export.stdout.splitlines() if line.strip()]


def test_the_pages_hold_python_blocks() -> None:
    names = {p.id.rsplit("-", 1)[0] for p in doc_blocks()}
    assert names == {"quickstart", "integrations/langchain", "integrations/litellm", "integrations/crewai",
                     "integrations/llamaindex", "integrations/vertex", "integrations/openai",
                     "integrations/anthropic"}


@pytest.mark.parametrize("code", doc_blocks())
def test_a_doc_block_runs_offline_and_records_a_trace(code: str, tmp_path: Path) -> None:
    events = run_block(code, tmp_path)
    assert events, "the block recorded nothing"
    assert all(e["schema"] == 1 and e["trace_id"] for e in events)
    assert any(e["phase"] in ("end", "point") for e in events)


def readme_quickstart() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- quickstart-60s -->\n", 1)[1].split("<!-- /quickstart-60s -->", 1)[0]
    return blocks(section)


def test_the_readme_is_an_entry_point_with_the_60_second_block() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
    (lang1, install), (lang2, agent), (lang3, commands) = readme_quickstart()
    assert (lang1, lang2, lang3) == ("bash", "python", "bash")
    assert [ln for ln in install.splitlines() if ln.strip() and not ln.lstrip().startswith("#")] == [
        "pip install 'tracewire[langchain]'"]
    assert agent.splitlines()[0] == "# agent.py" and len(agent.splitlines()) <= 30
    assert "create_agent" in agent and "GenericFakeChatModel" in agent
    marked = [ln for ln in agent.splitlines() if "# tracewire" in ln]
    assert any("tracewire.init()" in ln for ln in marked)
    assert any("TracewireCallbackHandler()" in ln and "callbacks" in ln for ln in marked)
    assert any(ln.startswith(("import tracewire", "from tracewire")) for ln in marked)
    assert commands.splitlines() == ["python agent.py", "tracewire traces", "tracewire show --last"]


def test_the_readme_agent_records_prompt_tool_call_and_result(tmp_path: Path) -> None:
    agent = readme_quickstart()[1][1]
    events = run_block(agent, tmp_path)
    text = json.dumps(events, ensure_ascii=False)
    assert "What is the weather in Oslo?" in text
    tool_start = next(e for e in events if e["type"] == "tool.start")
    assert tool_start["name"] == "get_weather" and "Oslo" in json.dumps(tool_start["input"])
    tool_end = next(e for e in events if e["type"] == "tool.end")
    assert "light snow, -3°C in Oslo" in json.dumps(tool_end["output"], ensure_ascii=False)
