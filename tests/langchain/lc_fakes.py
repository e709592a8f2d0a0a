"""Fake chat models at the model boundary: real LangChain machinery, scripted answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult


class ToolCallingFakeChatModel(GenericFakeChatModel):
    """GenericFakeChatModel with the `bind_tools` agents need (the tools are not used)."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ToolCallingFakeChatModel:
        return self


Responder = Callable[[list[BaseMessage]], AIMessage]


class ChatScripted(BaseChatModel):
    """Answers each call with `respond(messages)`: deterministic per conversation, so one model
    can serve concurrent runs. Streams like a provider does: a role-only header chunk, content
    in pieces, tool-call chunks, then a final chunk with usage and finish reason."""

    respond: Responder
    model_name: str = "gpt-4o-mini"
    temperature: float = 0.0
    delay: float = 0.0
    fail_with: BaseException | None = None
    fail_after_chunks: int | None = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ChatScripted:
        return self

    def _answer(self, messages: list[BaseMessage]) -> AIMessage:
        if self.fail_with is not None and self.fail_after_chunks is None:
            raise self.fail_with
        return self.respond(messages)

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        msg = self._answer(messages)
        finish = "tool_calls" if msg.tool_calls else "stop"
        msg = msg.model_copy(update={"response_metadata": {"model_name": f"{self.model_name}-2024-07-18",
                                                           "finish_reason": finish}})
        return ChatResult(generations=[ChatGeneration(message=msg, generation_info={"finish_reason": finish})])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        if self.delay:
            await asyncio.sleep(self.delay)
        return self._generate(messages, stop, **kwargs)

    def _chunks(self, messages: list[BaseMessage]) -> Iterator[ChatGenerationChunk]:
        msg = self._answer(messages)
        yield ChatGenerationChunk(message=AIMessageChunk(content=""))
        text = msg.content if isinstance(msg.content, str) else ""
        pieces = [w + " " for w in text.split(" ")]
        if pieces:
            pieces[-1] = pieces[-1][:-1]
        for i, piece in enumerate(p for p in pieces if p):
            if self.fail_with is not None and self.fail_after_chunks is not None and i >= self.fail_after_chunks:
                raise self.fail_with
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        for idx, call in enumerate(msg.tool_calls):
            args = str(call["args"]).replace("'", '"')
            yield ChatGenerationChunk(message=AIMessageChunk(
                content="", tool_call_chunks=[{"name": call["name"], "args": args, "id": call["id"], "index": idx}]))
        finish = "tool_calls" if msg.tool_calls else "stop"
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="", usage_metadata=msg.usage_metadata, chunk_position="last",
                response_metadata={"model_name": f"{self.model_name}-2024-07-18", "finish_reason": finish},
            ),
            generation_info={"finish_reason": finish},
        )

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self._chunks(messages)

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield chunk


def usage(inp: int, out: int) -> dict[str, int]:
    return {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}


def weather_agent_responder(messages: list[BaseMessage]) -> AIMessage:
    """Turn 1: call get_weather for the city named in the question; turn 2: answer from the tool
    result. Tool call ids derive from the question so concurrent runs stay distinguishable."""
    last = messages[-1]
    if last.type == "human":
        city = str(last.content).rsplit(" ", 1)[-1].strip("?")
        return AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": city}, "id": f"call_{city}"}],
                         usage_metadata=usage(12, 7))
    return AIMessage(f"The weather: {last.content}", usage_metadata=usage(30, 9))


def get_weather_tool() -> Any:
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny in {city}"

    return get_weather


def weather_agent(model: BaseChatModel | None = None, **kwargs: Any) -> Any:
    from langchain.agents import create_agent

    return create_agent(model or ChatScripted(respond=weather_agent_responder), tools=[get_weather_tool()], **kwargs)


AGENT_SHAPE = ("agent", "LangGraph", [
    ("chain", "model", [("llm", "ChatScripted", [])]),
    ("chain", "tools", [("tool", "get_weather", [])]),
    ("chain", "model", [("llm", "ChatScripted", [])]),
])
