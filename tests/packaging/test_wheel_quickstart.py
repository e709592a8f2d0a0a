"""README's "LangChain in 60 seconds", run as a user runs it: the built wheel with the `[langchain]`
extra, unconstrained, in a fresh venv (in place of the block's `pip install`, the package not being on
PyPI when this runs), `agent.py` as written, then the shell block's commands verbatim with the
venv's bin first on PATH. `tracewire show --last` must show the prompt, the tool's arguments and
the tool's result.

The block is the one between `<!-- quickstart-60s -->` and `<!-- /quickstart-60s -->` in README.md
(TRACEWIRE_README names another file holding such a block). uv's cache is build/uv-cache.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
START, END = "<!-- quickstart-60s -->", "<!-- /quickstart-60s -->"
INSTALL = "pip install 'tracewire[langchain]'"
COMMANDS = ["python agent.py", "tracewire traces", "tracewire show --last"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def quickstart_blocks(readme: Path) -> tuple[str, str, str]:
    """The three fenced blocks of the quickstart section, checked against the README contract."""
    text = readme.read_text(encoding="utf-8")
    lines = text.splitlines()
    if START not in lines or END not in lines:
        pytest.fail(f"{readme}: the quickstart markers are missing: a line {START!r} and a line {END!r} "
                    f"must enclose the 'LangChain in 60 seconds' blocks")
    section = "\n".join(lines[lines.index(START) + 1:lines.index(END)]) + "\n"
    blocks = FENCE.findall(section)
    assert [lang for lang, _ in blocks] == ["bash", "python", "bash"], \
        f"{readme}: the quickstart section must hold exactly a bash, a python and a bash block, found {blocks!r}"
    (_, install), (_, agent), (_, shell) = blocks
    commands = [ln.strip() for ln in install.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert commands == [INSTALL], f"the first block's only command must be {INSTALL!r}, found {commands}"
    assert agent.splitlines()[0].strip() == "# agent.py", "the python block must start with '# agent.py'"
    assert [ln.strip() for ln in shell.splitlines() if ln.strip()] == COMMANDS, \
        f"the last block must be exactly {COMMANDS}"
    return install, agent, shell


def expectations(agent: str) -> tuple[str, dict[str, Any], str]:
    """From agent.py's source: the user's prompt, the scripted tool call's arguments, and what the
    tool returns for them (its function run on those arguments, without the @tool decorator)."""
    tree = ast.parse(agent)
    prompts = [n.elts[1].value for n in ast.walk(tree)
               if isinstance(n, ast.Tuple) and len(n.elts) == 2
               and all(isinstance(e, ast.Constant) for e in n.elts) and n.elts[0].value == "user"]
    calls = [ast.literal_eval(n) for n in ast.walk(tree) if isinstance(n, ast.Dict)
             and {"name", "args"} <= {k.value for k in n.keys if isinstance(k, ast.Constant)}]
    tools = [n for n in tree.body if isinstance(n, ast.FunctionDef)
             and any(getattr(d, "id", None) == "tool" for d in n.decorator_list)]
    assert len(prompts) == 1 and len(calls) == 1 and len(tools) == 1, \
        f"agent.py needs one ('user', prompt), one scripted tool call and one @tool: {prompts}, {calls}, {tools}"
    (tool_def,) = tools
    tool_def.decorator_list = []
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module([tool_def], []), "agent.py", "exec"), namespace)  # noqa: S102
    return prompts[0], calls[0]["args"], namespace[tool_def.name](**calls[0]["args"])


def build_wheel(dist: Path) -> Path:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (built,) = dist.glob("tracewire-*.whl")
    return built


def user_env(venv: Path) -> dict[str, str]:
    """The environment of a user's shell with the venv activated: none of this checkout's settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRACEWIRE_", "PYTHON", "VIRTUAL_ENV", "UV_"))}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PYTHONDONTWRITEBYTECODE="1", UV_CACHE_DIR=str(ROOT / "build" / "uv-cache"))
    return env


def test_the_readme_quickstart_runs_from_the_wheel_in_a_fresh_venv(tmp_path: Path) -> None:
    _, agent, shell = quickstart_blocks(Path(os.environ.get("TRACEWIRE_README", ROOT / "README.md")))
    prompt, args, result = expectations(agent)
    wheel = build_wheel(tmp_path / "dist")

    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is needed to make the fresh venv (make install puts it in the venv)"
    venv = tmp_path / "venv"
    env = user_env(venv)
    for cmd in ([uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), f"{wheel}[langchain]"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{cmd}: {done.stderr}"

    home = tmp_path / "quickstart"
    home.mkdir()
    (home / "agent.py").write_text(agent, encoding="utf-8")
    outputs = {}
    for line in [ln.strip() for ln in shell.splitlines() if ln.strip()]:
        done = subprocess.run(["bash", "-c", line], cwd=home, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{line!r} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        outputs[line] = done.stdout
    assert shutil.which("tracewire", path=env["PATH"]) == str(venv / "bin" / "tracewire")

    assert outputs["tracewire traces"].strip(), "`tracewire traces` listed nothing"
    shown = " ".join(outputs["tracewire show --last"].split())
    wanted = [("the prompt", prompt), ("the tool result", result),
              *((f"the tool argument {name}={value!r}", text) for name, value in args.items() for text in (name, str(value)))]
    for what, text in wanted:
        forms = {" ".join(str(text).split()), json.dumps(str(text))[1:-1]}  # as printed, or JSON-escaped
        assert any(form in shown for form in forms), f"{what} ({text!r}) is not in `tracewire show --last`:\n{shown}"
