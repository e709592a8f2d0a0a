"""LiteLLM integration: every `completion`, `acompletion`, stream, `embedding` and failure as a span.

    import litellm
    from tracewire.integrations.litellm import TracewireLogger
    litellm.callbacks.append(TracewireLogger())
"""

from __future__ import annotations

from tracewire._compat import require

require("litellm", "litellm")

from ._logger import CallOwner, TracewireLogger, add_call_owner, drain, remove_call_owner  # noqa: E402

__all__ = ["TracewireLogger", "drain", "CallOwner", "add_call_owner", "remove_call_owner"]
