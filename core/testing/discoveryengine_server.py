"""Local fakes of Vertex AI Agent Builder's ConversationalSearchService, for tests and offline examples.

Both speak the real wire formats, so the real GAPIC clients run unchanged against them:

- `RestServer`: an HTTP server on 127.0.0.1 speaking the REST transcoding (`:converse`, `:answer`,
  `:streamAnswer` as a JSON array, `GET .../answers/*`, sessions, conversations). Its `client()` is
  a sync `ConversationalSearchServiceClient` over the REST transport.
- `GrpcAioServer`: an in-process `grpc.aio` server. Its `client()` is a
  `ConversationalSearchServiceAsyncClient` over a `grpc.aio` channel. (`AsyncClient(transport="rest")`
  is broken in the library: it builds the sync transport.)

Replies come from handlers keyed by RPC name (`"AnswerQuery"`, `"StreamAnswerQuery"`, …): a response
(message or dict), a list of responses for a stream, a `Fault`, or a callable `(request) -> any of
those`. A stream may end with a `Fault` (gRPC only) to fail mid-stream. Every request is kept as
`(rpc, request message)` in `.requests`. `demo_handlers(version)` is a ready scripted knowledge base.
This module holds that knowledge base and is where the fakes are imported from; the servers are
`discoveryengine_fakes`, the scripted service and its wire helpers `discoveryengine_service`.

    with RestServer("v1", demo_handlers("v1")) as srv:
        client = srv.client()

google-cloud-discoveryengine and grpcio are imported lazily, so importing this module is free.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# The fakes and the service's public names are imported from here (tests, examples).
from tracewire.testing.discoveryengine_fakes import GrpcAioServer as GrpcAioServer
from tracewire.testing.discoveryengine_fakes import RestServer as RestServer
from tracewire.testing.discoveryengine_fakes import iter_requests as iter_requests
from tracewire.testing.discoveryengine_service import VERSIONS as VERSIONS
from tracewire.testing.discoveryengine_service import Fault as Fault
from tracewire.testing.discoveryengine_service import Handler, types

PROJECT = "projects/demo-project/locations/global/collections/default_collection"
ENGINE = f"{PROJECT}/engines/support-bot"
SERVING_CONFIG = f"{ENGINE}/servingConfigs/default_search"
SESSION = f"{ENGINE}/sessions/s-1001"
CONVERSATION = f"{PROJECT}/dataStores/kb-docs/conversations/c-42"
ANSWER = f"{SESSION}/answers/a-1"

DEMO_QUERY = "How do I rotate my API key?"
DEMO_ANSWER = "Open Settings > API keys, click Rotate, then update your clients within 24 hours."
DEMO_STREAM = ("Open Settings > API keys, click Rotate, ", "then update your clients within 24 hours.")
DEMO_SUMMARY = "Keys are rotated from Settings > API keys [1]."


def demo_answer(version: str = "v1", *, text: str = DEMO_ANSWER, name: str = ANSWER) -> Any:
    """A two-step answer: each step one search action with observations; citations, references,
    related questions, grounding score (where the version has it)."""
    t = types(version)
    A = t.Answer
    Step, Action, Obs = A.Step, A.Step.Action, A.Step.Action.Observation

    def result(doc: str, title: str, snippet: str, chunk: str | None = None) -> Any:
        r = Obs.SearchResult(
            document=f"{PROJECT}/dataStores/kb-docs/branches/0/documents/{doc}",
            uri=f"https://docs.example.com/{doc}", title=title,
            snippet_info=[Obs.SearchResult.SnippetInfo(snippet=snippet, snippet_status="SUCCESS")],
        )
        if chunk:
            r.chunk_info = [Obs.SearchResult.ChunkInfo(chunk=f"{doc}/c0", content=chunk, relevance_score=0.8)]
        return r

    steps = [
        Step(state=Step.State.SUCCEEDED, description="Find the key rotation guide",
             thought="The user asks about API keys; search the admin docs.",
             actions=[Action(search_action=Action.SearchAction(query="rotate API key"),
                             observation=Obs(search_results=[
                                 result("keys", "Managing API keys", "Rotate a key from Settings > API keys.",
                                        chunk="Click Rotate to issue a new key."),
                                 result("security", "Security basics", "Rotate keys regularly."),
                             ]))]),
        Step(state=Step.State.SUCCEEDED, description="Check the grace period",
             thought="Old keys keep working for a while; find how long.",
             actions=[Action(search_action=Action.SearchAction(query="API key rotation grace period"),
                             observation=Obs(search_results=[
                                 result("keys-faq", "API key FAQ", "The old key stays valid for 24 hours."),
                             ]))]),
    ]
    ref = A.Reference
    info = ref.UnstructuredDocumentInfo
    fields: dict[str, Any] = {
        "name": name, "state": A.State.SUCCEEDED, "answer_text": text,
        "citations": [A.Citation(start_index=0, end_index=38, sources=[A.CitationSource(reference_id="0")]),
                      A.Citation(start_index=45, end_index=80, sources=[A.CitationSource(reference_id="1")])],
        "references": [
            ref(unstructured_document_info=info(
                document=f"{PROJECT}/dataStores/kb-docs/branches/0/documents/keys",
                uri="https://docs.example.com/keys", title="Managing API keys",
                chunk_contents=[info.ChunkContent(content="Click Rotate to issue a new key.")])),
            ref(unstructured_document_info=info(
                document=f"{PROJECT}/dataStores/kb-docs/branches/0/documents/keys-faq",
                uri="https://docs.example.com/keys-faq", title="API key FAQ",
                chunk_contents=[info.ChunkContent(content="The old key stays valid for 24 hours.")])),
        ],
        "related_questions": ["How often should I rotate keys?", "Can I revoke a key immediately?"],
        "steps": steps,
    }
    if "grounding_score" in A.meta.fields:
        fields["grounding_score"] = 0.92
    return A(**fields)


def demo_handlers(version: str = "v1") -> dict[str, Handler]:
    """Replies for converse, answer, streamed answer, get answer and get session."""
    t = types(version)

    def answer(request: Any) -> Any:
        return t.AnswerQueryResponse(answer=demo_answer(version), session=t.Session(name=SESSION),
                                     answer_query_token="tok-1")

    def stream(request: Any) -> list[Any]:
        state = t.Answer.State
        first = t.AnswerQueryResponse(answer=t.Answer(state=state.STREAMING, answer_text=DEMO_STREAM[0]))
        last = demo_answer(version, text=DEMO_STREAM[1])
        return [first, t.AnswerQueryResponse(answer=last, session=t.Session(name=SESSION))]

    def converse(request: Any) -> Any:
        return demo_converse(version, request.query.input)

    return {
        "ConverseConversation": converse,
        "AnswerQuery": answer,
        "StreamAnswerQuery": stream,
        "GetAnswer": lambda request: demo_answer(version, name=request.name),
        "GetSession": lambda request: t.Session(name=request.name, state=t.Session.State.IN_PROGRESS),
    }


SKIPPED_TEXT = "A summary could not be generated for your search query. Here are some search results."


def skipped_answer(version: str = "v1", reasons: Iterable[str] = ("OUT_OF_DOMAIN_QUERY_IGNORED", "NO_RELEVANT_CONTENT"),
                   *, name: str = ANSWER) -> Any:
    """An answer the service declined to generate: the canned text and its skipped reasons (enum names)."""
    t = types(version)
    return t.Answer(name=name, state=t.Answer.State.SUCCEEDED, answer_text=SKIPPED_TEXT,
                    answer_skipped_reasons=[t.Answer.AnswerSkippedReason[r] for r in reasons])


def skipped_converse(version: str, query: str, reasons: Iterable[str] = ("NON_SUMMARY_SEEKING_QUERY_IGNORED",)) -> Any:
    """A converse reply whose summary was skipped (enum names), with no search results."""
    t = types(version)
    summary_type = t.SearchResponse.Summary
    summary = summary_type(summary_text=SKIPPED_TEXT,
                           summary_skipped_reasons=[summary_type.SummarySkippedReason[r] for r in reasons])
    conv = t.Conversation(name=CONVERSATION, state=t.Conversation.State.IN_PROGRESS, messages=[
        t.ConversationMessage(user_input=t.TextInput(input=query)),
        t.ConversationMessage(reply=t.Reply(summary=summary)),
    ])
    return t.ConverseConversationResponse(reply=t.Reply(summary=summary), conversation=conv)


def demo_converse(version: str, query: str) -> Any:
    t = types(version)
    summary_type = t.SearchResponse.Summary
    doc = t.Document(
        name=f"{PROJECT}/dataStores/kb-docs/branches/0/documents/keys", id="keys",
        derived_struct_data={"link": "https://docs.example.com/keys", "title": "Managing API keys",
                             "snippets": [{"snippet": "Rotate a key from Settings > API keys."}]},
    )
    summary = summary_type(
        summary_text=DEMO_SUMMARY,
        summary_with_metadata=summary_type.SummaryWithMetadata(
            summary=DEMO_SUMMARY,
            citation_metadata=summary_type.CitationMetadata(citations=[summary_type.Citation(
                start_index=0, end_index=44, sources=[summary_type.CitationSource(reference_index=0)])]),
            references=[summary_type.Reference(
                title="Managing API keys", document=doc.name, uri="https://docs.example.com/keys",
                chunk_contents=[summary_type.Reference.ChunkContent(content="Click Rotate to issue a new key.")])],
        ),
    )
    conv = t.Conversation(name=CONVERSATION, state=t.Conversation.State.IN_PROGRESS, messages=[
        t.ConversationMessage(user_input=t.TextInput(input=query)),
        t.ConversationMessage(reply=t.Reply(summary=summary)),
    ])
    return t.ConverseConversationResponse(
        reply=t.Reply(summary=summary), conversation=conv,
        search_results=[t.SearchResponse.SearchResult(id="keys", document=doc)],
    )
