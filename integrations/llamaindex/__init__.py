"""LlamaIndex integration: a span handler and an event handler on the instrumentation dispatcher.

    from tracewire.integrations.llamaindex import instrument
    instrument()        # every query engine, retriever, LLM, embedding, tool, agent and workflow run

Or attach the handlers to a child dispatcher yourself:

    span_handler = TracewireSpanHandler()
    dispatcher.add_span_handler(span_handler)
    dispatcher.add_event_handler(TracewireEventHandler(span_handler=span_handler))
"""

from __future__ import annotations

import threading

from tracewire._compat import require

require("llama_index.core", "llamaindex")

from llama_index.core.instrumentation import get_dispatcher  # noqa: E402

from .handlers import TracewireEventHandler, TracewireSpanHandler  # noqa: E402

_lock = threading.Lock()
_installed: tuple[TracewireSpanHandler, TracewireEventHandler] | None = None


def instrument() -> TracewireSpanHandler:
    """Attach tracewire's handlers to LlamaIndex's root dispatcher. Idempotent: calling it again
    returns the handler already attached, so every span is recorded once."""
    global _installed
    with _lock:
        if _installed is None:
            span_handler = TracewireSpanHandler()
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
