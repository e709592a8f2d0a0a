"""OpenAI SDK integration: every chat completion, Responses call and embedding as a span.

    from tracewire.integrations.openai import instrument
    instrument()                      # every client in the process, sync and async

or one client only:

    from tracewire.integrations.openai import wrap
    client = wrap(OpenAI())

`uninstrument()` undoes `instrument()`. Options: `include_usage` (ask streams for their usage
chunk, hidden from callers that did not), `providers` (host -> gen_ai.provider.name).
"""

from __future__ import annotations

from tracewire.adapters import require

# 1.92: `chat.completions.parse` and `.stream` out of beta (the Responses API came in 1.66).
SUPPORTED = "openai>=1.92"  # the same requirement as in pyproject's extra

require("openai", "openai", SUPPORTED)

from tracewire.integrations.openai.hooks import OpenAIAdapter, instrument, uninstrument, wrap  # noqa: E402

__all__ = ["instrument", "uninstrument", "wrap", "OpenAIAdapter"]
