"""The Vertex AI Agent Builder wrapper against the real GAPIC clients: sync over the REST transport
to a local HTTP server, async over grpc.aio to an in-process gRPC server."""

from __future__ import annotations

import gc
import inspect
from typing import Any

import pytest
from google.api_core import exceptions, rest_streaming
from google.api_core.grpc_helpers_async import _WrappedUnaryStreamCall

from tests.conftest import Recorder, shape
from tracewire.integrations.vertex import extract as T
from tracewire.integrations.vertex import wrap
from tracewire.model import attributes as A
from tracewire.read.fold import SpanView
from tracewire.testing.discoveryengine_server import (
    ANSWER,
    CONVERSATION,
    DEMO_ANSWER,
    DEMO_QUERY,
    DEMO_STREAM,
    DEMO_SUMMARY,
    ENGINE,
    PROJECT,
    SERVING_CONFIG,
    SESSION,
    SKIPPED_TEXT,
    Fault,
    GrpcAioServer,
    RestServer,
    demo_answer,
    demo_handlers,
    skipped_answer,
    skipped_converse,
    types,
)

ALL = ["v1", "v1beta", "v1alpha"]
STREAMING = ["v1", "v1beta"]  # v1alpha has no StreamAnswerQuery
DOCS = f"{PROJECT}/dataStores/kb-docs/branches/0/documents"

ANSWER_SHAPE = ("agent", "support-bot", [
    ("user", "user.input", []),
    ("retriever", "search", []),
    ("retriever", "search", []),
    ("agent", "agent.response", []),
])
STEP_1_DOCS = [
    {"document": f"{DOCS}/keys", "uri": "https://docs.example.com/keys", "title": "Managing API keys",
     "snippets": ["Rotate a key from Settings > API keys."],
     "chunks": [{"chunk": "keys/c0", "content": "Click Rotate to issue a new key.", "relevance_score": 0.8}]},
    {"document": f"{DOCS}/security", "uri": "https://docs.example.com/security", "title": "Security basics",
     "snippets": ["Rotate keys regularly."]},
]
STEP_2_DOCS = [
    {"document": f"{DOCS}/keys-faq", "uri": "https://docs.example.com/keys-faq", "title": "API key FAQ",
     "snippets": ["The old key stays valid for 24 hours."]},
]


def answer_response_output(version: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "text": DEMO_ANSWER,
        "citations": [{"start_index": 0, "end_index": 38, "sources": ["0"]},
                      {"start_index": 45, "end_index": 80, "sources": ["1"]}],
        "references": [
            {"document": f"{DOCS}/keys", "uri": "https://docs.example.com/keys", "title": "Managing API keys",
             "content": ["Click Rotate to issue a new key."]},
            {"document": f"{DOCS}/keys-faq", "uri": "https://docs.example.com/keys-faq", "title": "API key FAQ",
             "content": ["The old key stays valid for 24 hours."]},
        ],
        "related_questions": ["How often should I rotate keys?", "Can I revoke a key immediately?"],
    }
    if version != "v1alpha":  # v1alpha's Answer has no grounding score
        out["grounding_score"] = 0.92
    return out


def answer_request(version: str, session: str = SESSION) -> Any:
    t = types(version)
    return t.AnswerQueryRequest(serving_config=SERVING_CONFIG, query=t.Query(text=DEMO_QUERY), session=session,
                                user_pseudo_id="visitor-7")


def only_root(recorder: Recorder) -> SpanView:
    roots = recorder.tree()
    assert len(roots) == 1, [shape(r) for r in roots]
    return roots[0]


