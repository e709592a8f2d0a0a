"""An LCEL RAG chain: retriever over an in-memory vector store, prompt, chat model, parser."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

import tracewire
from tests.conftest import Recorder, shape
from tests.langchain.lc_fakes import ChatScripted, usage
from tracewire.integrations.langchain import TracewireCallbackHandler
from tracewire.model import attributes as A

DOCS = [
    Document("Paris is the capital of France.", id="d-paris", metadata={"source": "atlas", "page": 3}),
    Document("Berlin is the capital of Germany.", id="d-berlin", metadata={"source": "atlas", "page": 7}),
]


def answer(messages: list[BaseMessage]) -> AIMessage:
    context = str(messages[0].content).removeprefix("Context: ")
    return AIMessage(f"From the context: {context}", usage_metadata=usage(40, 8))


def rag_chain() -> tuple[object, object]:
    # the store is queried with the exact text of a document, so the fake embedding finds it
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_documents(DOCS)
    retriever = store.as_retriever(search_kwargs={"k": 1})
    prompt = ChatPromptTemplate.from_messages([("system", "Context: {context}"), ("user", "{question}")])
    format_docs = RunnableLambda(lambda docs: "\n".join(d.page_content for d in docs), name="format_docs")
    chain = ({"context": retriever | format_docs, "question": RunnablePassthrough()}
             | prompt | ChatScripted(respond=answer) | StrOutputParser())
    return chain, retriever


def test_lcel_rag_chain_tree_with_retriever_query_and_documents(recorder: Recorder) -> None:
    chain, _ = rag_chain()
    out = chain.invoke("Berlin is the capital of Germany.", config={"callbacks": [TracewireCallbackHandler()]})
    assert out == "From the context: Berlin is the capital of Germany."

    (root,) = recorder.tree()
    assert shape(root) == ("chain", "RunnableSequence", [
        ("chain", "RunnableParallel<context,question>", [
            ("chain", "RunnableSequence", [
                ("retriever", "VectorStoreRetriever", []),
                ("chain", "format_docs", []),
            ]),
            ("chain", "RunnablePassthrough", []),
        ]),
        ("chain", "ChatPromptTemplate", []),
        ("llm", "ChatScripted", []),
        ("chain", "StrOutputParser", []),
    ])
    retriever = next(s for s in root.walk() if s.kind == "retriever")
    assert retriever.input == {"query": "Berlin is the capital of Germany."}
    assert retriever.output == [{"id": "d-berlin", "metadata": {"source": "atlas", "page": 7},
                                 "content": "Berlin is the capital of Germany."}]
    assert retriever.attributes[A.DOCUMENT_COUNT] == 1
    prompt, llm = root.children[1], root.children[2]
    assert prompt.output == [{"role": "system", "content": "Context: Berlin is the capital of Germany."},
                             {"role": "user", "content": "Berlin is the capital of Germany."}]
    assert llm.input == prompt.output
    assert llm.attributes[A.USAGE_INPUT_TOKENS] == 40 and llm.attributes[A.USAGE_OUTPUT_TOKENS] == 8
    assert root.output == out
    assert all(s.status == "ok" for s in root.walk())


def test_retriever_scores_and_capture_off(tmp_path: object, monkeypatch: object) -> None:
    from tracewire.sinks.memory import MemorySink

    sink = MemorySink()
    client = tracewire.init(sink=[sink], flush_interval=0.01, capture_content=False)
    _, retriever = rag_chain()
    retriever.invoke("Paris is the capital of France.", config={"callbacks": [TracewireCallbackHandler()]})
    client.flush(10)
    (span,) = tracewire.read.fold.fold(sink.events)
    assert span.kind == "retriever" and span.attributes[A.DOCUMENT_COUNT] == 1
    assert span.input is None and span.output is None  # capture off: no query, no documents


def test_document_score_from_metadata(recorder: Recorder) -> None:
    from langchain_core.retrievers import BaseRetriever

    class ScoredRetriever(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: object) -> list[Document]:
            return [Document("x", id="a", metadata={"score": 0.93})]

    ScoredRetriever().invoke("q", config={"callbacks": [TracewireCallbackHandler()]})
    (span,) = recorder.spans()
    assert span.output == [{"id": "a", "metadata": {"score": 0.93}, "content": "x", "score": 0.93}]


def test_failing_retriever_in_an_lcel_chain(recorder: Recorder) -> None:
    from langchain_core.retrievers import BaseRetriever

    class OfflineRetriever(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: object) -> list[Document]:
            raise ConnectionError("vector store unreachable")

    prompt = ChatPromptTemplate.from_messages([("system", "Context: {context}"), ("user", "{question}")])
    format_docs = RunnableLambda(lambda docs: "\n".join(d.page_content for d in docs), name="format_docs")
    chain = ({"context": OfflineRetriever() | format_docs, "question": RunnablePassthrough()}
             | prompt | ChatScripted(respond=answer) | StrOutputParser())
    handler = TracewireCallbackHandler()
    with pytest.raises(ConnectionError, match="vector store unreachable"):
        chain.invoke("Where is Paris?", config={"callbacks": [handler]})

    (root,) = recorder.tree()
    # the failure stops the chain at the retriever: no format_docs, prompt, model or parser run
    assert shape(root) == ("chain", "RunnableSequence", [("chain", "RunnableParallel<context,question>", ANY)])
    (parallel,) = root.children
    # the parallel's branches run on threads: either may start first
    passthrough, branch = sorted(parallel.children, key=lambda s: s.name)
    assert [shape(branch), shape(passthrough)] == [
        ("chain", "RunnableSequence", [("retriever", "OfflineRetriever", [])]), ("chain", "RunnablePassthrough", []),
    ]
    (retriever,) = branch.children
    assert retriever.parent_span_id == branch.span_id and branch.parent_span_id == parallel.span_id
    assert retriever.status == "error" and retriever.input == {"query": "Where is Paris?"}
    assert retriever.error["type"] == "ConnectionError" and retriever.error["message"] == "vector store unreachable"
    assert "_get_relevant_documents" in retriever.error["stacktrace"]
    assert retriever.output is None and A.DOCUMENT_COUNT not in retriever.attributes
    assert [e["type"] for e in recorder.events() if e["span_id"] == retriever.span_id] == [
        "retriever.start", "retriever.error",
    ]
    # the error travels up through every enclosing chain; the sibling branch finished on its own
    for span in (branch, parallel, root):
        assert span.status == "error" and span.error["type"] == "ConnectionError"
    assert passthrough.status == "ok" and passthrough.output == "Where is Paris?"
    assert handler.open_runs == 0
