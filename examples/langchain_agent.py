"""A LangChain tool-calling agent (`langchain.agents.create_agent`), recorded by passing one
callback handler. Offline: a scripted chat model stands in at the model boundary.

    python examples/langchain_agent.py          # runs the agent twice, prints the recorded tree
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

import tracewire
from tracewire.cli.main import main as tracewire_cli
from tracewire.integrations.langchain import TracewireCallbackHandler

tracewire.init()  # default sink: SQLite at $TRACEWIRE_DB or ./.tracewire/tracewire.db


class ChatScripted(BaseChatModel):
    """Asks for the weather tool first, then answers from its result — like a real model would,
    with token usage and a dated model name in the response."""

    model_name: str = "gpt-4o-mini"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ChatScripted:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        last = messages[-1]
        if last.type == "human":
            city = str(last.content).rstrip("?").rsplit(" ", 1)[-1]
            msg = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": city}, "id": f"call_{city}"}],
                            usage_metadata={"input_tokens": 84, "output_tokens": 17, "total_tokens": 101})
        else:
            msg = AIMessage(f"Right now it is {last.content}.",
                            usage_metadata={"input_tokens": 126, "output_tokens": 12, "total_tokens": 138})
        msg.response_metadata = {"model_name": "gpt-4o-mini-2024-07-18",
                                 "finish_reason": "tool_calls" if msg.tool_calls else "stop"}
        return ChatResult(generations=[ChatGeneration(message=msg)])


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return {"Lisbon": "sunny, 24°C", "Oslo": "light snow, -3°C"}.get(city, "unknown") + f" in {city}"


def main() -> None:
    agent = create_agent(ChatScripted(), tools=[get_weather], system_prompt="You answer weather questions.")
    handler = TracewireCallbackHandler(user_id="demo-user", tags=["example"])
    # one conversation: LangGraph's thread_id becomes the tracewire session of both turns
    config = {"callbacks": [handler], "configurable": {"thread_id": "weather-chat-1"}}
    for question in ("What is the weather in Oslo?", "And in Lisbon?"):
        result = agent.invoke({"messages": [("user", question)]}, config=config)
        print(f"user : {question}\nagent: {result['messages'][-1].content}")
    tracewire.flush()
    print()
    tracewire_cli(["show", "--last"])


if __name__ == "__main__":
    main()
