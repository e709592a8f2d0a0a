"""instrument()/uninstrument(), bounded state and eviction, content capture off, handlers on child dispatchers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from li_helpers import add, answer, call_add
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool

import tracewire
from tests.conftest import shape
from tracewire.integrations.llamaindex import (
    TracewireEventHandler,
    TracewireSpanHandler,
    instrument,
    uninstrument,
)
from tracewire.model import attributes as A
from tracewire.sinks.memory import MemorySink

USER = [ChatMessage(role="user", content="hi")]


def _mine(handlers: list) -> list:
    return [h for h in handlers if isinstance(h, (TracewireSpanHandler, TracewireEventHandler))]


def test_instrument_twice_records_once_and_uninstrument_stops(recorder):
    root = get_dispatcher()
    try:
        first = instrument()
        assert instrument() is first
        assert len(_mine(root.span_handlers)) == 1 and len(_mine(root.event_handlers)) == 1
        MockLLM().complete("once")
        (span,) = recorder.spans()
        assert shape(span) == ("llm", "MockLLM", [])
        assert [e["type"] for e in recorder.events()] == ["llm.start", "llm.end"]
    finally:
        uninstrument()
    uninstrument()  # a second call is a no-op
    assert _mine(root.span_handlers) == [] and _mine(root.event_handlers) == []
    MockLLM().complete("not recorded")
    MockFunctionCallingLLM().chat(USER)
    assert len(recorder.events()) == 2

    # instrumenting again after uninstrument records again, with a fresh handler
    try:
        assert instrument() is not first
        MockLLM().complete("again")
        assert len(recorder.events()) == 4
    finally:
        uninstrument()


def _add_then_answer(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
    """Stateless script, so one agent serves every run: call the tool, then answer with its result."""
    last = messages[-1]
    return answer(f"sum {last.content}") if last.role == "tool" else call_add(2, 3)


def test_no_state_left_after_500_runs(recorder, handler):
    """Every kind of run, completed 500 times: retrieval with skipped inner spans, full queries,
    read streams, nested LLM calls, failing tools, agent workflows (step spans, tool calls, an
    event loop per run). The handler keeps nothing."""
    engine = VectorStoreIndex.from_documents([Document(text="alpha"), Document(text="beta")]).as_query_engine()
    retriever = engine.retriever
    streaming = MockFunctionCallingLLM(response_generator=lambda m, **kw: iter([ChatMessage(role="assistant", content="x")]))
    chatty = MockFunctionCallingLLM()
    tool = FunctionTool.from_defaults(add)
    agent = FunctionAgent(tools=[tool], llm=MockFunctionCallingLLM(response_generator=_add_then_answer))

    async def run_agent() -> Any:
        return await agent.run("2 + 3?")  # a workflow starts its task inside a running loop

    runs = [
        lambda: engine.query("q"),
        lambda: retriever.retrieve("q"),
        lambda: list(streaming.stream_chat(USER)),
        lambda: chatty.chat(USER),
        lambda: tool.call(a=-1, b=1),  # raises inside the tool span
        lambda: asyncio.run(run_agent()),
    ]
    results = []
    for i in range(500):
        try:
            results.append(runs[i % len(runs)]())
        except ValueError:
            pass
    assert handler.tracked_spans == 0
    assert handler.open_spans == {}
    spans = recorder.spans()
    roots = [s for s in spans if s.parent_span_id is None]
    assert len(roots) == 501  # 500 runs + building the index
    assert all(s.status in ("ok", "error") for s in spans)
    agent_runs = len(range(5, 500, len(runs)))
    assert sum(s.status == "error" for s in spans) == len(range(4, 500, len(runs)))
    agents = [r for r in recorder.tree() if r.kind == "agent"]
    assert len(agents) == agent_runs == sum(str(r) == "sum 5" for r in results)
    assert [shape(r) for r in agents] == [("agent", "Agent", [
        ("llm", "MockFunctionCallingLLM", []), ("tool", "add", []), ("llm", "MockFunctionCallingLLM", []),
    ])] * agent_runs
    assert len({r.trace_id for r in agents}) == agent_runs


def test_capture_content_off(tmp_path, monkeypatch, handler):
    monkeypatch.chdir(tmp_path)
    sink = MemorySink()
    client = tracewire.init(sink=[sink], flush_interval=0.01, capture_content=False)
    MockLLM().complete("secret prompt")
    FunctionTool.from_defaults(add).call(a=1, b=2)
    VectorStoreIndex.from_documents([Document(text="secret text")]).as_retriever().retrieve("secret query")
    assert client.flush(10)
    events = sink.events
    assert {e["type"] for e in events} >= {"llm.start", "llm.end", "tool.end", "retriever.end", "embedding.end"}
    assert not any("input" in e or "output" in e for e in events)
    assert "secret" not in str(events)
    assert client.stats()["internal_errors"] == {}


@contextmanager
def _attached(dispatcher: Any, handler: TracewireSpanHandler | TracewireEventHandler) -> Iterator[None]:
    attr = "span_handlers" if isinstance(handler, TracewireSpanHandler) else "event_handlers"
    setattr(dispatcher, attr, [*getattr(dispatcher, attr), handler])
    try:
        yield
    finally:
        setattr(dispatcher, attr, [h for h in getattr(dispatcher, attr) if h is not handler])


def test_both_handlers_on_one_child_dispatcher(recorder):
    """Embeddings open their span and send their events on one child dispatcher: both handlers
    there record them, and nothing dispatched elsewhere (an LLM call) is seen."""
    child = get_dispatcher("llama_index.core.base.embeddings.base")
    span_handler = TracewireSpanHandler()
    with _attached(child, span_handler), _attached(child, TracewireEventHandler(span_handler=span_handler)):
        MockEmbedding(embed_dim=4, model_name="mock-embed", embed_batch_size=2).get_text_embedding_batch(["a", "b", "c"])
        MockLLM().complete("not on this dispatcher")
    (span,) = recorder.tree()
    assert shape(span) == ("embedding", "MockEmbedding", []) and span.status == "ok"
    a = span.attributes
    assert (a[A.REQUEST_MODEL], a[A.EMBEDDING_COUNT], a[A.EMBEDDINGS_DIMENSION]) == ("mock-embed", 3, 4)
    assert span.input == ["a", "b", "c"]
    assert span_handler.tracked_spans == 0


def test_handlers_on_the_child_dispatchers_an_llm_uses(recorder):
    """An LLM's span is opened on its class's module dispatcher and its events are sent on
    `llama_index.core.llms.callbacks`: with the handlers there (not on the root), a streamed call
    still ends when its stream does, with the streamed text."""
    span_handler = TracewireSpanHandler()
    with _attached(get_dispatcher("llama_index.core.llms.mock"), span_handler), \
            _attached(get_dispatcher("llama_index.core.llms.callbacks"), TracewireEventHandler(span_handler=span_handler)):
        stream = MockLLM().stream_complete("hello there")
        assert span_handler.tracked_spans == 1  # LlamaIndex's span has exited; the end event closes ours
        text = "".join(c.delta or "" for c in stream)
    (span,) = recorder.tree()
    assert shape(span) == ("llm", "MockLLM", []) and span.status == "ok"
    assert span.input == "hello there" and span.output == text == "hello there"
    assert span.attributes[A.STREAMING] is True and A.TTFT_MS in span.attributes
    assert span_handler.tracked_spans == 0


def _never_read() -> Any:
    """A streamed chat whose stream is never read: LlamaIndex never closes its span."""
    llm = MockFunctionCallingLLM(response_generator=lambda m, **kw: iter([ChatMessage(role="assistant", content="x")]))
    return llm.stream_chat(USER)


def test_span_never_closed_is_evicted_beyond_max_open(recorder):
    try:
        handler = instrument(max_open_spans=2)
        stale, pending = _never_read(), _never_read()
        assert handler.tracked_spans == 2
        MockLLM().complete("third")  # a third open span: the oldest goes
        assert handler.tracked_spans == 1
        assert "".join(c.delta or "" for c in stale) == "x"  # its end comes after the eviction: ignored
        assert handler.tracked_spans == 1
    finally:
        uninstrument()  # closes `pending`
    first, second, third = recorder.spans()
    assert [(s.kind, s.status) for s in (first, second, third)] == [("llm", "error"), ("llm", "error"), ("llm", "ok")]
    assert first.error["type"] == second.error["type"] == "tracewire.Unfinished"
    assert [e["type"] for e in recorder.events() if e["span_id"] == first.span_id] == ["llm.start", "llm.error"]
    assert third.output == "third"
    del pending


def test_span_never_closed_is_evicted_after_ttl(recorder):
    handler = TracewireSpanHandler(span_ttl=0.05)
    root = get_dispatcher()
    root.add_span_handler(handler)
    try:
        stale = _never_read()
        time.sleep(0.1)
        MockLLM().complete("later")  # a new span is when expired ones are looked for
        assert handler.tracked_spans == 0
    finally:
        root.span_handlers = [h for h in root.span_handlers if h is not handler]
    first, second = recorder.spans()
    assert first.status == "error" and first.error["type"] == "tracewire.Unfinished"
    assert second.status == "ok" and second.output == "later"
    del stale


@pytest.mark.parametrize("options", [{"max_open_spans": 0}, {"span_ttl": 0}, {"span_ttl": "1h"}])
def test_bad_eviction_options_are_named(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        TracewireSpanHandler(**options)
