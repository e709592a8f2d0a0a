"""An experiment: a LangGraph agent answers a 5-question dataset, two evaluators score each answer, and
a second version of the agent is compared with the first, item by item. Offline: a scripted chat model
stands in at the model boundary.

    python examples/experiment.py               # runs both versions, prints the comparison
    tracewire experiments list                  # the runs, with their aggregates
    tracewire experiments show capitals-v2      # one run, item by item
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

import tracewire
from tracewire.integrations.langchain import TracewireCallbackHandler

tracewire.init()  # default sink: SQLite at $TRACEWIRE_DB or in the nearest .tracewire/

QUESTIONS = {"France": "Paris", "Japan": "Tokyo", "Peru": "Lima", "Kenya": "Nairobi", "Canada": "Ottawa"}


class ChatScripted(BaseChatModel):
    """Answers from a table, with token usage and a model name as a provider's response has them."""

    model_name: str = "gpt-4o-mini"
    answers: dict[str, str]

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        country = str(messages[-1].content).removeprefix("What is the capital of ").rstrip("?")
        text = self.answers[country]
        usage = {"input_tokens": 24, "output_tokens": len(text.split()) + 2,
                 "total_tokens": 26 + len(text.split())}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(
            text, usage_metadata=usage, response_metadata={"model_name": "gpt-4o-mini-2024-07-18"}))])


def agent_task(answers: dict[str, str]) -> Any:
    """The task an experiment runs: question in, the agent's last message out."""
    agent = create_agent(ChatScripted(answers=answers), tools=[])

    def task(question: str) -> str:
        result = agent.invoke({"messages": [("user", question)]}, config={"callbacks": [TracewireCallbackHandler()]})
        return str(result["messages"][-1].content)

    return task


def correct(input: str, output: str, expected: str) -> bool:
    """The expected city is named in the answer."""
    return expected.lower() in output.lower()


def brief(input: str, output: str, expected: str) -> float:
    """1 for an answer of up to five words, less the longer it gets."""
    return min(1.0, 5 / max(1, len(output.split())))


dataset = tracewire.dataset("capitals", items=[
    {"id": country.lower(), "input": f"What is the capital of {country}?", "expected": city}
    for country, city in QUESTIONS.items()])

v1 = tracewire.experiment("capitals-v1", dataset, agent_task({
    "France": "Paris.", "Japan": "Tokyo.", "Peru": "Cusco.", "Kenya": "Nairobi.", "Canada": "Toronto."}),
    evaluators=[correct, brief])
# The second version knows Peru and Canada, but explains itself at length about Japan.
v2 = tracewire.experiment("capitals-v2", dataset, agent_task({
    "France": "Paris.", "Japan": "The capital of Japan has been Tokyo since 1868.", "Peru": "Lima.",
    "Kenya": "Nairobi.", "Canada": "Ottawa."}), evaluators=[correct, brief])

print(v2.table())
print(v1.compare(v2))
tracewire.shutdown()
