"""Recorded runs several suites read back: an agent whose LLM call has a model, tokens and cost,
and whose tool fails when asked to."""

from __future__ import annotations

from typing import Any

import tracewire
from tracewire.engine.span import CURRENT
from tracewire.model import attributes as A
from tracewire.model.genai import usage_attributes


def agent_run(name: str, model: str, tokens: tuple[int, int], cost: float, *, fail: bool = False,
              parent: Any = CURRENT) -> str:
    """agent > llm (model, usage) [> tool that times out]; returns the trace id."""
    with tracewire.span("agent", name, parent=parent) as agent:
        with tracewire.span("llm", "chat", attributes={A.REQUEST_MODEL: model}) as llm:
            llm.end(attributes=usage_attributes(*tokens, cost=cost))
        if fail:
            try:
                with tracewire.span("tool", "get_weather"):
                    raise TimeoutError("weather API timed out")
            except TimeoutError:
                pass
    return agent.trace_id
