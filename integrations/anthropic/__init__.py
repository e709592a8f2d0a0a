"""Anthropic SDK integration: every Messages call of the `anthropic` client as an `llm` span.

    from tracewire.integrations.anthropic import instrument
    instrument()                      # every Anthropic / AsyncAnthropic client

or one client only:

    from tracewire.integrations.anthropic import wrap
    client = wrap(anthropic.Anthropic())

`messages.create` (sync, async, `stream=True`) and the `messages.stream()` helper are recorded:
the request's system prompt and messages, the assistant message with its tool_use blocks and
thinking, the stop reason, usage (cache reads and writes, thinking tokens), cost, latency, time to
first token for streams, the SDK's retries, and errors with their HTTP status.
"""

from __future__ import annotations

from tracewire.adapters import require

# 0.49: extended thinking (`thinking=`, thinking and signature deltas) and the cache usage fields.
SUPPORTED = "anthropic>=0.49"  # the same requirement as in pyproject's extra

require("anthropic", "anthropic", SUPPORTED)

from tracewire.integrations.anthropic.hooks import (  # noqa: E402
    AnthropicAdapter,
    instrument,
    uninstrument,
    wrap,
)

__all__ = ["instrument", "uninstrument", "wrap", "AnthropicAdapter"]
