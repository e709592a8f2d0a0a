"""CrewAI integration: `instrument()` records whole crews.

    from tracewire.integrations.crewai import instrument
    instrument()
    crew.kickoff()

A listener on CrewAI's event bus maps crew kickoff -> `agent` (the root), task -> `chain`, agent
execution -> `agent`, LLM call -> `llm`, tool usage -> `tool`. When LiteLLM is installed the
LiteLLM logger is attached too, in the callback lists CrewAI does not reset, so calls on CrewAI's
LiteLLM route also get LiteLLM's usage and cost, still as one span per request.
"""

from __future__ import annotations

import threading
from typing import Any

from tracewire.adapters.base import require
from tracewire.model.context import parent_resolvers

require("crewai", "crewai")

from tracewire.integrations.crewai._handlers import TracewireListener  # noqa: E402
from tracewire.integrations.crewai._listener import Tracker  # noqa: E402

__all__ = ["instrument", "uninstrument"]

# LiteLLM's callback lists CrewAI leaves alone (it resets `litellm.callbacks` on every call).
_LITELLM_LISTS = ("input_callback", "success_callback", "failure_callback",
                  "_async_success_callback", "_async_failure_callback")
_lock = threading.Lock()
_installed: dict[str, Any] = {}


def instrument(*, litellm: bool = True) -> None:
    """Start recording CrewAI runs (idempotent). `litellm=False`: do not attach the LiteLLM logger."""
    with _lock:
        if _installed:
            return
        tracker = Tracker()
        listener = TracewireListener(tracker)
        parent_resolvers.append(tracker.resolve)
        _installed.update(tracker=tracker, listener=listener)
        if litellm:
            _attach_litellm(tracker)


def uninstrument() -> None:
    """Remove everything `instrument()` added; spans still open are closed as unfinished."""
    with _lock:
        if not _installed:
            return
        from crewai.events import crewai_event_bus

        tracker: Tracker = _installed["tracker"]
        _installed["listener"].remove(crewai_event_bus)
        if tracker.resolve in parent_resolvers:
            parent_resolvers.remove(tracker.resolve)
        logger = _installed.get("logger")
        if logger is not None:
            import litellm

            from tracewire.integrations.litellm import remove_call_owner

            for name in (*_LITELLM_LISTS, "callbacks"):
                cbs = getattr(litellm, name, None)
                if isinstance(cbs, list):
                    cbs[:] = [c for c in cbs if c is not logger]
            remove_call_owner(tracker)
        tracker.close_all()
        _installed.clear()


def _attach_litellm(tracker: Tracker) -> None:
    try:
        import litellm
    except ImportError:
        return
    from tracewire.integrations.litellm import TracewireLogger, add_call_owner

    logger = TracewireLogger()
    for name in _LITELLM_LISTS:
        cbs = getattr(litellm, name, None)
        if isinstance(cbs, list) and logger not in cbs:
            cbs.append(logger)
    add_call_owner(tracker)
    _installed["logger"] = logger