def assert_answer_tree(root: SpanView, version: str, method: str) -> None:
    assert shape(root) == ANSWER_SHAPE
    user, step1, step2, response = root.children
    assert {n.framework for n in root.walk()} == {"vertex"}
    assert {n.trace_id for n in root.walk()} == {root.trace_id}
    assert all(n.parent_span_id == root.span_id for n in root.children)
    assert (root.status, root.input, root.output) == ("ok", DEMO_QUERY, DEMO_ANSWER)
    assert (root.session_id, root.user_id) == (SESSION, "visitor-7")
    attrs = {
        A.OPERATION_NAME: "invoke_agent", A.PROVIDER_NAME: "gcp.vertex_ai", A.AGENT_NAME: "support-bot",
        A.AGENT_ID: SERVING_CONFIG, A.CONVERSATION_ID: SESSION, T.METHOD: method, T.ANSWER_STATE: "SUCCEEDED",
        A.RESPONSE_ID: ANSWER,
    }
    if version != "v1alpha":
        attrs[T.GROUNDING_SCORE] = 0.92
    if method == "stream_answer_query":
        attrs[A.STREAMING] = True
        attrs[A.TTFT_MS] = root.attributes.get(A.TTFT_MS)
        assert 0 < attrs[A.TTFT_MS] <= root.duration_ms
    assert root.attributes == attrs
    assert (user.type, user.input, user.status) == ("user.input", DEMO_QUERY, "point")
    assert step1.input == {"query": "rotate API key", "description": "Find the key rotation guide",
                           "thought": "The user asks about API keys; search the admin docs."}
    assert step1.output == STEP_1_DOCS
    assert step1.attributes == {A.STEP: 1, T.STEP_STATE: "SUCCEEDED", A.DOCUMENT_COUNT: 2}
    assert step2.input == {"query": "API key rotation grace period", "description": "Check the grace period",
                           "thought": "Old keys keep working for a while; find how long."}
    assert step2.output == STEP_2_DOCS
    assert step2.attributes == {A.STEP: 2, T.STEP_STATE: "SUCCEEDED", A.DOCUMENT_COUNT: 1}
    assert response.type == "agent.response"
    assert response.output == answer_response_output(version)
    expected_attrs: dict[str, Any] = {T.ANSWER_STATE: "SUCCEEDED"}
    if version != "v1alpha":
        expected_attrs[T.GROUNDING_SCORE] = 0.92
    assert response.attributes == expected_attrs
    assert root.start_ns <= user.start_ns <= step1.start_ns <= response.start_ns <= root.end_ns


CONVERSE_SHAPE = ("agent", "kb-docs", [
    ("user", "user.input", []), ("retriever", "search", []), ("agent", "agent.response", []),
])


def assert_converse_tree(root: SpanView, query: str) -> None:
    assert shape(root) == CONVERSE_SHAPE
    user, search, response = root.children
    assert (root.status, root.input, root.output, root.session_id) == ("ok", query, DEMO_SUMMARY, CONVERSATION)
    assert root.attributes == {
        A.OPERATION_NAME: "invoke_agent", A.PROVIDER_NAME: "gcp.vertex_ai", A.AGENT_NAME: "kb-docs",
        A.AGENT_ID: f"{PROJECT}/dataStores/kb-docs", A.CONVERSATION_ID: CONVERSATION,
        T.METHOD: "converse_conversation",
    }
    assert user.input == query
    assert search.input == {"query": query}
    assert search.output == [{"document": f"{DOCS}/keys", "uri": "https://docs.example.com/keys",
                              "title": "Managing API keys", "snippets": ["Rotate a key from Settings > API keys."]}]
    assert search.attributes == {A.DOCUMENT_COUNT: 1}
    assert response.output == {
        "text": DEMO_SUMMARY,
        "citations": [{"start_index": 0, "end_index": 44, "sources": [0]}],
        "references": [{"document": f"{DOCS}/keys", "uri": "https://docs.example.com/keys",
                        "title": "Managing API keys", "content": ["Click Rotate to issue a new key."]}],
    }


def assert_permission_denied(root: SpanView, exc_type: str, message: str) -> None:
    assert shape(root) == ("agent", "support-bot", [("user", "user.input", [])])
    assert root.status == "error"
    assert root.error is not None
    assert root.error["type"] == f"google.api_core.exceptions.{exc_type}"
    assert (root.error["code"], root.error["grpc_code"]) == (403, "PERMISSION_DENIED")
    assert message in root.error["message"]
    assert root.attributes[A.ERROR_CODE] == 403


@pytest.fixture
def rest(request: pytest.FixtureRequest) -> Any:
    version = getattr(request, "param", "v1")
    with RestServer(version, demo_handlers(version)) as srv:
        yield srv


# ------------------------------------------------------------------ sync, REST transport
@pytest.mark.parametrize("rest", ALL, indirect=True)
def test_answer_query_sync_rest(recorder: Recorder, rest: RestServer) -> None:
    t = types(rest.version)
    plain = rest.client()
    client = wrap(plain)
    resp = client.answer_query(answer_request(rest.version))
    assert isinstance(resp, t.AnswerQueryResponse)
    assert resp == plain.answer_query(answer_request(rest.version))  # what the unwrapped client returns
    assert len(recorder.tree()) == 1
    assert_answer_tree(only_root(recorder), rest.version, "answer_query")


