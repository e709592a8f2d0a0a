"""Fixtures of the Anthropic tests: the scripted Messages API server, and the integration installed
for every client (undone after each test, with any client a test wrapped)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tracewire.integrations.anthropic import hooks, instrument, uninstrument
from tracewire.testing.anthropic_server import AnthropicServer


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as srv:
        yield srv


@pytest.fixture
def instrumented() -> Iterator[None]:
    instrument()
    yield
    uninstrument()


@pytest.fixture(autouse=True)
def _nothing_left_patched() -> Iterator[None]:
    yield
    uninstrument()
    hooks._scope.clients.clear()
    hooks._patches.revert()
