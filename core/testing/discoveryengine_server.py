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

    with RestServer("v1", demo_handlers("v1")) as srv:
        client = srv.client()

google-cloud-discoveryengine and grpcio are imported lazily, so importing this module is free.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

VERSIONS = ("v1", "v1beta", "v1alpha")
PROJECT = "projects/demo-project/locations/global/collections/default_collection"
ENGINE = f"{PROJECT}/engines/support-bot"
SERVING_CONFIG = f"{ENGINE}/servingConfigs/default_search"
SESSION = f"{ENGINE}/sessions/s-1001"
CONVERSATION = f"{PROJECT}/dataStores/kb-docs/conversations/c-42"
ANSWER = f"{SESSION}/answers/a-1"

_HTTP = {
    "INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "INTERNAL": 500,
    "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}


def types(version: str) -> ModuleType:
    """The `google.cloud.discoveryengine_<version>` module."""
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    return importlib.import_module(f"google.cloud.discoveryengine_{version}")


@dataclass
class Fault(Exception):
    """A scripted error: the gRPC status name and message (HTTP code derived for REST)."""

    status: str = "PERMISSION_DENIED"
    message: str = "scripted error"

    @property
    def http_code(self) -> int:
        return _HTTP.get(self.status, 500)


Handler = Any  # response | dict | list | Fault | Callable[[request], any of those]


# RPC name -> (request type, response type, streams?) ; resolved per version
_RPCS: dict[str, tuple[str, str, bool]] = {
    "ConverseConversation": ("ConverseConversationRequest", "ConverseConversationResponse", False),
    "AnswerQuery": ("AnswerQueryRequest", "AnswerQueryResponse", False),
    "StreamAnswerQuery": ("AnswerQueryRequest", "AnswerQueryResponse", True),
    "GetAnswer": ("GetAnswerRequest", "Answer", False),
    "CreateConversation": ("CreateConversationRequest", "Conversation", False),
    "GetConversation": ("GetConversationRequest", "Conversation", False),
    "ListConversations": ("ListConversationsRequest", "ListConversationsResponse", False),
    "DeleteConversation": ("DeleteConversationRequest", "Empty", False),
    "CreateSession": ("CreateSessionRequest", "Session", False),
    "GetSession": ("GetSessionRequest", "Session", False),
    "ListSessions": ("ListSessionsRequest", "ListSessionsResponse", False),
    "DeleteSession": ("DeleteSessionRequest", "Empty", False),
}


class _Service:
    """What both servers share: the version's types, the handlers, the request log."""

    def __init__(self, version: str, handlers: Mapping[str, Handler] | None) -> None:
        self.version = version
        self.t = types(version)
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.requests: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def message_types(self, rpc: str) -> tuple[Any, Any, bool]:
        req, resp, streams = _RPCS[rpc]
        if resp == "Empty":
            from google.protobuf import empty_pb2

            return getattr(self.t, req), empty_pb2.Empty, streams
        return getattr(self.t, req), getattr(self.t, resp), streams

    def reply(self, rpc: str, request: Any) -> Any:
        """The scripted reply: a response message, a list of them (streams), or a Fault."""
        with self._lock:
            self.requests.append((rpc, request))
        if rpc not in self.handlers:
            return Fault("UNIMPLEMENTED", f"no scripted reply for {rpc}")
        out = self.handlers[rpc]
        if callable(out) and not isinstance(out, type):
            out = out(request)
        _, resp_type, streams = self.message_types(rpc)
        if isinstance(out, Fault):
            return out
        if streams:
            return [x if isinstance(x, Fault) else _coerce(resp_type, x) for x in out]
        return _coerce(resp_type, out)


def _coerce(resp_type: Any, value: Any) -> Any:
    if isinstance(value, resp_type):
        return value
    return resp_type(value) if isinstance(value, Mapping) else resp_type(mapping=value)


def _to_json(message: Any) -> str:
    if hasattr(type(message), "to_json"):  # proto-plus
        return str(type(message).to_json(message))
    from google.protobuf import json_format

    return json_format.MessageToJson(message)


def _serialize(message: Any) -> bytes:
    ser = getattr(type(message), "serialize", None)
    return bytes(ser(message)) if ser is not None else message.SerializeToString()


# ------------------------------------------------------------------------------------------ REST
class _HTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):  # a client hanging up is normal
            super().handle_error(request, client_address)


