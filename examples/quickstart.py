"""A hand-instrumented agent recorded to the embedded SQLite store. Offline; no model needed.

    python examples/quickstart.py && tracewire show --last
"""

from __future__ import annotations

import time

import tracewire
from tracewire.model import attributes as A
from tracewire.model.genai import message, tool_call, usage_attributes

tracewire.init()  # default sink: SQLite at $TRACEWIRE_DB or in the nearest .tracewire/


@tracewire.trace("tool", name="get_weather")
def get_weather(city: str) -> dict[str, object]:
    time.sleep(0.01)
    return {"city": city, "forecast": "sunny", "high_c": 21}


@tracewire.trace("tool", name="book_table")
def book_table(restaurant: str, people: int) -> str:
    raise ConnectionError(f"{restaurant} booking service unreachable")


def fake_llm(question: str) -> dict[str, object]:
    """Stands in for a model call: records an llm span with usage like an adapter would."""
    with tracewire.span(
        "llm", "gpt-4o-mini",
        input=[message("user", question)],
        attributes={A.REQUEST_MODEL: "gpt-4o-mini", A.PROVIDER_NAME: "openai", A.OPERATION_NAME: "chat"},
    ) as span:
        time.sleep(0.02)
        calls = [tool_call("call_1", "get_weather", {"city": "Lisbon"})]
        span.set_output(message("assistant", None, tool_calls=calls))
        span.set_attributes({
            A.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18", A.RESPONSE_FINISH_REASONS: ["tool_calls"],
            **usage_attributes(412, 38, model="gpt-4o-mini"),
        })
        return {"tool_calls": calls}


def main() -> None:
    question = "Will it be sunny in Lisbon tomorrow? Book a table for two if so."
    with tracewire.session(user_id="demo-user", tags=["quickstart"]):
        with tracewire.span("agent", "weather-planner", input={"question": question}):
            tracewire.record("user.input", input=question)
            plan = fake_llm(question)
            forecast = get_weather(**plan["tool_calls"][0]["arguments"])  # type: ignore[index]
            try:
                book_table("Casa Lisboa", 2)
            except ConnectionError:
                pass  # the failure is recorded on the tool span; the agent carries on
            answer = f"Yes: {forecast['forecast']}, {forecast['high_c']}°C. I could not book the table."
            tracewire.record("agent.response", output=answer)
    tracewire.flush()
    print(answer)


if __name__ == "__main__":
    main()