@pytest.mark.parametrize("rest", ALL, indirect=True)
def test_converse_conversation_sync_rest_flattened_fields(recorder: Recorder, rest: RestServer) -> None:
    t = types(rest.version)
    client = wrap(rest.client())
    resp = client.converse_conversation(name=CONVERSATION, query=t.TextInput(input="rotate key?"))
    assert isinstance(resp, t.ConverseConversationResponse)
    assert resp.reply.summary.summary_text == DEMO_SUMMARY
    assert_converse_tree(only_root(recorder), "rotate key?")


@pytest.mark.parametrize("rest", STREAMING, indirect=True)
def test_stream_answer_query_sync_rest(recorder: Recorder, rest: RestServer) -> None:
    t = types(rest.version)
    client = wrap(rest.client())
    stream = client.stream_answer_query(request={
        "serving_config": SERVING_CONFIG, "query": {"text": DEMO_QUERY}, "session": SESSION,
        "user_pseudo_id": "visitor-7",
    })
    assert isinstance(stream, rest_streaming.ResponseIterator)
    messages = list(stream)
    assert all(isinstance(m, t.AnswerQueryResponse) for m in messages)
    assert [m.answer.answer_text for m in messages] == list(DEMO_STREAM)
    assert [m.answer.state for m in messages] == [t.Answer.State.STREAMING, t.Answer.State.SUCCEEDED]
    assert_answer_tree(only_root(recorder), rest.version, "stream_answer_query")


@pytest.mark.parametrize("rest", ALL, indirect=True)
def test_permission_denied_sync_rest(recorder: Recorder, rest: RestServer) -> None:
    rest.handlers["AnswerQuery"] = Fault("PERMISSION_DENIED", "caller lacks discoveryengine.servingConfigs.answer")
    client = wrap(rest.client())
    with pytest.raises(exceptions.Forbidden) as info:  # REST maps 403 to Forbidden
        client.answer_query(answer_request(rest.version))
    assert type(info.value) is exceptions.Forbidden and info.value.code == 403
    assert_permission_denied(only_root(recorder), "Forbidden", "caller lacks discoveryengine.servingConfigs.answer")


def assert_get_answer_tree(root: SpanView, version: str) -> None:
    # get_answer has no query in its request: no user.input
    assert shape(root) == ("agent", "support-bot", [
        ("retriever", "search", []), ("retriever", "search", []), ("agent", "agent.response", []),
    ])
    step1, step2, response = root.children
    assert (root.status, root.session_id, root.input, root.output) == ("ok", SESSION, None, DEMO_ANSWER)
    attrs: dict[str, Any] = {
        A.OPERATION_NAME: "invoke_agent", A.PROVIDER_NAME: "gcp.vertex_ai", A.AGENT_NAME: "support-bot",
        A.AGENT_ID: ENGINE, A.CONVERSATION_ID: SESSION, T.METHOD: "get_answer", T.ANSWER_STATE: "SUCCEEDED",
        A.RESPONSE_ID: ANSWER,
    }
    if version != "v1alpha":
        attrs[T.GROUNDING_SCORE] = 0.92
    assert root.attributes == attrs
    assert (step1.output, step2.output) == (STEP_1_DOCS, STEP_2_DOCS)
    assert response.output == answer_response_output(version)


@pytest.mark.parametrize("rest", ALL, indirect=True)
def test_get_answer_sync_rest(recorder: Recorder, rest: RestServer) -> None:
    t = types(rest.version)
    resp = wrap(rest.client()).get_answer(name=ANSWER)
    assert isinstance(resp, t.Answer) and resp.name == ANSWER
    assert_get_answer_tree(only_root(recorder), rest.version)


@pytest.mark.parametrize("version", ALL)
async def test_get_answer_async_grpc(recorder: Recorder, version: str) -> None:
    t = types(version)
    async with GrpcAioServer(version, demo_handlers(version)) as srv:
        async with wrap(srv.client()) as client:
            resp = await client.get_answer(request={"name": ANSWER})
    assert isinstance(resp, t.Answer) and resp.name == ANSWER
    assert [(rpc, req.name) for rpc, req in srv.requests] == [("GetAnswer", ANSWER)]
    assert_get_answer_tree(only_root(recorder), version)


