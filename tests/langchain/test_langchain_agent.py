"""A create_agent / create_react_agent tool-calling agent, recorded as the tree users expect."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

import tracewire
from tests.conftest import Recorder, shape
from tests.langchain.lc_fakes import (
    AGENT_SHAPE,
    ChatScripted,
    ToolCallingFakeChatModel,
    usage,
    weather_agent,
    weather_agent_responder,
)
from tracewire.integrations.langchain import TracewireCallbackHandler
from tracewire.model import attributes as A


def test_create_agent_exact_tree_tool_call_links_and_tokens(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    result = weather_agent().invoke(
        {"messages": [("user", "weather in Paris?")]},
        config={"callbacks": [handler], "configurable": {"thread_id": "conv-1"},
                "tags": ["prod"], "metadata": {"team": "search"}},
    )
    assert result["messages"][-1].content == "The weather: sunny in Paris"

    (root,) = recorder.tree()
    assert shape(root) == AGENT_SHAPE
    model1, tools, model2 = root.children
    llm1, tool_span, llm2 = model1.children[0], tools.children[0], model2.children[0]
    # parent links follow LangChain's run tree; one trace
    assert root.parent_span_id is None
    assert [c.parent_span_id for c in root.children] == [root.span_id] * 3
    assert llm1.parent_span_id == model1.span_id and tool_span.parent_span_id == tools.span_id
    assert len({s.trace_id for s in root.walk()}) == 1
    assert all(s.status == "ok" for s in root.walk())
    # graph steps
    assert [(c.attributes[A.NODE], c.attributes[A.STEP]) for c in root.children] == [("model", 1), ("tools", 2), ("model", 3)]
    # the tool run is linked to the LLM call that asked for it
    assert llm1.output["tool_calls"] == [{"id": "call_Paris", "name": "get_weather", "arguments": {"city": "Paris"}}]
    assert tool_span.attributes[A.TOOL_CALL_ID] == "call_Paris" == llm1.output["tool_calls"][0]["id"]
    assert tool_span.attributes[A.TOOL_NAME] == "get_weather"
    assert tool_span.input == {"city": "Paris"} and tool_span.output == "sunny in Paris"
    # the second call sees the tool result, by id
    assert llm2.input[-1] == {"role": "tool", "content": "sunny in Paris", "tool_call_id": "call_Paris",
                              "name": "get_weather"}
    assert llm2.output == {"role": "assistant", "content": "The weather: sunny in Paris"}
    # tokens, models, finish reasons, cost (gpt-4o-mini list price: 0.15 / 0.60 per million)
    for span, (i, o) in ((llm1, (12, 7)), (llm2, (30, 9))):
        assert span.attributes[A.USAGE_INPUT_TOKENS] == i
        assert span.attributes[A.USAGE_OUTPUT_TOKENS] == o
        assert span.attributes[A.USAGE_TOTAL_TOKENS] == i + o
        assert span.attributes[A.REQUEST_MODEL] == "gpt-4o-mini"
        assert span.attributes[A.RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
        assert span.attributes[A.PROVIDER_NAME] == "scripted"
        assert span.attributes[A.REQUEST_TEMPERATURE] == 0.0
        assert span.attributes[A.COST_USD] == pytest.approx((i * 0.15 + o * 0.60) / 1e6)
    assert llm1.attributes[A.RESPONSE_FINISH_REASONS] == ["tool_calls"]
    assert llm2.attributes[A.RESPONSE_FINISH_REASONS] == ["stop"]
    # session from configurable.thread_id; the run config's tags and metadata kept on the root
    assert {s.session_id for s in root.walk()} == {"conv-1"}
    assert root.tags == ["prod"] and root.metadata == {"team": "search", "thread_id": "conv-1"}
    assert root.attributes[A.AGENT_NAME] == "LangGraph"
    assert handler.open_runs == 0


def test_generic_fake_chat_model_agent_with_usage(recorder: Recorder) -> None:
    model = ToolCallingFakeChatModel(messages=iter([
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_9"}],
                  usage_metadata=usage(5, 3)),
        AIMessage("Sunny.", usage_metadata=usage(8, 2)),
    ]))
    weather_agent(model).invoke({"messages": [("user", "weather in Oslo?")]},
                                config={"callbacks": [TracewireCallbackHandler()]})
    (root,) = recorder.tree()
    assert shape(root) == ("agent", "LangGraph", [
        ("chain", "model", [("llm", "ToolCallingFakeChatModel", [])]),
        ("chain", "tools", [("tool", "get_weather", [])]),
        ("chain", "model", [("llm", "ToolCallingFakeChatModel", [])]),
    ])
    llms = [s for s in root.walk() if s.kind == "llm"]
    assert [(s.attributes[A.USAGE_INPUT_TOKENS], s.attributes[A.USAGE_OUTPUT_TOKENS]) for s in llms] == [(5, 3), (8, 2)]
    assert A.COST_USD not in llms[0].attributes  # no model name, no price
    assert root.children[1].children[0].attributes[A.TOOL_CALL_ID] == "call_9"


def test_create_react_agent_tree(recorder: Recorder) -> None:
    from langgraph.prebuilt import create_react_agent

    from tests.langchain.lc_fakes import get_weather_tool

    agent = create_react_agent(ChatScripted(respond=weather_agent_responder), [get_weather_tool()])
    agent.invoke({"messages": [("user", "weather in Rome?")]}, config={"callbacks": [TracewireCallbackHandler()]})
    (root,) = recorder.tree()
    assert root.kind == "agent" and root.name == "LangGraph"
    assert [c.name for c in root.children] == ["agent", "tools", "agent"]
    tool_span = next(s for s in root.walk() if s.kind == "tool")
    assert tool_span.attributes[A.TOOL_CALL_ID] == "call_Rome"
    assert [s.attributes[A.USAGE_TOTAL_TOKENS] for s in root.walk() if s.kind == "llm"] == [19, 39]


def test_failing_llm_records_error_on_every_level(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    model = ChatScripted(respond=weather_agent_responder, fail_with=ConnectionError("model endpoint down"))
    with pytest.raises(ConnectionError, match="model endpoint down"):
        weather_agent(model).invoke({"messages": [("user", "weather in Paris?")]}, config={"callbacks": [handler]})
    (root,) = recorder.tree()
    assert shape(root) == ("agent", "LangGraph", [("chain", "model", [("llm", "ChatScripted", [])])])
    for span in root.walk():
        assert span.status == "error"
        assert span.error["type"] == "ConnectionError"
        assert span.error["message"] == "model endpoint down"
        assert "ConnectionError: model endpoint down" in span.error["stacktrace"]
    assert handler.open_runs == 0


def test_failing_tool(recorder: Recorder) -> None:
    from langchain.agents import create_agent

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        raise ValueError(f"no station in {city}")

    handler = TracewireCallbackHandler()
    agent = create_agent(ChatScripted(respond=weather_agent_responder), tools=[get_weather])
    with pytest.raises(ValueError, match="no station in Paris"):
        agent.invoke({"messages": [("user", "weather in Paris?")]}, config={"callbacks": [handler]})
    (root,) = recorder.tree()
    assert shape(root) == ("agent", "LangGraph", [
        ("chain", "model", [("llm", "ChatScripted", [])]),
        ("chain", "tools", [("tool", "get_weather", [])]),
    ])
    model, tools = root.children
    tool_span = tools.children[0]
    assert model.status == "ok" and model.children[0].status == "ok"
    assert tool_span.status == "error" and tool_span.error["type"] == "ValueError"
    assert tool_span.error["message"] == "no station in Paris"
    assert tool_span.attributes[A.TOOL_CALL_ID] == "call_Paris" and tool_span.input == {"city": "Paris"}
    assert tools.status == "error" and root.status == "error"
    assert handler.open_runs == 0


def test_tool_error_answered_by_the_tool_is_recorded_as_error(recorder: Recorder) -> None:
    from langchain.agents import create_agent
    from langchain_core.tools import ToolException

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        raise ToolException(f"station {city} offline")

    get_weather.handle_tool_error = True

    agent = create_agent(ChatScripted(respond=weather_agent_responder), tools=[get_weather])
    agent.invoke({"messages": [("user", "weather in Paris?")]}, config={"callbacks": [TracewireCallbackHandler()]})
    (root,) = recorder.tree()
    assert shape(root) == AGENT_SHAPE
    tool_span = root.children[1].children[0]
    assert tool_span.status == "error" and tool_span.error["message"] == "station Paris offline"
    assert tool_span.output == "station Paris offline"
    assert root.status == "ok"


def test_agent_nests_under_tracewire_span_and_trace_inside_tool(recorder: Recorder) -> None:
    from langchain.agents import create_agent

    @tracewire.trace("tool", name="lookup_station")
    def lookup_station(city: str) -> str:
        return f"station-{city}"

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny at {lookup_station(city)}"

    agent = create_agent(ChatScripted(respond=weather_agent_responder), tools=[get_weather])
    with tracewire.span("chain", "request") as outer:
        agent.invoke({"messages": [("user", "weather in Paris?")]}, config={"callbacks": [TracewireCallbackHandler()]})
    (root,) = recorder.tree()
    assert shape(root) == ("chain", "request", [("agent", "LangGraph", [
        ("chain", "model", [("llm", "ChatScripted", [])]),
        ("chain", "tools", [("tool", "get_weather", [("tool", "lookup_station", [])])]),
        ("chain", "model", [("llm", "ChatScripted", [])]),
    ])])
    assert root.span_id == outer.span_id
    assert len({s.trace_id for s in root.walk()}) == 1


def test_nested_langchain_call_inside_traced_function_nests_under_it(recorder: Recorder) -> None:
    inner_model = ChatScripted(respond=lambda msgs: AIMessage("inner answer", usage_metadata=usage(1, 2)))

    @tracewire.trace("chain", name="summarize")
    def summarize(text: str) -> str:
        return str(inner_model.invoke(text).content)  # config (callbacks) flows in via contextvars

    chain = RunnableLambda(lambda x: x.upper(), name="upper") | RunnableLambda(summarize, name="call_summarize")
    chain.invoke("hello", config={"callbacks": [TracewireCallbackHandler()]})
    (root,) = recorder.tree()
    assert shape(root) == ("chain", "RunnableSequence", [
        ("chain", "upper", []),
        ("chain", "call_summarize", [("chain", "summarize", [("llm", "ChatScripted", [])])]),
    ])


def test_handler_at_construction_nests_under_current_span(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler(session_id="s-ctor", user_id="u-1")
    model = ChatScripted(respond=lambda msgs: AIMessage("ok", usage_metadata=usage(2, 1)), callbacks=[handler])
    with tracewire.span("agent", "my_agent") as outer:
        (RunnableLambda(lambda x: x, name="prep") | model).invoke("hi")  # no config callbacks
    (root,) = recorder.tree()
    assert shape(root) == ("agent", "my_agent", [("llm", "ChatScripted", [])])
    llm = root.children[0]
    assert llm.parent_span_id == outer.span_id
    assert (llm.session_id, llm.user_id) == ("s-ctor", "u-1")


def test_session_precedence_handler_then_tracewire_session_then_thread_id(recorder: Recorder) -> None:
    agent = weather_agent()
    cfg = {"configurable": {"thread_id": "thread-7"}}
    agent.invoke({"messages": [("user", "weather in A?")]},
                 config={**cfg, "callbacks": [TracewireCallbackHandler(session_id="explicit")]})
    with tracewire.session(session_id="from-context", user_id="alice"):
        agent.invoke({"messages": [("user", "weather in B?")]}, config={**cfg, "callbacks": [TracewireCallbackHandler()]})
    agent.invoke({"messages": [("user", "weather in C?")]}, config={**cfg, "callbacks": [TracewireCallbackHandler()]})
    roots = recorder.tree()
    assert [r.name for r in roots] == ["LangGraph"] * 3
    sessions = [{s.session_id for s in r.walk()} for r in roots]
    assert sessions == [{"explicit"}, {"from-context"}, {"thread-7"}]
    assert {s.user_id for s in roots[1].walk()} == {"alice"}


def test_handler_tags_and_metadata_and_custom_event(recorder: Recorder) -> None:
    from langchain_core.callbacks import dispatch_custom_event

    def step(x: str) -> str:
        dispatch_custom_event("progress", {"pct": 50})
        return x

    handler = TracewireCallbackHandler(tags=["tw"], metadata={"app": "demo"})
    chain = RunnableLambda(step, name="step").with_config(tags=["inner"], metadata={"k": 1})
    (RunnableLambda(lambda x: x, name="first") | chain).invoke("x", config={"callbacks": [handler], "tags": ["outer"]})
    (root,) = recorder.tree()
    assert shape(root) == ("chain", "RunnableSequence", [
        ("chain", "first", []), ("chain", "step", [("custom", "progress", [])]),
    ])
    assert root.tags == ["tw", "outer"] and root.metadata == {"app": "demo"}
    step_span = root.children[1]
    assert step_span.tags == ["inner"] and step_span.metadata == {"k": 1}
    event = step_span.children[0]
    assert event.status == "point" and event.input == {"pct": 50}
