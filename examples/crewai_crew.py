"""A one-agent, one-task, one-tool crew recorded by `instrument()`. Offline: the model is a
scripted OpenAI-compatible server on 127.0.0.1 that this example starts itself.

    python examples/crewai_crew.py
"""

from __future__ import annotations

import logging
import os
import tempfile

for key, value in {
    "CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_TRACING_ENABLED": "false", "CREWAI_DISABLE_VERSION_CHECK": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-fake",
}.items():
    os.environ.setdefault(key, value)
os.environ["HOME"] = tempfile.mkdtemp(prefix="crewai-demo-")  # CrewAI keeps its local state under HOME

from crewai import LLM, Agent, Crew, Task  # noqa: E402
from crewai.events import crewai_event_bus  # noqa: E402
from crewai.tools import tool  # noqa: E402

import tracewire  # noqa: E402
from tracewire.cli.main import main as tracewire_cli  # noqa: E402
from tracewire.integrations.crewai import instrument  # noqa: E402
from tracewire.testing.openai_server import OpenAIServer, Reply, ToolCall  # noqa: E402

tracewire.init()  # default sink: SQLite at $TRACEWIRE_DB or in the nearest .tracewire/
instrument()
logging.getLogger("crewai.llms.base_llm").setLevel(logging.ERROR)  # its token-estimate notes


@tool("exchange_rate")
def exchange_rate(base: str, quote: str) -> float:
    """Today's exchange rate from `base` to `quote`."""
    return {"EURUSD": 1.08}.get(base + quote, 1.0)


SCRIPT = [  # what the "model" answers, in order: first a tool call, then the final answer
    Reply(tool_calls=[ToolCall("exchange_rate", {"base": "EUR", "quote": "USD"})], prompt_tokens=180, completion_tokens=22),
    Reply("120 EUR is 129.60 USD at today's rate of 1.08.", prompt_tokens=240, completion_tokens=18),
]


def main() -> None:
    with OpenAIServer(SCRIPT) as server:
        llm = LLM(model="openai/gpt-4o-mini", base_url=server.base_url, api_key="sk-fake")
        analyst = Agent(role="Currency analyst", goal="Convert amounts between currencies",
                        backstory="You always check today's rate with your tool.", llm=llm, tools=[exchange_rate])
        task = Task(description="How much is 120 EUR in USD?", expected_output="The amount in USD", agent=analyst)
        result = Crew(agents=[analyst], tasks=[task]).kickoff()
        crewai_event_bus.flush()
    print("answer:", result.raw)
    tracewire.flush()
    print()
    tracewire_cli(["show", "--last"])


if __name__ == "__main__":
    main()