# ------------------------------------------------------------------ skipped answers and summaries
ANSWER_SKIPPED = ["OUT_OF_DOMAIN_QUERY_IGNORED", "NO_RELEVANT_CONTENT"]


@pytest.mark.parametrize("rest", ALL, indirect=True)
def test_answer_skipped_reasons(recorder: Recorder, rest: RestServer) -> None:
    t = types(rest.version)
    rest.handlers["AnswerQuery"] = t.AnswerQueryResponse(answer=skipped_answer(rest.version, ANSWER_SKIPPED),
                                                         session=t.Session(name=SESSION))
    resp = wrap(rest.client()).answer_query(answer_request(rest.version))
    assert list(resp.answer.answer_skipped_reasons) == [t.Answer.AnswerSkippedReason[r] for r in ANSWER_SKIPPED]
    root = only_root(recorder)
    assert shape(root) == ("agent", "support-bot", [("user", "user.input", []), ("agent", "agent.response", [])])
    response = root.children[-1]
    assert (root.status, root.output) == ("ok", SKIPPED_TEXT)
    assert response.output == {"text": SKIPPED_TEXT, "skipped_reasons": ANSWER_SKIPPED}
    assert response.attributes == {T.ANSWER_STATE: "SUCCEEDED", T.SKIPPED_REASONS: ANSWER_SKIPPED}
    assert root.attributes[T.SKIPPED_REASONS] == ANSWER_SKIPPED and T.GROUNDING_SCORE not in root.attributes


@pytest.mark.parametrize("version", ALL)
async def test_summary_skipped_reasons_async_grpc(recorder: Recorder, version: str) -> None:
    reasons = ["NON_SUMMARY_SEEKING_QUERY_IGNORED", "ADVERSARIAL_QUERY_IGNORED"]
    handlers = {"ConverseConversation": lambda request: skipped_converse(version, request.query.input, reasons)}
    async with GrpcAioServer(version, handlers) as srv:
        async with wrap(srv.client()) as client:
            resp = await client.converse_conversation(request={"name": CONVERSATION, "query": {"input": "hello"}})
    assert resp.reply.summary.summary_text == SKIPPED_TEXT
    root = only_root(recorder)
    assert shape(root) == ("agent", "kb-docs", [("user", "user.input", []), ("agent", "agent.response", [])])
    response = root.children[-1]
    assert (root.status, root.input, root.output) == ("ok", "hello", SKIPPED_TEXT)
    assert response.output == {"text": SKIPPED_TEXT, "skipped_reasons": reasons}
    assert response.attributes == {T.SKIPPED_REASONS: reasons}
    assert root.attributes == {
        A.OPERATION_NAME: "invoke_agent", A.PROVIDER_NAME: "gcp.vertex_ai", A.AGENT_NAME: "kb-docs",
        A.AGENT_ID: f"{PROJECT}/dataStores/kb-docs", A.CONVERSATION_ID: CONVERSATION,
        T.METHOD: "converse_conversation", T.SKIPPED_REASONS: reasons,
    }


@pytest.mark.parametrize("rest", ALL, indirect=True)
def test_uninstrumented_methods_and_attributes_pass_through(recorder: Recorder, rest: RestServer) -> None:
    t = types(rest.version)
    plain = rest.client()
    client = wrap(plain)
    assert isinstance(client, t.ConversationalSearchServiceClient)
    assert client.transport is plain.transport
    assert client.api_endpoint == plain.api_endpoint
    assert client.session_path("p", "l", "ds", "s") == plain.session_path("p", "l", "ds", "s")
    session = client.get_session(name=SESSION)
    assert isinstance(session, t.Session) and session.name == SESSION
    assert client.get_session == plain.get_session  # the client's own bound method
    assert inspect.signature(client.answer_query) == inspect.signature(plain.answer_query)
    assert hasattr(client, "stream_answer_query") == hasattr(plain, "stream_answer_query")
    with pytest.raises(AttributeError):
        client.no_such_method  # noqa: B018
    client.custom_flag = 1  # attributes set on the wrapper land on the client
    assert plain.custom_flag == 1  # type: ignore[attr-defined]
    with client as entered:
        assert entered is client
    assert recorder.events() == []  # nothing recorded for uninstrumented calls
    assert [rpc for rpc, _ in rest.requests] == ["GetSession"]


