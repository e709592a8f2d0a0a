"""tracewire: record what LLM agents do, from inside the frameworks you already use.

    import tracewire
    tracewire.init()                       # default: local SQLite in the nearest .tracewire/
    with tracewire.session(user_id="u1"):
        with tracewire.span("agent", "planner") as s:
            ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tracewire.config import Config, ConfigError
from tracewire.engine import state as _state
from tracewire.engine.client import Client, Span
from tracewire.model.context import SpanContext
from tracewire.model.score import Score
from tracewire.sinks.base import BaseSink, Batch, Sink, WriteResult
from tracewire.tracing import record, score, session, span, trace
from tracewire.version import __version__ as __version__

if TYPE_CHECKING:
    from tracewire.experiments import dataset, experiment
    from tracewire.ui.notebook import show_trace

init = _state.init
# Loaded on first use: `import tracewire` stays small (no SQLite, no CSV, no viewer) for an app that
# only records.
_LAZY = {"dataset": "tracewire.experiments", "experiment": "tracewire.experiments",
         "show_trace": "tracewire.ui.notebook"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracewire' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def get_client() -> Client:
    """The current client, initialised from the environment on first use."""
    return _state.client or _state.get_client()


def flush(timeout: float | None = None) -> bool:
    """Block until everything recorded so far is written. False if the timeout passed first, or
    if events were lost while it waited (a sink gave up on them; `stats()["dropped"]` says why)."""
    c = _state.client
    return True if c is None else c.flush(timeout)


def shutdown(timeout: float | None = 30.0) -> bool:
    """Flush and stop. Recording afterwards is a no-op until `init()` is called again."""
    with _state.lock:
        c, _state.client, _state.init_kwargs, _state.stopped = _state.client, None, None, True
    return True if c is None else c.shutdown(timeout)


def stats() -> dict[str, Any]:
    """Counters that balance: emitted == written + sum(dropped.values()) + pending."""
    c = _state.client
    if c is None:
        return {"emitted": 0, "written": 0, "dropped": {}, "pending": 0}
    return c.stats()


__all__ = [
    "init", "get_client", "flush", "shutdown", "stats", "session", "span", "trace", "record", "score", "Score",
    "dataset", "experiment",
    "Client", "Span", "SpanContext", "Config", "ConfigError", "Sink", "BaseSink", "Batch", "WriteResult",
    "show_trace",
]
