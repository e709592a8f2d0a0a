"""Fixtures of the core tests: `cli` runs the `tracewire` command in this process."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """`cli("show", "--last", db=PATH)`: exit code, stdout and stderr of `tracewire.cli.main.main`."""
    from tracewire.cli.main import main

    def run(*args: str, db: str | None = None) -> CliResult:
        capsys.readouterr()  # what came before is not this command's
        code = main([*args, *(["--db", db] if db else [])])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
