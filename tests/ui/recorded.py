"""What the viewer's tests look at: a real LangChain agent's run and a trace of hostile content,
recorded through the real `sqlite` sink."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tracewire
from tracewire.model import attributes as A

SESSION = "weather-chat-ui"
HOSTILE_SESSION = "hostile-session"
QUESTION = "Is it raining over the fjords in Oslo"  # the agent's first prompt, findable on the page
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(2)>"
XSS_LINK = '<a href="javascript:alert(3)">click me</a>'
XSS_MARKDOWN = "[open](javascript:alert(4))"


def _reply(text: str, city: str | None, tokens_in: int, tokens_out: int) -> Any:
    from langchain_core.messages import AIMessage

    calls = [{"name": "get_weather", "args": {"city": city}, "id": f"call_{city}"}] if city else []
    return AIMessage(text, tool_calls=calls,
                     usage_metadata={"input_tokens": tokens_in, "output_tokens": tokens_out,
                                     "total_tokens": tokens_in + tokens_out},
                     response_metadata={"model_name": "gpt-4o-mini-2024-07-18"})


def record_agent_run(db: Path) -> None:
    """Two turns of a LangChain tool-calling agent (`create_agent`), the model scripted at its boundary."""
    from langchain.agents import create_agent

    from tests.langchain.lc_fakes import ToolCallingFakeChatModel, get_weather_tool
    from tracewire.integrations.langchain import TracewireCallbackHandler

    script = [_reply("", "Oslo", 84, 17), _reply("Light snow in Oslo, no rain.", None, 126, 12),
              _reply("", "Lisbon", 84, 17), _reply("Sunny in Lisbon.", None, 126, 12)]
    client = tracewire.init(sink="sqlite", db=str(db))
    agent = create_agent(ToolCallingFakeChatModel(messages=iter(script)), tools=[get_weather_tool()],
                         system_prompt="You answer weather questions.")
    handler = TracewireCallbackHandler(user_id="ana", tags=["ui-test"])
    config: Any = {"callbacks": [handler], "configurable": {"thread_id": SESSION}}
    for question in (f"{QUESTION}?", "And in Lisbon?"):
        agent.invoke({"messages": [("user", question)]}, config=config)
    assert client.flush(10)
    tracewire.shutdown()


def record_hostile(db: Path) -> None:
    """A trace whose every captured field tries to become markup, with a failing tool."""
    client = tracewire.init(sink="sqlite", db=str(db))
    with tracewire.session(session_id=HOSTILE_SESSION, user_id="mallory"):
        with tracewire.span("agent", f"agent {XSS_SCRIPT}", input={"q": XSS_IMG}):
            with tracewire.span("llm", "chat", input=[
                {"role": "system", "content": f"Never run {XSS_SCRIPT}"},
                {"role": "user", "content": f"{XSS_SCRIPT} and {XSS_IMG} and {XSS_LINK} and {XSS_MARKDOWN}"},
            ], attributes={A.REQUEST_MODEL: "gpt-4o-mini", A.USAGE_INPUT_TOKENS: 40, A.USAGE_OUTPUT_TOKENS: 9}) as llm:
                llm.set_output({"role": "assistant", "content": XSS_LINK,
                                "tool_calls": [{"id": "call_x", "name": XSS_IMG, "arguments": {"url": "javascript:alert(5)"}}]})
            try:
                with tracewire.span("tool", "fetch_page", input={"url": "javascript:alert(5)"}):
                    raise ValueError(f"refused {XSS_IMG}")
            except ValueError:
                pass
    assert client.flush(10)
    tracewire.shutdown()
