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

require("litellm", "litellm")

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
