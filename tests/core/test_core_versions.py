"""Each integration's supported framework range: the same in pyproject's extra and in the
integration's SUPPORTED, and a version outside it refused at import in words."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from tracewire.adapters.base import parse_requirement, version_in_range

ROOT = Path(__file__).resolve().parents[2]
INTEGRATIONS = ("langchain", "litellm", "crewai", "llamaindex", "vertex", "openai", "anthropic")

# The integrations' SUPPORTED, read as CI's extras check reads it (without importing a framework).
_spec = importlib.util.spec_from_file_location("extras_check", ROOT / ".ci" / "extras_check.py")
assert _spec is not None and _spec.loader is not None
extras_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(extras_check)
declared = extras_check.declared


def extras() -> dict[str, list[str]]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_the_extra_holds_the_integrations_declared_range(integration: str) -> None:
    assert declared(integration) in extras()[integration]


def test_the_extras_check_covers_every_integration() -> None:
    assert set(extras_check.EXTRAS) == {*INTEGRATIONS, "all"}
    assert set(extras_check.EXTRAS["all"]) == set(INTEGRATIONS)
    assert set(INTEGRATIONS) <= set(extras()["all"][0].removeprefix("tracewire[").removesuffix("]").split(","))


def test_no_extra_allows_a_framework_version_its_integration_refuses() -> None:
    ranges = dict(parse_requirement(declared(i)) for i in INTEGRATIONS)
    for extra, requirements in extras().items():
        for requirement in requirements:
            if requirement.startswith("tracewire["):
                continue
            name = requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
            if name not in ranges:
                continue
            bounds = dict(parse_requirement(requirement)[1])
            allowed = dict(ranges[name])
            if ">=" in allowed:
                assert bounds.get(">=", ()) >= allowed[">="], (extra, requirement)
            if "<" in allowed:
                assert "<" in bounds and bounds["<"] <= allowed["<"], (extra, requirement)


@pytest.mark.parametrize(("version", "inside"), [
    ("1.9", True), ("1.9.0", True), ("1.10.0", True), ("1.105.3", True), ("1.9.0.post1", True),
    ("1.10.0+cpu", True), ("1.10.0rc1", True), ("v1.20", True), ("1!1.9", True),
    ("1.8.1", False), ("1.9.0rc1", False), ("1.9.0.dev3", False), ("1.9.0b2", False),
    ("1.106", False), ("1.106.0rc1", False), ("1.106.0+local", False), ("2", False), ("0.203.2", False),
])
def test_version_in_range_compares_release_numbers(version: str, inside: bool) -> None:
    assert version_in_range(version, "x>=1.9,<1.106") is inside


def test_a_version_without_release_number_is_not_judged() -> None:
    assert version_in_range("unknown", "x>=1.9")


@pytest.mark.parametrize("bad", ["crewai", "crewai==1.9", "crewai>=1.9;python_version<'3.14'", ">=1.9"])
def test_a_range_in_another_form_is_refused(bad: str) -> None:
    if bad == "crewai":  # a bare name is a valid declaration: no bounds
        assert parse_requirement(bad) == ("crewai", [])
        return
    with pytest.raises(ValueError, match="expected 'name>=X,<Y'"):
        parse_requirement(bad)


@pytest.mark.parametrize(("integration", "dist", "old"), [
    ("crewai", "crewai", "1.6.1"),
    ("litellm", "litellm", "1.110.2"),
    ("llamaindex", "llama_index_core", "0.12.30"),
])
def test_importing_an_integration_over_an_unsupported_version_names_version_range_and_extra(
        tmp_path: Path, integration: str, dist: str, old: str) -> None:
    # The installed framework stays; only its metadata says another release, found first on the path.
    info = tmp_path / f"{dist}-{old}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: {old}\n")
    path = [str(tmp_path), *sys.path]
    code = (f"import sys; sys.path[:0] = {path!r}\n"
            f"import tracewire.integrations.{integration}")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("tracewire.adapters.base.DidNotEnable: "), last
    assert f" {old}:" in last and declared(integration).replace(",", ", ") in last, last
    assert f"pip install 'tracewire[{integration}]'" in last, last
    assert not any(m in out.stderr for m in ("crewai.events", "litellm.integrations", "llama_index.core.instrumentation")), \
        "the framework was imported before its version was checked"
