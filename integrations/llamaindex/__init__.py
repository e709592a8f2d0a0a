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

import threading

from tracewire.adapters.base import require

require("llama_index.core", "llamaindex")

from llama_index.core.instrumentation import get_dispatcher  # noqa: E402

from tracewire.integrations.llamaindex.handlers import TracewireEventHandler, TracewireSpanHandler  # noqa: E402

_lock = threading.Lock()
_installed: tuple[TracewireSpanHandler, TracewireEventHandler] | None = None


def instrument(*, max_open_spans: int = 10_000, span_ttl: float = 3600.0) -> TracewireSpanHandler:
    """Attach tracewire's handlers to LlamaIndex's root dispatcher. Idempotent: calling it again
    returns the handler already attached, so every span is recorded once (the options apply when
    the handlers are first attached).

    A span LlamaIndex never closes is closed as unfinished when more than `max_open_spans` are
    open (oldest first) or after `span_ttl` seconds, so its state is not kept forever."""
    global _installed
    with _lock:
        if _installed is None:
            span_handler = TracewireSpanHandler(max_open_spans=max_open_spans, span_ttl=span_ttl)
            event_handler = TracewireEventHandler(span_handler=span_handler)
            root = get_dispatcher()
            root.add_span_handler(span_handler)
            root.add_event_handler(event_handler)
            _installed = (span_handler, event_handler)
        return _installed[0]


def uninstrument() -> None:
    """Detach the handlers; spans still open are closed as unfinished. Nothing is recorded after."""
    global _installed
    with _lock:
        if _installed is None:
            return
        span_handler, event_handler = _installed
        _installed = None
        root = get_dispatcher()
        # new lists rather than in-place removal: the dispatcher may be iterating the old ones
        root.span_handlers = [h for h in root.span_handlers if h is not span_handler]
        root.event_handlers = [h for h in root.event_handlers if h is not event_handler]
    span_handler.close()


__all__ = ["instrument", "uninstrument", "TracewireSpanHandler", "TracewireEventHandler"]
