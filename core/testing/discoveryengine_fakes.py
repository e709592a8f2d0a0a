"""The two Discovery Engine fakes, `RestServer` and `GrpcAioServer`, in front of one scripted
service (see `discoveryengine_server` for how to use them; import them from there).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from tracewire.testing.discoveryengine_service import (
    RPCS,
    Fault,
    Handler,
    ScriptedService,
    serialize,
    to_json,
)
from tracewire.testing.local_http import JSONHandler, LocalHTTPServer


class _Fake:
    """What both fakes expose of the scripted service behind them."""

    _svc: ScriptedService

    @property
    def version(self) -> str:
        return self._svc.version

    @property
    def handlers(self) -> dict[str, Handler]:
        return self._svc.handlers

    @property
    def requests(self) -> list[tuple[str, Any]]:
        return self._svc.requests


class RestServer(_Fake, LocalHTTPServer):
    """The REST transcoding of the service on 127.0.0.1 (thread per request)."""

    def __init__(self, version: str = "v1", handlers: Mapping[str, Handler] | None = None, *,
                 chunk_delay: float = 0.0) -> None:
        self._svc = ScriptedService(version, handlers)
        self.chunk_delay = chunk_delay  # seconds between streamed messages
        LocalHTTPServer.__init__(self, self._handler())

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

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

    def _handler(self) -> type[JSONHandler]:
        server = self

        class Handler(JSONHandler):
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
                        self.send_json(200, to_json(out).encode())
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading a stream
                    self.close_connection = True

            def _fault(self, fault: Fault) -> None:
                payload = {"error": {"code": fault.http_code, "message": fault.message, "status": fault.status}}
                self.send_json(fault.http_code, json.dumps(payload).encode())

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
                    self._chunk(("[" if i == 0 else ",") + to_json(msg))
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
        self._svc = ScriptedService(version, handlers)
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
        methods = {rpc: self._method(rpc) for rpc in RPCS if hasattr(self._svc.t, RPCS[rpc][0])}
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
                stream, request_deserializer=deserialize, response_serializer=serialize)

        async def unary(request: Any, context: Any) -> Any:
            out = svc.reply(rpc, request)
            if isinstance(out, Fault):
                await abort(context, out)
            return out

        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=deserialize, response_serializer=serialize)


def iter_requests(server: RestServer | GrpcAioServer, rpc: str) -> Iterable[Any]:
    """The requests a server received for one RPC, in order."""
    return (req for name, req in server.requests if name == rpc)
