"""LangChain / LangGraph integration: `callbacks=[TracewireCallbackHandler()]`.

    from tracewire.integrations.langchain import TracewireCallbackHandler
    graph.invoke(inputs, config={"callbacks": [TracewireCallbackHandler()]})
"""

from __future__ import annotations

from tracewire.adapters.base import require

require("langchain_core.callbacks", "langchain")

from tracewire.integrations.langchain.handler import TracewireCallbackHandler  # noqa: E402

__all__ = ["TracewireCallbackHandler"]
