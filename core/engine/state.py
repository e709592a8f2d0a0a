"""The process-wide client, kept in a module of its own so the hot-path wrappers reach it with
one attribute lookup (no import machinery per call)."""

from __future__ import annotations

import threading
from typing import Any

from tracewire.config import Config
from tracewire.engine.client import Client

client: Client | None = None
init_kwargs: dict[str, Any] | None = None
stopped = False  # after shutdown(), recording is a no-op until init() is called again
lock = threading.Lock()
_disabled: Client | None = None


def get_client() -> Client:
    c = client
    if c is not None:
        return c
    if stopped:
        return disabled_client()
    return init()


def disabled_client() -> Client:
    global _disabled
    if _disabled is None:
        _disabled = Client(Config.resolve({"disabled": True}))
    return _disabled


def init(**config: Any) -> Client:
    """Configure the process-wide client (idempotent). Keyword arguments override TRACEWIRE_*
    environment variables, which override defaults; a bad value raises ConfigError naming it.
    Called again with the same arguments it returns the same client; with other arguments it
    flushes and replaces it."""
    global client, init_kwargs, stopped
    with lock:
        stopped = False
        current = client
        if current is not None and not current._closed and init_kwargs == config:
            return current
        new = Client(Config.resolve(config))
        client, init_kwargs = new, dict(config)
    if current is not None:
        current.shutdown(timeout=current.config.exit_flush_timeout)
    return new
