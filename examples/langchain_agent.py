"""A LangChain tool-calling agent (`langchain.agents.create_agent`), recorded by passing one
callback handler. Offline: a scripted chat model stands in at the model boundary.

    python examples/langchain_agent.py          # runs the agent twice, prints the recorded tree
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

import tracewire
from tracewire.cli.main import main as tracewire_cli
from tracewire.integrations.langchain import TracewireCallbackHandler

tracewire.init()  # default sink: SQLite at $TRACEWIRE_DB or in the nearest .tracewire/


class ChatScripted(GenericFakeChatModel):
    """Plays back the replies a real model would give: a call of the weather tool, then an answer
    from its result, with token usage and a dated model name as a provider's response has them."""

    model_name: str = "gpt-4o-mini"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ChatScripted:
        return self


def reply(text: str, call: str | None, tokens_in: int, tokens_out: int) -> AIMessage:
    calls = [{"name": "get_weather", "args": {"city": call}, "id": f"call_{call}"}] if call else []
    return AIMessage(text, tool_calls=calls,
                     usage_metadata={"input_tokens": tokens_in, "output_tokens": tokens_out,
                                     "total_tokens": tokens_in + tokens_out},
                     response_metadata={"model_name": "gpt-4o-mini-2024-07-18",
                                        "finish_reason": "tool_calls" if call else "stop"})


SCRIPT = [
    reply("", "Oslo", 84, 17), reply("Right now it is light snow, -3°C in Oslo.", None, 126, 12),
    reply("", "Lisbon", 84, 17), reply("Right now it is sunny, 24°C in Lisbon.", None, 126, 12),
]


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return {"Lisbon": "sunny, 24°C", "Oslo": "light snow, -3°C"}.get(city, "unknown") + f" in {city}"


def main() -> None:
    agent = create_agent(ChatScripted(messages=iter(SCRIPT)), tools=[get_weather], system_prompt="You answer weather questions.")
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
