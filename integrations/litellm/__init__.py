"""LiteLLM integration: every `completion`, `acompletion`, stream, `embedding` and failure as a span.

    import litellm
    from tracewire.integrations.litellm import TracewireLogger
    litellm.callbacks.append(TracewireLogger())

or, the same through the adapter (idempotent; `uninstrument()` removes it again):

    from tracewire.integrations.litellm import instrument
    instrument()

After a loop that ran `acompletion` ends, `await drain()` lets LiteLLM's async logging worker
report the last calls.
"""

from __future__ import annotations

from tracewire.adapters import require

# 1.80: the async logging worker's exit flush. From 1.106 LiteLLM needs mcp 2 on the tool-call
# path, which CrewAI (pinned to mcp<2) cannot install: its LiteLLM route breaks.
SUPPORTED = "litellm>=1.80,<1.106"  # the same requirement as in pyproject's extra

require("litellm", "litellm", SUPPORTED)

from tracewire.integrations.litellm.hooks import (  # noqa: E402
    CallOwner,
    LiteLLMAdapter,
    TracewireLogger,
    add_call_owner,
    drain,
    instrument,
    remove_call_owner,
    uninstrument,
)

__all__ = [
    "TracewireLogger", "drain", "instrument", "uninstrument", "LiteLLMAdapter",
    "CallOwner", "add_call_owner", "remove_call_owner",
]