class _Fake:
    """What both fakes expose of the scripted service behind them."""

    _svc: _Service

    @property
    def version(self) -> str:
        return self._svc.version

    @property
    def handlers(self) -> dict[str, Handler]:
        return self._svc.handlers

    @property
    def requests(self) -> list[tuple[str, Any]]:
        return self._svc.requests


class RestServer(_Fake):
    """The REST transcoding of the service on 127.0.0.1 (thread per request)."""

    def __init__(self, version: str = "v1", handlers: Mapping[str, Handler] | None = None, *,
                 chunk_delay: float = 0.0) -> None:
        self._svc = _Service(version, handlers)
        self.chunk_delay = chunk_delay  # seconds between streamed messages
        self._httpd = _HTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        # a short poll interval keeps stop() quick (serve_forever checks for shutdown between polls)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> RestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> RestServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def client(self) -> Any:
        """A real sync `ConversationalSearchServiceClient` over the REST transport to this server."""
        from google.auth.credentials import AnonymousCredentials

        t = self._svc.t
        transport = t.services.conversational_search_service.transports.ConversationalSearchServiceRestTransport(
            host=self.host, url_scheme="http", credentials=AnonymousCredentials()
        )
        return t.ConversationalSearchServiceClient(transport=transport)

    def _route(self, method: str, path: str, body: dict[str, Any]) -> tuple[str, Any]:
        """(rpc, request) for a transcoded HTTP call; raises KeyError for unknown routes."""
        prefix = f"/{self.version}/"
        if not path.startswith(prefix):
            raise KeyError(path)
        resource, _, verb = path[len(prefix):].partition(":")
        parts = resource.split("/")
        last = parts[-1]
        kind = parts[-2] if len(parts) > 1 else ""

        def req(rpc: str, **fields: Any) -> tuple[str, Any]:
            req_type = self._svc.message_types(rpc)[0]
            msg = req_type.from_json(json.dumps(body), ignore_unknown_fields=True) if body else req_type()
            for key, value in fields.items():
                setattr(msg, key, value)
            return rpc, msg

        if method == "POST" and verb == "converse":
            return req("ConverseConversation", name=resource)
        if method == "POST" and verb == "answer":
            return req("AnswerQuery", serving_config=resource)
        if method == "POST" and verb == "streamAnswer":
            return req("StreamAnswerQuery", serving_config=resource)
        if verb:
            raise KeyError(path)
        t = self._svc.t
        if method == "POST" and last in ("sessions", "conversations"):
            child = (t.Session if last == "sessions" else t.Conversation).from_json(
                json.dumps(body), ignore_unknown_fields=True)
            rpc = "CreateSession" if last == "sessions" else "CreateConversation"
            request = self._svc.message_types(rpc)[0](parent="/".join(parts[:-1]))
            setattr(request, last[:-1], child)
            return rpc, request
        if method == "GET" and last in ("sessions", "conversations"):
            rpc = "ListSessions" if last == "sessions" else "ListConversations"
            return rpc, self._svc.message_types(rpc)[0](parent="/".join(parts[:-1]))
        single = {"answers": "Answer", "sessions": "Session", "conversations": "Conversation"}.get(kind)
        if single and method in ("GET", "DELETE") and not (method == "DELETE" and single == "Answer"):
            rpc = ("Get" if method == "GET" else "Delete") + single
            return rpc, self._svc.message_types(rpc)[0](name=resource)
        raise KeyError(path)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def do_DELETE(self) -> None:  # noqa: N802
                self._serve("DELETE")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                    # the transport appends `?$alt=json;enum-encoding=int`
                    rpc, request = server._route(method, self.path.split("?")[0], body)
                except (KeyError, ValueError) as exc:
                    self._fault(Fault("NOT_FOUND", f"no route for {method} {self.path}: {exc}"))
                    return
                out = server._svc.reply(rpc, request)
                try:
                    if isinstance(out, Fault):
                        self._fault(out)
                    elif isinstance(out, list):
                        self._stream(out)
                    else:
                        self._send(200, _to_json(out).encode())
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading a stream
                    self.close_connection = True

            def _fault(self, fault: Fault) -> None:
                payload = {"error": {"code": fault.http_code, "message": fault.message, "status": fault.status}}
                self._send(fault.http_code, json.dumps(payload).encode())

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, items: list[Any]) -> None:
                if items and isinstance(items[0], Fault):
                    self._fault(items[0])
                    return
                # REST streaming is one JSON array, sent chunk by chunk as the messages are produced
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                messages = [m for m in items if not isinstance(m, Fault)]
                for i, msg in enumerate(messages):
                    if server.chunk_delay:
                        time.sleep(server.chunk_delay)
                    self._chunk(("[" if i == 0 else ",") + _to_json(msg))
                self._chunk("]" if messages else "[]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _chunk(self, text: str) -> None:
                data = text.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler


# ------------------------------------------------------------------------------------------ gRPC
class GrpcAioServer(_Fake):
    """The gRPC service in-process on a `grpc.aio` server; start and stop inside the event loop."""

    def __init__(self, version: str = "v1", handlers: Mapping[str, Handler] | None = None, *,
                 chunk_delay: float = 0.0) -> None:
        self._svc = _Service(version, handlers)
        self.chunk_delay = chunk_delay
        self._server: Any = None
        self.port = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> GrpcAioServer:
        import grpc

        self._server = grpc.aio.server()
        service = f"google.cloud.discoveryengine.{self.version}.ConversationalSearchService"
        methods = {rpc: self._method(rpc) for rpc in _RPCS if hasattr(self._svc.t, _RPCS[rpc][0])}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, methods),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)

    async def __aenter__(self) -> GrpcAioServer:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def client(self) -> Any:
        """A real `ConversationalSearchServiceAsyncClient` over a grpc.aio channel to this server."""
        import grpc

        t = self._svc.t
        transports = t.services.conversational_search_service.transports
        transport = transports.ConversationalSearchServiceGrpcAsyncIOTransport(
            # a local subchannel pool: closing the client really closes its connection, so stopping
            # the server afterwards does not make grpc log a GOAWAY on a lingering shared one
            channel=grpc.aio.insecure_channel(self.target, options=[("grpc.use_local_subchannel_pool", 1)])
        )
        return t.ConversationalSearchServiceAsyncClient(transport=transport)

    def _method(self, rpc: str) -> Any:
        import grpc

        req_type, resp_type, streams = self._svc.message_types(rpc)
        svc = self._svc
        delay = self

        def deserialize(data: bytes) -> Any:
            return req_type.deserialize(data) if hasattr(req_type, "deserialize") else req_type.FromString(data)

        async def abort(context: Any, fault: Fault) -> None:
            await context.abort(grpc.StatusCode[fault.status], fault.message)

        if streams:
            async def stream(request: Any, context: Any) -> Any:
                out = svc.reply(rpc, request)
                if isinstance(out, Fault):
                    await abort(context, out)
                for item in out:
                    if isinstance(item, Fault):
                        await abort(context, item)
                    if delay.chunk_delay:
                        await asyncio.sleep(delay.chunk_delay)
                    yield item

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=deserialize, response_serializer=_serialize)

        async def unary(request: Any, context: Any) -> Any:
            out = svc.reply(rpc, request)
            if isinstance(out, Fault):
                await abort(context, out)
            return out

        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=deserialize, response_serializer=_serialize)


# ------------------------------------------------------------------------------------------ a script
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


def iter_requests(server: RestServer | GrpcAioServer, rpc: str) -> Iterable[Any]:
    """The requests a server received for one RPC, in order."""
    return (req for name, req in server.requests if name == rpc)