def test_session_and_user_from_wrap_and_created_session(recorder: Recorder, rest: RestServer) -> None:
    client = wrap(rest.client(), session_id="chat-9", user_id="u-1", tags=["support"], metadata={"tier": "gold"})
    client.answer_query(answer_request("v1"))
    root = only_root(recorder)
    assert (root.session_id, root.user_id, root.tags, root.metadata) == ("chat-9", "u-1", ["support"], {"tier": "gold"})
    assert {n.session_id for n in root.walk()} == {"chat-9"}
    recorder.sink.clear()
    # `sessions/-` asks the service to create one: the created session becomes the recorded one
    wrap(rest.client()).answer_query(answer_request("v1", session=f"{ENGINE}/sessions/-"))
    root = only_root(recorder)
    assert root.session_id == SESSION and root.attributes[A.CONVERSATION_ID] == SESSION
    assert root.children[-1].session_id == SESSION


def test_content_capture_off_keeps_structure(recorder: Recorder, rest: RestServer) -> None:
    recorder.client.capture_content = False
    wrap(rest.client()).answer_query(answer_request("v1"))
    root = only_root(recorder)
    assert shape(root) == ANSWER_SHAPE
    assert all(n.input is None and n.output is None for n in root.walk())
    assert root.children[1].attributes[A.DOCUMENT_COUNT] == 2


def repeating_stream(version: str) -> list[Any]:
    """A stream whose terminal message carries the whole answer again, not just the last part."""
    t = types(version)
    first = t.AnswerQueryResponse(answer=t.Answer(state=t.Answer.State.STREAMING, answer_text=DEMO_STREAM[0]))
    return [first, t.AnswerQueryResponse(answer=demo_answer(version), session=t.Session(name=SESSION))]


@pytest.mark.parametrize("rest", STREAMING, indirect=True)
def test_stream_terminal_message_repeating_the_answer_is_not_doubled_sync_rest(recorder: Recorder, rest: RestServer) -> None:
    rest.handlers["StreamAnswerQuery"] = repeating_stream(rest.version)
    texts = [m.answer.answer_text for m in wrap(rest.client()).stream_answer_query(answer_request(rest.version))]
    assert texts == [DEMO_STREAM[0], DEMO_ANSWER]
    assert_answer_tree(only_root(recorder), rest.version, "stream_answer_query")  # output == DEMO_ANSWER, once


@pytest.mark.parametrize("version", STREAMING)
async def test_stream_terminal_message_repeating_the_answer_is_not_doubled_async_grpc(
    recorder: Recorder, version: str,
) -> None:
    async with GrpcAioServer(version, {"StreamAnswerQuery": lambda request: repeating_stream(version)}) as srv:
        async with wrap(srv.client()) as client:
            stream = await client.stream_answer_query(answer_request(version))
            texts = [m.answer.answer_text async for m in stream]
    assert texts == [DEMO_STREAM[0], DEMO_ANSWER]
    assert_answer_tree(only_root(recorder), version, "stream_answer_query")


def test_wrap_rejects_what_is_not_a_conversational_search_client(recorder: Recorder, rest: RestServer) -> None:
    from google.auth.credentials import AnonymousCredentials

    t = types("v1")
    search = t.SearchServiceClient(transport=t.services.search_service.transports.SearchServiceRestTransport(
        host=rest.host, url_scheme="http", credentials=AnonymousCredentials()))  # a real client, another service
    for other, name in ((search, "SearchServiceClient"), (object(), "object"), (None, "NoneType")):
        with pytest.raises(TypeError) as info:
            wrap(other)
        assert str(info.value) == f"wrap() takes a ConversationalSearchService client, got {name}"
    assert recorder.events() == []


def test_stream_dropped_early_is_recorded_unfinished(recorder: Recorder, rest: RestServer) -> None:
    stream = wrap(rest.client()).stream_answer_query(answer_request("v1"))
    first = next(stream)
    assert first.answer.answer_text == DEMO_STREAM[0]
    del stream
    gc.collect()
    root = only_root(recorder)
    assert root.status == "ok" and root.output == DEMO_STREAM[0]
    assert root.attributes[A.UNFINISHED] is True
    assert shape(root) == ("agent", "support-bot", [("user", "user.input", []), ("agent", "agent.response", [])])


