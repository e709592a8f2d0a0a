"""Exact trees recorded from real llama-index-core runs with mock models."""

from __future__ import annotations

import asyncio
import uuid

from li_helpers import add, answer, call_add, scripted
from llama_index.core import Document, PromptTemplate, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool
from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent

import tracewire
from tests.conftest import shape
from tracewire.model import attributes as A

DOCS = [
    Document(text="Paris is the capital of France.", metadata={"source": "atlas"}),
    Document(text="Berlin is the capital of Germany.", metadata={"source": "atlas"}),
]


def test_rag_query_tree(recorder, handler):
    index = VectorStoreIndex.from_documents(DOCS, embed_model=MockEmbedding(embed_dim=8, model_name="mock-embed"))
    # MockEmbedding gives every text the same vector: ask for both nodes so ties do not matter
    response = index.as_query_engine(similarity_top_k=2).query("What is the capital of France?")

    build, query = recorder.tree()
    assert shape(build) == ("embedding", "MockEmbedding", [])  # from_documents: a trace of its own
    assert build.attributes[A.EMBEDDING_COUNT] == 2 and build.attributes[A.EMBEDDINGS_DIMENSION] == 8
    assert build.attributes[A.REQUEST_MODEL] == "mock-embed" and build.attributes[A.OPERATION_NAME] == "embeddings"
    assert shape(query) == ("chain", "RetrieverQueryEngine.query", [
        ("retriever", "VectorIndexRetriever", [("embedding", "MockEmbedding", [])]),
        ("chain", "CompactAndRefine.synthesize", [("llm", "MockLLM", [])]),
    ])
    assert query.input == "What is the capital of France?"
    assert query.output == response.response
    retriever, synth = query.children
    assert retriever.input == "What is the capital of France?"
    assert retriever.attributes[A.DOCUMENT_COUNT] == 2
    assert sorted(n["text"].split("\n\n")[-1] for n in retriever.output) == [
        "Berlin is the capital of Germany.", "Paris is the capital of France.",
    ]
    assert all(n["metadata"] == {"source": "atlas"} and n["id"] and n["score"] is not None for n in retriever.output)
    embed = retriever.children[0]
    assert embed.input == "What is the capital of France?"
    assert embed.attributes[A.EMBEDDING_COUNT] == 1 and embed.attributes[A.EMBEDDINGS_DIMENSION] == 8
    assert embed.attributes[A.REQUEST_MODEL] == "mock-embed"  # the index's model, not Settings'
    llm = synth.children[0]
    assert llm.attributes[A.OPERATION_NAME] == "text_completion"
    assert "What is the capital of France?" in llm.input and llm.output == response.response
    assert {s.trace_id for s in query.walk()} == {query.trace_id} and build.trace_id != query.trace_id
    assert handler.tracked_spans == 0


def test_predict_is_one_llm_span(recorder, handler):
    """`predict` formats the prompt and calls complete (or chat): one llm span, under the caller's."""
    prompt = PromptTemplate("What is the capital of {country}?")
    with tracewire.span("chain", "ask"):
        text = MockLLM().predict(prompt, country="France")
        reply = MockLLM(is_chat_model=True).predict(prompt, country="Spain")

    (root,) = recorder.tree()
    assert shape(root) == ("chain", "ask", [("llm", "MockLLM", []), ("llm", "MockLLM", [])])
    completion, chat = root.children
    assert completion.parent_span_id == chat.parent_span_id == root.span_id
    assert completion.attributes[A.OPERATION_NAME] == "text_completion"
    assert completion.input == "What is the capital of France?" and completion.output == text == completion.input
    assert chat.attributes[A.OPERATION_NAME] == "chat"  # a chat model's predict sends the prompt as a message
    assert chat.input == [{"role": "user", "content": "What is the capital of Spain?"}]
    assert chat.output == {"role": "assistant", "content": reply}
    assert completion.status == chat.status == "ok"
    assert handler.tracked_spans == 0


