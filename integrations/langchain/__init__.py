"""LangChain / LangGraph integration: `callbacks=[TracewireCallbackHandler()]`.

    from tracewire.integrations.langchain import TracewireCallbackHandler
    graph.invoke(inputs, config={"callbacks": [TracewireCallbackHandler()]})

Nothing to install: LangChain calls the handlers it is given. The handler's options
(`session_id`, `user_id`, `tags`, `metadata`, `max_open_runs`, `run_ttl`) are on its class.
"""

from __future__ import annotations

from tracewire.adapters import require

require("langchain_core.callbacks", "langchain")

from tracewire.integrations.langchain.hooks import TracewireCallbackHandler  # noqa: E402

__all__ = ["TracewireCallbackHandler"]
