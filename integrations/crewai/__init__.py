"""CrewAI integration: `instrument()` records whole crews.

    from tracewire.integrations.crewai import instrument
    instrument()
    crew.kickoff()

A listener on CrewAI's event bus maps crew kickoff -> `agent` (the root), task -> `chain`, agent
execution -> `agent`, LLM call -> `llm`, tool usage -> `tool`. When LiteLLM is installed the
LiteLLM logger is attached too, in the callback lists CrewAI does not reset, so calls on CrewAI's
LiteLLM route also get LiteLLM's usage and cost, still as one span per request.
`uninstrument()` removes all of it.
"""

from __future__ import annotations

from tracewire.adapters import require

# crewai.events.event_context (the event id stack) appeared in 1.9.
SUPPORTED = "crewai>=1.9"  # the same requirement as in pyproject's extra

require("crewai", "crewai", SUPPORTED)

from tracewire.integrations.crewai.hooks import CrewAIAdapter, instrument, uninstrument  # noqa: E402

__all__ = ["instrument", "uninstrument", "CrewAIAdapter"]
