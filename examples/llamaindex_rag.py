"""LlamaIndex, recorded with one call: a RAG query and a tool-using agent. Offline, mock models.

    python examples/llamaindex_rag.py          # prints the recorded tree (tracewire show --last)
"""

from __future__ import annotations

import asyncio

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ToolCallBlock
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool

import tracewire
from tracewire.cli.main import main as tracewire_cli
from tracewire.integrations.llamaindex import instrument

tracewire.init()  # default sink: SQLite at $TRACEWIRE_DB or in the nearest .tracewire/
instrument()  # every LlamaIndex query, retrieval, embedding, LLM call, tool and agent run from here on

Settings.embed_model = MockEmbedding(embed_dim=8)
Settings.llm = MockLLM()  # echoes its prompt

DOCS = [
    Document(text="The Lisbon office opens at 9:00 and closes at 18:00.", metadata={"source": "handbook.md"}),
    Document(text="Visitors sign in at the front desk on the ground floor.", metadata={"source": "handbook.md"}),
]


def opening_hours(city: str) -> str:
    """Opening hours of the office in a city."""
    return {"lisbon": "09:00-18:00"}.get(city.lower(), "unknown")


def scripted_model() -> MockFunctionCallingLLM:
    """A function-calling model that first asks for the tool, then answers with its result."""
    replies = [
        ChatMessage(role="assistant", blocks=[
            ToolCallBlock(tool_call_id="call_1", tool_name="opening_hours", tool_kwargs={"city": "Lisbon"}),
        ]),
        ChatMessage(role="assistant", content="The Lisbon office is open 09:00-18:00."),
    ]
    return MockFunctionCallingLLM(response_generator=lambda messages, **kw: replies.pop(0))


async def main() -> None:
    with tracewire.span("chain", "office-assistant", input="When is the Lisbon office open?"):
        index = VectorStoreIndex.from_documents(DOCS)
        answer = index.as_query_engine(similarity_top_k=2).query("When is the Lisbon office open?")
        for source in answer.source_nodes:
            print("rag   :", source.node.get_content(metadata_mode="none"))

        agent = FunctionAgent(name="concierge", tools=[FunctionTool.from_defaults(opening_hours)], llm=scripted_model())
        print("agent :", await agent.run("When is the Lisbon office open?"))
    tracewire.flush()
    print()
    tracewire_cli(["show", "--last"])


if __name__ == "__main__":
    asyncio.run(main())
