"""Resolve each integration extra the way a user gets it, unconstrained from the registry, and
prove the result works: the resolved framework versions lie inside the range each integration
declares (SUPPORTED in integrations/<name>/__init__.py), and every integration imports in a fresh
venv holding exactly that resolution plus the built wheel.

    python .ci/extras_check.py [EXTRA ...]       (default: every integration extra and `all`)

One line per extra: the resolved framework versions and the outcome. Exit 1 on any failure.
The venvs and the wheel live under build/extras-check, uv's cache in build/uv-cache, so a re-run
reuses the downloads. Run by `make extras-check`, which also exports the settings that keep the
frameworks offline and quiet while they are imported.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "extras-check"
# Extra -> the integrations it enables.
EXTRAS: dict[str, tuple[str, ...]] = {
    "langchain": ("langchain",),
    "litellm": ("litellm",),
    "crewai": ("crewai", "litellm"),
    "llamaindex": ("llamaindex",),
    "vertex": ("vertex",),
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    "all": ("langchain", "litellm", "crewai", "llamaindex", "vertex", "openai", "anthropic"),
}


def declared(integration: str) -> str:
    """SUPPORTED of integrations/<integration>/__init__.py, read without importing the framework."""
    tree = ast.parse((ROOT / "integrations" / integration / "__init__.py").read_text())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["SUPPORTED"]
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    raise SystemExit(f"integrations/{integration}/__init__.py declares no SUPPORTED string")


def shown_packages(extra: str) -> list[str]:
    """The packages an extra names itself (an extra naming other extras: theirs), for the summary."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    names: list[str] = []
    for integration in EXTRAS[extra]:
        names += [_canonical(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in extras[integration]]
    return list(dict.fromkeys(names))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def uv() -> list[str]:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise SystemExit("extras-check needs uv (make install puts it in the venv)")
    return [found]


def run(cmd: list[str], cwd: Path | None = None, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_CACHE_DIR": str(ROOT / "build" / "uv-cache")}
    env.pop("PYTHONPATH", None)  # the venv under test answers imports, not the checkout
    return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd, timeout=timeout)


def build_wheel() -> Path:
    dist = WORK / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    out = run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)])
    if out.returncode:
        raise SystemExit(f"building the wheel failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    (wheel,) = dist.glob("tracewire-*.whl")
    return wheel


def resolve(extra: str) -> dict[str, str]:
    """The extra's full resolution, unconstrained, for this interpreter: {name: version}."""
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    out = run([*uv(), "pip", "compile", str(ROOT / "pyproject.toml"), "--extra", extra, "--python-version", py,
               "--no-header", "--no-annotate", "--quiet"], cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"does not resolve: {out.stderr.strip()[-1500:]}")
    pins = dict(line.split("==", 1) for line in out.stdout.splitlines() if "==" in line and not line.startswith("#"))
    return {_canonical(name): version.split(";")[0].strip() for name, version in pins.items()}


def check(extra: str, wheel: Path) -> tuple[bool, str]:
    from tracewire.adapters.base import parse_requirement, version_in_range

    pins = resolve(extra)
    problems = []
    for integration in EXTRAS[extra]:
        requirement = declared(integration)
        name = _canonical(parse_requirement(requirement)[0])
        version = pins.get(name)
        if version is None:
            problems.append(f"{name} not resolved")
        elif not version_in_range(version, requirement):
            problems.append(f"{name} {version} outside {requirement}")
    summary = ", ".join(f"{name} {pins.get(name, '-')}" for name in shown_packages(extra))
    if problems:
        return False, f"{summary}: " + "; ".join(problems)

    venv = WORK / f"venv-{extra}"
    py = venv / "bin" / "python"
    if not py.exists():
        made = run([*uv(), "venv", "--quiet", "--python", sys.executable, str(venv)])
        if made.returncode:
            return False, f"{summary}: venv: {made.stderr.strip()[-500:]}"
    lock = WORK / f"{extra}.txt"
    lock.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    for cmd in ([*uv(), "pip", "sync", "--quiet", "--python", str(py), str(lock)],
                [*uv(), "pip", "install", "--quiet", "--no-deps", "--reinstall", "--python", str(py), str(wheel)]):
        out = run(cmd)
        if out.returncode:
            return False, f"{summary}: install failed: {out.stderr.strip()[-1500:]}"
    code = "; ".join(f"import tracewire.integrations.{i}" for i in EXTRAS[extra])
    out = run([str(py), "-c", code], cwd=WORK, timeout=600)
    if out.returncode:
        return False, f"{summary}: import failed: {out.stderr.strip().splitlines()[-1]}"
    return True, f"{summary}: {len(pins)} packages, imports ok"


def main(argv: list[str]) -> int:
    extras = argv or list(EXTRAS)
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise SystemExit(f"unknown extra(s) {unknown}; known: {', '.join(EXTRAS)}")
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    wheel = build_wheel()
    failed = 0
    for extra in extras:
        t0 = time.monotonic()
        try:
            ok, line = check(extra, wheel)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            ok, line = False, str(exc)
        failed += not ok
        print(f"extras-check [{extra}] {'ok' if ok else 'FAILED'} ({time.monotonic() - t0:.0f} s): {line}", flush=True)
    print(f"extras-check: {len(extras) - failed}/{len(extras)} extras ok in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
