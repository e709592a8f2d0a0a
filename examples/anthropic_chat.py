"""A short tool-using conversation with the Anthropic SDK, recorded by `instrument()`: the model
asks for a tool, gets its result, and answers — streamed — all in one session. Offline: the
Messages API is the local server from `tracewire.testing`, started in this process.

    python examples/anthropic_chat.py
"""

from __future__ import annotations

from typing import Any

import anthropic

import tracewire
from tracewire.cli.main import main as tracewire_cli
from tracewire.integrations.anthropic import instrument
from tracewire.testing.anthropic_server import AnthropicServer, Reply, ToolUse

MODEL = "claude-sonnet-4-5"
TOOLS = [{"name": "get_weather", "description": "The weather in a city now",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
# What the local server answers, in order: a tool call, then the answer (streamed to the caller).
SCRIPT = [
    Reply("Let me check.", thinking="The user wants the weather in Oslo: use the tool.", thinking_tokens=14,
          tool_uses=[ToolUse("get_weather", {"city": "Oslo"}, id="toolu_demo_1")],
          input_tokens=310, cache_read_tokens=1200, output_tokens=48),
    Reply("It is -3 °C with light snow in Oslo.", input_tokens=360, cache_read_tokens=1200, output_tokens=15),
]


def get_weather(city: str) -> str:
    return f"-3 °C, light snow in {city}"


def run_tools(content: Any) -> list[dict[str, Any]]:
    return [{"type": "tool_result", "tool_use_id": b.id, "content": get_weather(**b.input)}
            for b in content if b.type == "tool_use"]


def main() -> None:
    tracewire.init()  # default sink: SQLite at $TRACEWIRE_DB or in the nearest .tracewire/
    instrument()  # every Anthropic / AsyncAnthropic client from here on
    with AnthropicServer(SCRIPT) as api:
        client = anthropic.Anthropic(base_url=api.base_url, api_key="offline-demo")
        messages: list[dict[str, Any]] = [{"role": "user", "content": "What's the weather in Oslo?"}]
        with tracewire.session(session_id="anthropic-demo", user_id="demo-user"):
            reply = client.messages.create(model=MODEL, max_tokens=512, system="Answer with the tools.",
                                           tools=TOOLS, messages=messages)
            print("assistant:", reply.content[1].text, "→ asks for", reply.content[2].name)
            messages += [{"role": "assistant", "content": reply.content},
                         {"role": "user", "content": run_tools(reply.content)}]
            with client.messages.stream(model=MODEL, max_tokens=512, system="Answer with the tools.",
                                        tools=TOOLS, messages=messages) as stream:
                print("assistant: ", end="")
                for text in stream.text_stream:
                    print(text, end="", flush=True)
                print()
    tracewire.flush()
    print()
    tracewire_cli(["show", "--last"])


if __name__ == "__main__":
    main()
