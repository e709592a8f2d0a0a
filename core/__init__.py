"""tracewire: record what LLM agents do, from inside the frameworks you already use.

    import tracewire
    tracewire.init()                       # default: local SQLite under ./.tracewire/
    with tracewire.session(user_id="u1"):
        with tracewire.span("agent", "planner") as s:
            ...
"""

from __future__ import annotations

import threading
from typing import Any

from .client import Client, Span
from .config import Config, ConfigError
from .context import SpanContext
from .sinks.base import BaseSink, Batch, Sink, WriteResult
from .tracing import record, session, span, trace

__version__ = "0.1.0"

_client: Client | None = None
_init_lock = threading.Lock()
_init_kwargs: dict[str, Any] | None = None
_stopped = False  # after shutdown(), recording is a no-op until init() is called again


def init(**config: Any) -> Client:
    """Configure the process-wide client (idempotent). Keyword arguments override TRACEWIRE_*
    environment variables, which override defaults; a bad value raises ConfigError naming it.
    Called again with the same arguments it returns the same client; with other arguments it
    flushes and replaces it."""
    global _client, _init_kwargs, _stopped
    with _init_lock:
        _stopped = False
        if _client is not None and not _client._closed and _init_kwargs == config:
            return _client
        new = Client(Config.resolve(config))
        old, _client, _init_kwargs = _client, new, dict(config)
    if old is not None:
        old.shutdown(timeout=old.config.exit_flush_timeout)
    return new


def get_client() -> Client:
    """The current client, initialised from the environment on first use."""
    c = _client
    if c is None:
        return init() if not _stopped else _disabled_client()
    return c


_disabled: Client | None = None


def _disabled_client() -> Client:
    global _disabled
    if _disabled is None:
        _disabled = Client(Config.resolve({"disabled": True}))
    return _disabled


def flush(timeout: float | None = None) -> bool:
    """Block until everything recorded so far is written; False if the timeout passed first."""
    c = _client
    return True if c is None else c.flush(timeout)


def shutdown(timeout: float | None = 30.0) -> bool:
    """Flush and stop. Recording afterwards is a no-op until `init()` is called again."""
    global _client, _init_kwargs, _stopped
    with _init_lock:
        c, _client, _init_kwargs, _stopped = _client, None, None, True
    return True if c is None else c.shutdown(timeout)


def stats() -> dict[str, Any]:
    """Counters that balance: emitted == written + sum(dropped.values()) + pending."""
    c = _client
    if c is None:
        return {"emitted": 0, "written": 0, "dropped": {}, "pending": 0}
    return c.stats()


__all__ = [
    "init", "get_client", "flush", "shutdown", "stats", "session", "span", "trace", "record",
    "Client", "Span", "SpanContext", "Config", "ConfigError", "Sink", "BaseSink", "Batch", "WriteResult",
]
