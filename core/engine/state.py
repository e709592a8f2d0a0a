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
    from tracewire import init

    return init()


def disabled_client() -> Client:
    global _disabled
    if _disabled is None:
        _disabled = Client(Config.resolve({"disabled": True}))
    return _disabled
