"""LlamaIndex integration: a span handler and an event handler on the instrumentation dispatcher.

    from tracewire.integrations.llamaindex import instrument
    instrument()        # every query engine, retriever, LLM, embedding, tool, agent and workflow run

Or attach the handlers to a child dispatcher yourself:

    span_handler = TracewireSpanHandler()
    dispatcher.add_span_handler(span_handler)
    dispatcher.add_event_handler(TracewireEventHandler(span_handler=span_handler))

A handler sees only what is dispatched on its dispatcher and those below it: an LLM's span comes
from its class's module dispatcher, its events (stream chunks, the true end) from
`llama_index.core.llms.callbacks`.
"""

from __future__ import annotations

from tracewire.adapters import require

# 0.12.44: the first release depending on llama-index-workflows (`workflows.events`) with a bound
# that still resolves to an importable pair.
SUPPORTED = "llama-index-core>=0.12.44"  # the same requirement as in pyproject's extra

require("llama_index.core", "llamaindex", SUPPORTED)

from tracewire.integrations.llamaindex.hooks import (  # noqa: E402
    TracewireEventHandler,
    TracewireSpanHandler,
    instrument,
    uninstrument,
)

__all__ = ["instrument", "uninstrument", "TracewireSpanHandler", "TracewireEventHandler"]
