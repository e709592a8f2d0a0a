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

require("crewai", "crewai")

from tracewire.integrations.crewai.hooks import CrewAIAdapter, instrument, uninstrument  # noqa: E402

__all__ = ["instrument", "uninstrument", "CrewAIAdapter"]
