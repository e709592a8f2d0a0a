"""Fixtures of the reliability suite: one real collector per session, a fault proxy per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from rel_harness import Collector, FaultProxy  # noqa: E402


@pytest.fixture(scope="session")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    c = Collector(tmp_path_factory.mktemp("collector"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def proxy(collector: Collector) -> Iterator[FaultProxy]:
    p = FaultProxy(collector.port)
    try:
        yield p
    finally:
        p.close()
