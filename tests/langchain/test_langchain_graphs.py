"""Custom LangGraph StateGraphs: nodes, a conditional edge, a subgraph used as a node."""

from __future__ import annotations

from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from tests.conftest import Recorder, shape
from tracewire.integrations.langchain import TracewireCallbackHandler
from tracewire.model import attributes as A


class Counter(TypedDict):
    n: int


def add_one(state: Counter) -> Counter:
    return {"n": state["n"] + 1}


def times_ten(state: Counter) -> Counter:
    return {"n": state["n"] * 10}


def route(state: Counter) -> str:
    return "times_ten" if state["n"] < 5 else END


def two_node_graph() -> StateGraph:
    g = StateGraph(Counter)
    g.add_node("add_one", add_one)
    g.add_node("times_ten", times_ten)
    g.add_edge(START, "add_one")
    g.add_conditional_edges("add_one", route, ["times_ten", END])
    g.add_edge("times_ten", END)
    return g


def test_state_graph_two_nodes_and_conditional_edge(recorder: Recorder) -> None:
    handler = TracewireCallbackHandler()
    graph = two_node_graph().compile()
    assert graph.invoke({"n": 1}, config={"callbacks": [handler]}) == {"n": 20}
    assert graph.invoke({"n": 7}, config={"callbacks": [handler]}) == {"n": 8}
    first, second = recorder.tree()
    # the conditional edge runs inside the node it leaves from
    assert shape(first) == ("agent", "LangGraph", [
        ("chain", "add_one", [("chain", "route", [])]),
        ("chain", "times_ten", []),
    ])
    assert shape(second) == ("agent", "LangGraph", [("chain", "add_one", [("chain", "route", [])])])
    assert first.trace_id != second.trace_id
    add, ten = first.children
    assert (add.attributes[A.NODE], add.attributes[A.STEP]) == ("add_one", 1)
    assert (ten.attributes[A.NODE], ten.attributes[A.STEP]) == ("times_ten", 2)
    assert A.NODE not in add.children[0].attributes  # the router is not a node
    assert first.input == {"n": 1} and first.output == {"n": 20}
    assert add.input == {"n": 1} and add.output == {"n": 2}
    assert add.children[0].output == "times_ten" and second.children[0].children[0].output == "__end__"
    assert handler.open_runs == 0


def test_subgraph_as_node(recorder: Recorder) -> None:
    sub = StateGraph(Counter)
    sub.add_node("inner", add_one)
    sub.add_edge(START, "inner")
    g = two_node_graph()
    g.add_node("sub", sub.compile())
    g.add_edge("times_ten", "sub")
    g.add_edge("sub", END)
    graph = g.compile()
    assert graph.invoke({"n": 1}, config={"callbacks": [TracewireCallbackHandler()]}) == {"n": 21}
    (root,) = recorder.tree()
    assert shape(root) == ("agent", "LangGraph", [
        ("chain", "add_one", [("chain", "route", [])]),
        ("chain", "times_ten", []),
        ("chain", "sub", [("chain", "LangGraph", [("chain", "inner", [])])]),
    ])
    sub_node = root.children[2]
    assert (sub_node.attributes[A.NODE], sub_node.attributes[A.STEP]) == ("sub", 3)
    inner = sub_node.children[0].children[0]
    assert (inner.attributes[A.NODE], inner.attributes[A.STEP]) == ("inner", 1)
    assert inner.output == {"n": 21}
    assert len({s.trace_id for s in root.walk()}) == 1


def test_failing_node(recorder: Recorder) -> None:
    def explode(state: Counter) -> Counter:
        raise KeyError("missing input")

    g = StateGraph(Counter)
    g.add_node("explode", explode)
    g.add_edge(START, "explode")
    with pytest.raises(KeyError):
        g.compile().invoke({"n": 1}, config={"callbacks": [TracewireCallbackHandler()]})
    (root,) = recorder.tree()
    assert shape(root) == ("agent", "LangGraph", [("chain", "explode", [])])
    assert [s.error["type"] for s in root.walk()] == ["KeyError", "KeyError"]


def test_interrupt_is_not_an_error(recorder: Recorder) -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import interrupt

    def ask(state: Counter) -> Counter:
        return {"n": int(interrupt("how many?"))}

    g = StateGraph(Counter)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    graph = g.compile(checkpointer=InMemorySaver())
    handler = TracewireCallbackHandler()
    graph.invoke({"n": 0}, config={"callbacks": [handler], "configurable": {"thread_id": "th"}})
    (root,) = recorder.tree()
    assert shape(root) == ("agent", "LangGraph", [("chain", "ask", [])])
    assert all(s.status == "ok" for s in root.walk())
    assert root.session_id == "th" and handler.open_runs == 0