async def test_function_agent_tool_tree(recorder, handler):
    llm = MockFunctionCallingLLM(response_generator=scripted(call_add(2, 3), answer("2 + 3 = 5")))
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(add)], llm=llm, streaming=False)
    result = await agent.run("What is 2 + 3?")

    (root,) = recorder.tree()
    assert shape(root) == ("agent", "Agent", [
        ("llm", "MockFunctionCallingLLM", []), ("tool", "add", []), ("llm", "MockFunctionCallingLLM", []),
    ])
    assert root.input == "What is 2 + 3?" and root.output == "2 + 3 = 5" == str(result)
    first, tool, second = root.children
    assert first.input == [{"role": "user", "content": "What is 2 + 3?"}]
    assert first.output["tool_calls"] == [{"id": "call-1", "name": "add", "arguments": {"a": 2, "b": 3}}]
    assert tool.attributes[A.TOOL_NAME] == "add" and tool.attributes[A.TOOL_CALL_ID] == "call-1"
    assert tool.input == {"a": 2, "b": 3} and tool.output == "5" and tool.status == "ok"
    assert second.input[-1] == {"role": "tool", "content": "5", "tool_call_id": "call-1"}
    assert second.output == {"role": "assistant", "content": "2 + 3 = 5"}
    assert [s.start_ns for s in root.children] == sorted(s.start_ns for s in root.children)
    assert handler.tracked_spans == 0


async def test_react_agent_tree(recorder, handler):
    llm = MockFunctionCallingLLM(response_generator=scripted(
        answer('Thought: I need to add.\nAction: add\nAction Input: {"a": 2, "b": 3}'),
        answer("Thought: I can answer without using any more tools.\nAnswer: 5"),
    ))
    agent = ReActAgent(tools=[FunctionTool.from_defaults(add)], llm=llm, name="calculator")
    result = await agent.run("What is 2 + 3?")

    (root,) = recorder.tree()
    assert shape(root) == ("agent", "calculator", [
        ("llm", "MockFunctionCallingLLM", []), ("tool", "add", []), ("llm", "MockFunctionCallingLLM", []),
    ])
    assert root.attributes[A.AGENT_NAME] == "calculator" and root.output == "5"
    assert root.children[1].input == {"a": 2, "b": 3} and root.children[1].output == "5"
    # ReAct parses the call out of the text and makes up its id: the one the agent reports is the tool span's
    (call,) = result.tool_calls
    assert root.children[1].attributes[A.TOOL_CALL_ID] == call.tool_id and call.tool_name == "add"
    assert str(uuid.UUID(call.tool_id)) == call.tool_id
    assert root.children[0].attributes[A.STREAMING] is True  # ReActAgent streams by default


async def test_failing_tool(recorder, handler):
    llm = MockFunctionCallingLLM(response_generator=scripted(call_add(-1, 3), answer("I could not add those.")))
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(add)], llm=llm)
    await agent.run("What is -1 + 3?")

    (root,) = recorder.tree()
    assert shape(root) == ("agent", "Agent", [
        ("llm", "MockFunctionCallingLLM", []), ("tool", "add", []), ("llm", "MockFunctionCallingLLM", []),
    ])
    tool = root.children[1]
    assert tool.status == "error" and tool.type is None
    assert tool.error["type"] == "ValueError" and tool.error["message"] == "negative numbers are not supported"
    assert "add" in tool.error["stacktrace"]
    assert root.status == "ok"  # the agent handled it: the error went back to the LLM
    assert "negative numbers" in root.children[2].input[-1]["content"]
    types = [e["type"] for e in recorder.events() if e["span_id"] == tool.span_id]
    assert types == ["tool.start", "tool.error"]


async def test_concurrent_agents_keep_separate_traces(recorder, handler):
    def make(name: str, a: int) -> FunctionAgent:
        llm = MockFunctionCallingLLM(response_generator=scripted(call_add(a, 1, f"call-{name}"), answer(f"{name} done")))
        return FunctionAgent(name=name, tools=[FunctionTool.from_defaults(add)], llm=llm, streaming=True)

    async def run(agent: FunctionAgent, q: str) -> str:
        return str(await agent.run(q))

    results = await asyncio.gather(run(make("alpha", 10), "alpha?"), run(make("beta", 20), "beta?"))
    assert results == ["alpha done", "beta done"]

    roots = sorted(recorder.tree(), key=lambda r: r.name)
    assert [shape(r) for r in roots] == [
        ("agent", name, [("llm", "MockFunctionCallingLLM", []), ("tool", "add", []), ("llm", "MockFunctionCallingLLM", [])])
        for name in ("alpha", "beta")
    ]
    alpha, beta = roots
    assert alpha.trace_id != beta.trace_id
    for root, a, call in ((alpha, 10, "call-alpha"), (beta, 20, "call-beta")):
        assert {s.trace_id for s in root.walk()} == {root.trace_id}
        assert root.children[1].input == {"a": a, "b": 1} and root.children[1].output == str(a + 1)
        assert root.children[1].attributes[A.TOOL_CALL_ID] == call
        assert root.children[0].input == [{"role": "user", "content": f"{root.name}?"}]
    # the two runs really interleaved on the loop
    assert alpha.start_ns < beta.end_ns and beta.start_ns < alpha.end_ns
    assert handler.tracked_spans == 0


