"""Mock-model helpers shared by the LlamaIndex tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import ToolCallBlock
from llama_index.core.llms import ChatMessage


def add(a: int, b: int) -> int:
    """Add two numbers."""
    if a < 0:
        raise ValueError("negative numbers are not supported")
    return a + b


def scripted(*replies: ChatMessage) -> Callable[..., ChatMessage]:
    """A MockFunctionCallingLLM response generator answering with `replies` in order."""
    queue = list(replies)

    def generate(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        return queue.pop(0)

    return generate


def call_add(a: int, b: int, call_id: str = "call-1") -> ChatMessage:
    return ChatMessage(
        role="assistant", blocks=[ToolCallBlock(tool_call_id=call_id, tool_name="add", tool_kwargs={"a": a, "b": b})]
    )


def answer(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)
