"""LangChain / LangGraph integration: `callbacks=[TracewireCallbackHandler()]`.

    from tracewire.integrations.langchain import TracewireCallbackHandler
    graph.invoke(inputs, config={"callbacks": [TracewireCallbackHandler()]})
"""

from __future__ import annotations

from tracewire._compat import require

require("langchain_core.callbacks", "langchain")

from .handler import TracewireCallbackHandler  # noqa: E402

__all__ = ["TracewireCallbackHandler"]
