"""Vertex AI Agent Builder, recorded: the real google-cloud-discoveryengine clients, wrapped, against
a local server speaking the Discovery Engine API (started here; nothing leaves 127.0.0.1).

The sync client talks REST to a local HTTP server, the async client gRPC to an in-process grpc.aio
server. A grounded answer with two search steps, a streamed answer, a conversation turn and a
refused call are recorded under one `support-desk` span, then printed as a tree.

    python examples/vertex_agent.py
"""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # grpc's INFO lines (connection shutdown) would clutter the tree

from google.api_core import exceptions
from google.cloud import discoveryengine_v1 as de

import tracewire
from tracewire.cli.main import main as tracewire_cli
from tracewire.integrations.vertex import wrap
from tracewire.testing.discoveryengine_server import (
    CONVERSATION,
    DEMO_QUERY,
    ENGINE,
    SERVING_CONFIG,
    Fault,
    GrpcAioServer,
    RestServer,
    demo_handlers,
)

tracewire.init()  # default sink: SQLite at $TRACEWIRE_DB or in the nearest .tracewire/


def request(session: str = "") -> de.AnswerQueryRequest:
    return de.AnswerQueryRequest(serving_config=SERVING_CONFIG, query=de.Query(text=DEMO_QUERY),
                                 session=session, user_pseudo_id="visitor-7")


def over_rest(server: RestServer) -> None:
    client = wrap(server.client(), tags=["demo"])
    # `sessions/-`: the service creates the session; the created one is recorded
    answer = client.answer_query(request(f"{ENGINE}/sessions/-")).answer
    print("answer   :", answer.answer_text, f"({len(answer.steps)} steps, {len(answer.references)} references)")
    for message in client.stream_answer_query(request()):
        print("streamed :", message.answer.answer_text)
    reply = client.converse_conversation(name=CONVERSATION, query=de.TextInput(input="And for service accounts?"))
    print("converse :", reply.reply.summary.summary_text)
    server.handlers["AnswerQuery"] = Fault("PERMISSION_DENIED", "caller lacks discoveryengine.servingConfigs.answer")
    try:
        client.answer_query(request())
    except exceptions.Forbidden as exc:  # the library's own exception, re-raised unchanged
        print("refused  :", type(exc).__name__, exc.code)


async def over_grpc() -> None:
    async with GrpcAioServer("v1", demo_handlers("v1"), chunk_delay=0.05) as server:
        async with wrap(server.client(), tags=["demo"]) as client:
            stream = await client.stream_answer_query(request())
            async for message in stream:
                print("async    :", message.answer.answer_text)


def main() -> None:
    with tracewire.span("agent", "support-desk", input=DEMO_QUERY):
        with RestServer("v1", demo_handlers("v1"), chunk_delay=0.05) as server:
            over_rest(server)
        asyncio.run(over_grpc())
    tracewire.flush()
    print()
    tracewire_cli(["show", "--last"])


if __name__ == "__main__":
    main()