# ------------------------------------------------------------------ async, grpc.aio
@pytest.mark.parametrize("version", ALL)
async def test_answer_and_converse_async_grpc(recorder: Recorder, version: str) -> None:
    t = types(version)
    async with GrpcAioServer(version, demo_handlers(version)) as srv:
        async with wrap(srv.client()) as client:  # the wrapped async client as a context manager
            assert isinstance(client, t.ConversationalSearchServiceAsyncClient)
            resp = await client.answer_query(request=answer_request(version))
            assert isinstance(resp, t.AnswerQueryResponse)
            assert_answer_tree(only_root(recorder), version, "answer_query")
            recorder.sink.clear()
            conv = await client.converse_conversation(
                request={"name": CONVERSATION, "query": {"input": "rotate key?"}})
            assert isinstance(conv, t.ConverseConversationResponse)
            assert_converse_tree(only_root(recorder), "rotate key?")


@pytest.mark.parametrize("version", STREAMING)
async def test_stream_answer_query_async_grpc(recorder: Recorder, version: str) -> None:
    t = types(version)
    async with GrpcAioServer(version, demo_handlers(version), chunk_delay=0.005) as srv:
        async with wrap(srv.client()) as client:
            stream = await client.stream_answer_query(answer_request(version))
            assert isinstance(stream, _WrappedUnaryStreamCall)
            messages = [m async for m in stream]
            assert all(isinstance(m, t.AnswerQueryResponse) for m in messages)
            assert [m.answer.answer_text for m in messages] == list(DEMO_STREAM)
            assert await stream.code() is not None  # the call's own methods still answer
    assert_answer_tree(only_root(recorder), version, "stream_answer_query")


@pytest.mark.parametrize("version", ALL)
async def test_permission_denied_async_grpc(recorder: Recorder, version: str) -> None:
    handlers = {"AnswerQuery": Fault("PERMISSION_DENIED", "caller lacks discoveryengine.servingConfigs.answer")}
    async with GrpcAioServer(version, handlers) as srv:
        async with wrap(srv.client()) as client:
            with pytest.raises(exceptions.PermissionDenied) as info:
                await client.answer_query(answer_request(version))
    assert type(info.value) is exceptions.PermissionDenied
    assert_permission_denied(only_root(recorder), "PermissionDenied", "caller lacks discoveryengine.servingConfigs.answer")


async def test_stream_fails_mid_way_async_grpc(recorder: Recorder) -> None:
    t = types("v1")
    first = t.AnswerQueryResponse(answer=t.Answer(state=t.Answer.State.STREAMING, answer_text=DEMO_STREAM[0]))
    handlers = {"StreamAnswerQuery": [first, Fault("PERMISSION_DENIED", "quota project denied")]}
    async with GrpcAioServer("v1", handlers) as srv:
        async with wrap(srv.client()) as client:
            stream = await client.stream_answer_query(answer_request("v1"))
            seen = []
            with pytest.raises(exceptions.PermissionDenied):
                async for m in stream:
                    seen.append(m.answer.answer_text)
    assert seen == [DEMO_STREAM[0]]
    root = only_root(recorder)
    assert_permission_denied(root, "PermissionDenied", "quota project denied")
    assert root.output == DEMO_STREAM[0]  # what arrived before the failure


def test_nests_under_enclosing_span_and_session(recorder: Recorder, rest: RestServer) -> None:
    import tracewire

    client = wrap(wrap(rest.client()))  # wrapping twice records once
    with tracewire.session(session_id="desk-1"), tracewire.span("agent", "support-desk"):
        client.answer_query(answer_request("v1"))
    root = only_root(recorder)
    assert shape(root) == ("agent", "support-desk", [ANSWER_SHAPE])
    inner = root.children[0]
    assert inner.session_id == "desk-1"  # the user's session wins over the resource name
    assert inner.attributes[A.CONVERSATION_ID] == SESSION
    assert inner.user_id == "visitor-7"


async def test_async_stream_read_until_eof(recorder: Recorder) -> None:
    from grpc import aio

    async with GrpcAioServer("v1", demo_handlers("v1")) as srv:
        async with wrap(srv.client()) as client:
            stream = await client.stream_answer_query(answer_request("v1"))
            texts = []
            while (message := await stream.read()) is not aio.EOF:
                texts.append(message.answer.answer_text)
    assert texts == list(DEMO_STREAM)
    assert_answer_tree(only_root(recorder), "v1", "stream_answer_query")
