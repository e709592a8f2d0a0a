"""instrument()/uninstrument(), bounded state, content capture off, handlers on a child dispatcher."""

from __future__ import annotations

from li_helpers import add
from llama_index.core import Document, VectorStoreIndex
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


def test_no_state_left_after_500_runs(recorder, handler):
    """Every kind of run, completed 500 times: retrieval with skipped inner spans, full queries,
    read streams, nested LLM calls, failing tools. The handler keeps nothing."""
    engine = VectorStoreIndex.from_documents([Document(text="alpha"), Document(text="beta")]).as_query_engine()
    retriever = engine.retriever
    streaming = MockFunctionCallingLLM(response_generator=lambda m, **kw: iter([ChatMessage(role="assistant", content="x")]))
    chatty = MockFunctionCallingLLM()
    tool = FunctionTool.from_defaults(add)
    runs = [
        lambda: engine.query("q"),
        lambda: retriever.retrieve("q"),
        lambda: list(streaming.stream_chat(USER)),
        lambda: chatty.chat(USER),
        lambda: tool.call(a=-1, b=1),  # raises inside the tool span
    ]
    for i in range(500):
        try:
            runs[i % len(runs)]()
        except ValueError:
            pass
    assert handler.tracked_spans == 0
    assert handler.open_spans == {}
    spans = recorder.spans()
    roots = [s for s in spans if s.parent_span_id is None]
    assert len(roots) == 501  # 500 runs + building the index
    assert all(s.status in ("ok", "error") for s in spans)
    assert sum(s.status == "error" for s in spans) == 100


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


def test_handlers_on_a_child_dispatcher(recorder):
    """The public classes work on any dispatcher; here the one LlamaIndex's LLM callbacks use."""
    child = get_dispatcher("llama_index.core.llms.callbacks")
    span_handler = TracewireSpanHandler()
    event_handler = TracewireEventHandler(span_handler=span_handler)
    # spans of LLM methods are opened on the root dispatcher; attach the span handler there too
    root = get_dispatcher()
    root.add_span_handler(span_handler)
    child.add_event_handler(event_handler)
    try:
        MockLLM().complete("hello")
    finally:
        root.span_handlers = [h for h in root.span_handlers if h is not span_handler]
        child.event_handlers = [h for h in child.event_handlers if h is not event_handler]
    (span,) = recorder.spans()
    assert shape(span) == ("llm", "MockLLM", []) and span.output == "hello"
    assert span_handler.tracked_spans == 0
