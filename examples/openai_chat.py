"""A short tool-using conversation with the OpenAI SDK, recorded by `instrument()`. Offline: the
answers come from tracewire's scripted OpenAI-compatible server on 127.0.0.1, started here.

    python examples/openai_chat.py
"""

from __future__ import annotations

import json
from typing import Any

import openai

import tracewire
from tracewire.cli.main import main as tracewire_cli
from tracewire.integrations.openai import instrument
from tracewire.model import attributes as A
from tracewire.testing.openai_server import OpenAIServer, Reply, ToolCall

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}]
SCRIPT = [  # what the model answers, turn by turn
    Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="call_oslo")], prompt_tokens=52, completion_tokens=14),
    Reply("It is light snow and -3°C in Oslo: wear a warm coat.", prompt_tokens=81, completion_tokens=16),
    Reply("Yes: it will stay below zero all day.", prompt_tokens=110, completion_tokens=10),
]


def get_weather(city: str) -> str:
    return f"light snow, -3°C in {city}"


def ask(client: openai.OpenAI, messages: list[dict[str, Any]], question: str) -> str:
    """One user turn: call the model, run the tools it asks for, until it answers."""
    messages.append({"role": "user", "content": question})
    while True:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)  # type: ignore[arg-type]
        msg = reply.choices[0].message
        messages.append(msg.model_dump(exclude_none=True))
        if not msg.tool_calls:
            return str(msg.content)
        for call in msg.tool_calls:
            args = json.loads(call.function.arguments)
            with tracewire.span("tool", call.function.name, input=args, attributes={A.TOOL_CALL_ID: call.id}) as tool:
                result = get_weather(**args)
                tool.set_output(result)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})


def main() -> None:
    tracewire.init()  # default sink: SQLite at $TRACEWIRE_DB or in the nearest .tracewire/
    instrument()  # every OpenAI client in the process, from here on
    with OpenAIServer(SCRIPT) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-offline-demo")  # your client: OpenAI()
        messages: list[dict[str, Any]] = [{"role": "system", "content": "You answer weather questions."}]
        with tracewire.session(session_id="weather-chat", user_id="ada"):
            with tracewire.span("agent", "weather-assistant"):
                print("user     : What should I wear in Oslo today?")
                print("assistant:", ask(client, messages, "What should I wear in Oslo today?"))
                print("user     : Will it stay cold?")
                print("assistant:", ask(client, messages, "Will it stay cold?"))
    tracewire.flush()
    print()
    tracewire_cli(["show", "--last"])
    print("\nMore: tracewire sessions; tracewire export --trace <id> (JSONL); tracewire ui")


if __name__ == "__main__":
    main()
