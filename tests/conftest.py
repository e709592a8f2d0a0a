"""Shared fixtures. Every test that uses the client gets the balance check of `stats()`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

# Frameworks that phone home stay quiet in tests (also set by the Makefile).
for _k, _v in {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True", "CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true", "ANONYMIZED_TELEMETRY": "False",
    "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1",
}.items():
    os.environ.setdefault(_k, _v)
# A test that runs in a temp folder must find its own store, never a stray /tmp/.tracewire above it.
os.environ.setdefault("TRACEWIRE_CEILING_DIRS", tempfile.gettempdir())

import tracewire  # noqa: E402
from tracewire.engine.client import _clients as live_clients  # noqa: E402  # every client not disabled at init
from tracewire.engine.stats import balanced  # noqa: E402
from tracewire.read.fold import SpanView, fold, tree  # noqa: E402
from tracewire.sinks.memory import MemorySink  # noqa: E402


class Recorder:
    """A memory-sink client plus helpers to read back what was recorded."""

    def __init__(self, client: tracewire.Client, sink: MemorySink) -> None:
        self.client = client
        self.sink = sink

    def events(self) -> list[dict[str, Any]]:
        assert self.client.flush(10), "flush timed out"
        return self.sink.events

    def spans(self) -> list[SpanView]:
        return fold(self.events())

    def tree(self) -> list[SpanView]:
        return tree(self.events())


def shape(node: SpanView) -> tuple[Any, ...]:
    """(kind, name, [children...]) — what exact-tree assertions compare."""
    return (node.kind, node.name, [shape(c) for c in node.children])


@pytest.fixture
def recorder(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    monkeypatch.chdir(tmp_path)
    sink = MemorySink()
    client = tracewire.init(sink=[sink], flush_interval=0.01)
    try:
        yield Recorder(client, sink)
    finally:
        assert client.flush(10)
        s = client.stats()
        tracewire.shutdown()
        assert balanced(s), s
        assert not s["internal_errors"], s


@pytest.fixture(autouse=True)
def _stats_balance() -> Iterator[None]:
    """Every client a test created (shut down by the test or not, replaced by a later `init()` or
    not) must have counters that balance when the test ends."""
    before = set(live_clients)
    yield
    if tracewire.engine.state.client is not None:
        tracewire.engine.state.client.flush(10)
        tracewire.shutdown()
    for c in [c for c in live_clients if c not in before]:
        if not c.disabled:
            c.flush(10)
        s = c.stats()
        assert balanced(s), s
