"""Fixtures of the score tests: a local store per test, and the collector and OTLP receiver fixtures of
the server and otel tests (the same running processes' harnesses, reused)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracewire

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))  # that conftest imports its harness by name
from tests.otel.conftest import _otel_sdk_enabled, phoenix  # noqa: E402,F401
from tests.server.conftest import collector, key, pg_admin_dsn  # noqa: E402,F401


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh local store that `init()` and the CLI both use (TRACEWIRE_DB)."""
    path = str(tmp_path / "store.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACEWIRE_DB", path)
    yield path
    tracewire.shutdown()
