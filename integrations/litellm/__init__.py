"""LiteLLM integration: every `completion`, `acompletion`, stream, `embedding` and failure as a span.

    import litellm
    from tracewire.integrations.litellm import TracewireLogger
    litellm.callbacks.append(TracewireLogger())
"""

from __future__ import annotations

from tracewire.adapters.base import require

require("litellm", "litellm")

from tracewire.integrations.litellm._logger import (  # noqa: E402
    CallOwner,
    TracewireLogger,
    add_call_owner,
    drain,
    remove_call_owner,
)

__all__ = ["TracewireLogger", "drain", "CallOwner", "add_call_owner", "remove_call_owner"]
