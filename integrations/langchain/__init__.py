"""LangChain / LangGraph integration: `callbacks=[TracewireCallbackHandler()]`.

    from tracewire.integrations.langchain import TracewireCallbackHandler
    graph.invoke(inputs, config={"callbacks": [TracewireCallbackHandler()]})

Nothing to install: LangChain calls the handlers it is given. The handler's options
(`session_id`, `user_id`, `tags`, `metadata`, `max_open_runs`, `run_ttl`) are on its class.
"""

from __future__ import annotations

from tracewire.adapters import require

# langchain-core 0.3.30: the oldest release the handler's imports are checked against.
SUPPORTED = "langchain-core>=0.3.30"  # the same requirement as in pyproject's extra

require("langchain_core.callbacks", "langchain", SUPPORTED)

from tracewire.integrations.langchain.hooks import TracewireCallbackHandler  # noqa: E402

__all__ = ["TracewireCallbackHandler"]
