"""Chain content serialized in one pass records exactly what the per-object conversion does."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.prompt_values import ChatPromptValue
from langgraph.types import Command

from tracewire.integrations.langchain.extract import content, snapshot
from tracewire.model import codec as _json


class Custom:
    """A user's own class: neither converter knows it."""


VALUES: list[Any] = [
    {"messages": [SystemMessage("be brief"), HumanMessage("weather in Paris?", id="h1"),
                  AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}]),
                  ToolMessage("sunny", tool_call_id="call_1", name="get_weather")]},
    [Document("Paris is in France", id="d1", metadata={"score": 0.9, "src": "wiki"})],
    ChatPromptValue(messages=[HumanMessage("hi")]),
    Command(goto="tools", update={"messages": [AIMessage("ok")]}),
    OrderedDict(a=1, b=[1.5, None, True], c={"d": "e"}),
    ("a", "tuple", 3),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_snapshot_is_the_converted_content(value: Any) -> None:
    snap = snapshot(value)
    assert type(snap) is _json.Snapshot
    assert _json.loads(snap.text) == _json.loads(_json.snapshot(content(value)))


def test_unknown_objects_take_the_general_path() -> None:
    obj = Custom()
    value = {"messages": [HumanMessage("hi")], "obj": obj}
    out = snapshot(value)
    assert type(out) is dict and out["obj"] is obj
    assert out["messages"] == [{"role": "user", "content": "hi"}]
    assert snapshot("plain") == "plain" and snapshot(None) is None
