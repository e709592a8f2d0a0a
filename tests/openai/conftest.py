"""Fixtures of the OpenAI SDK tests: the scripted server on 127.0.0.1, and the integration removed
after each test (no instrument(), no wrapped client, the SDK's methods as shipped)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tracewire.integrations.openai import uninstrument
from tracewire.integrations.openai.hooks import _patches, scope
from tracewire.testing.openai_server import OpenAIServer, Reply


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(default=Reply("ok")) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _uninstrumented() -> Iterator[None]:
    yield
    uninstrument()
    scope.clients.clear()
    _patches.revert()
