"""Fixtures for the LlamaIndex adapter: real llama-index-core, mock models at the edge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_index.core import Settings
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM

from tracewire.integrations.llamaindex import TracewireSpanHandler, instrument, uninstrument


@pytest.fixture
def handler() -> Iterator[TracewireSpanHandler]:
    """The adapter attached to the root dispatcher for one test, with mock global models."""
    old_llm, old_embed = Settings._llm, Settings._embed_model
    Settings.embed_model = MockEmbedding(embed_dim=8)
    Settings.llm = MockLLM()
    h = instrument()
    try:
        yield h
    finally:
        uninstrument()
        Settings._llm, Settings._embed_model = old_llm, old_embed