async def test_nesting_under_tracewire_spans(recorder, handler):
    """LlamaIndex runs nest under an enclosing tracewire span; a span opened in a tool's code nests
    under the tool, and what LlamaIndex runs inside that span nests under it."""
    async def lookup(city: str) -> str:
        """Look a city up."""
        with tracewire.span("retriever", "city_db", input=city):
            return (await MockFunctionCallingLLM().acomplete(f"facts about {city}")).text

    llm = MockFunctionCallingLLM(response_generator=scripted(
        ChatMessage(role="assistant", blocks=[call_add(0, 0).blocks[0].model_copy(
            update={"tool_name": "lookup", "tool_kwargs": {"city": "Paris"}})]),
        answer("Paris is nice."),
    ))
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(async_fn=lookup)], llm=llm, streaming=False)
    async with tracewire.span("chain", "request"):
        await agent.run("Tell me about Paris")

    (root,) = recorder.tree()
    assert shape(root) == ("chain", "request", [("agent", "Agent", [
        ("llm", "MockFunctionCallingLLM", []),
        ("tool", "lookup", [("retriever", "city_db", [("llm", "MockFunctionCallingLLM", [])])]),
        ("llm", "MockFunctionCallingLLM", []),
    ])])
    assert {s.trace_id for s in root.walk()} == {root.trace_id}


async def test_sequential_runs_in_one_task_are_separate_traces(recorder, handler):
    """Workflow.run leaves LlamaIndex's active span id set in the caller; the next run must not
    nest under the finished one."""
    for i in range(2):
        llm = MockFunctionCallingLLM(response_generator=scripted(answer(f"hi {i}")))
        await FunctionAgent(llm=llm, tools=[]).run(f"hello {i}")
    roots = recorder.tree()
    assert [shape(r) for r in roots] == [("agent", "Agent", [("llm", "MockFunctionCallingLLM", [])])] * 2
    assert roots[0].trace_id != roots[1].trace_id


class _Doubled(Event):
    value: int


class _Doubler(Workflow):
    @step
    async def double(self, ev: StartEvent) -> _Doubled:
        return _Doubled(value=ev.get("n") * 2)

    @step
    async def describe(self, ev: _Doubled) -> StopEvent:
        from llama_index.core import Settings

        text = (await Settings.llm.acomplete(f"describe {ev.value}")).text
        return StopEvent(result={"value": ev.value, "text": text})


async def test_plain_workflow_steps_are_chains(recorder, handler):
    result = await _Doubler().run(n=4)
    (root,) = recorder.tree()
    assert shape(root) == ("chain", "_Doubler", [
        ("chain", "_Doubler.double", []), ("chain", "_Doubler.describe", [("llm", "MockLLM", [])]),
    ])
    assert root.output == result == {"value": 8, "text": "describe 8"}
    assert root.input == "StartEvent(n=4)"
    assert root.children[0].output == "_Doubled(value=8)"
    assert handler.tracked_spans == 0


async def test_agent_workflow_names_the_acting_agent(recorder, handler):
    from llama_index.core.agent.workflow import AgentWorkflow

    llm = MockFunctionCallingLLM(response_generator=scripted(call_add(1, 2), answer("3")))
    math = FunctionAgent(name="math", description="Adds numbers.", tools=[FunctionTool.from_defaults(add)], llm=llm)
    await AgentWorkflow(agents=[math]).run("1 + 2?")

    (root,) = recorder.tree()
    assert shape(root) == ("agent", "AgentWorkflow", [
        ("llm", "MockFunctionCallingLLM", []), ("tool", "add", []), ("llm", "MockFunctionCallingLLM", []),
    ])
    assert [c.attributes.get(A.AGENT_NAME) for c in root.children] == ["math", None, "math"]
    assert root.output == "3"


def test_chat_engine_stream(recorder, handler):
    from llama_index.core.chat_engine import SimpleChatEngine

    response = SimpleChatEngine.from_defaults().stream_chat("hello")
    text = "".join(response.response_gen)
    (root,) = recorder.tree()
    assert shape(root) == ("chain", "SimpleChatEngine.stream_chat", [("llm", "MockLLM", [])])
    assert root.input == "hello" and root.output is None  # returned before the stream was read
    llm = root.children[0]
    # the engine reads the LLM stream on a thread of its own: the llm span closes when that read ends
    assert llm.output == text and llm.attributes[A.STREAMING] is True
