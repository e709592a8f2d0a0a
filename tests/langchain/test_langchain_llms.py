"""LLM spans: text-completion LLMs, usage from `llm_output` only when there is no `usage_metadata`,
request attributes from invocation params, cache and reasoning token details."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from tests.conftest import Recorder
from tracewire.integrations.langchain import TracewireCallbackHandler
from tracewire.model import attributes as A


class ChatLegacyUsage(BaseChatModel):
    """Reports usage the old way only: `llm_output["token_usage"]`, as non-streaming providers do."""

    model_name: str = "gpt-4o"
    max_tokens: int = 256
    message_usage: dict[str, Any] | None = None  # also report usage on the message, as current providers do

    @property
    def _llm_type(self) -> str:
        return "legacy"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage("hello", usage_metadata=self.message_usage),
                                        generation_info={"finish_reason": "length"})],
            llm_output={"token_usage": {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200,
                                        "prompt_tokens_details": {"cached_tokens": 400},
                                        "completion_tokens_details": {"reasoning_tokens": 50}},
                        "model_name": "gpt-4o-2024-08-06"},
        )

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model_name, "max_tokens": self.max_tokens, "top_p": 0.9}


def test_usage_from_llm_output_with_cache_and_reasoning_details(recorder: Recorder) -> None:
    ChatLegacyUsage().invoke("hi", config={"callbacks": [TracewireCallbackHandler()]}, stop=["END"])
    (span,) = recorder.spans()
    a = span.attributes
    assert (a[A.USAGE_INPUT_TOKENS], a[A.USAGE_OUTPUT_TOKENS], a[A.USAGE_TOTAL_TOKENS]) == (1000, 200, 1200)
    assert a[A.USAGE_CACHE_READ_TOKENS] == 400 and a[A.USAGE_REASONING_TOKENS] == 50
    assert a[A.RESPONSE_MODEL] == "gpt-4o-2024-08-06" and a[A.REQUEST_MODEL] == "gpt-4o"
    assert a[A.REQUEST_MAX_TOKENS] == 256 and a[A.REQUEST_STOP] == ["END"]
    assert a[A.RESPONSE_FINISH_REASONS] == ["length"]
    # gpt-4o list price: 2.50 in, 1.25 cached in, 10.00 out per million
    assert a[A.COST_USD] == pytest.approx((600 * 2.50 + 400 * 1.25 + 200 * 10.00) / 1e6)
    assert span.output == {"role": "assistant", "content": "hello"}


def test_usage_metadata_wins_over_llm_output(recorder: Recorder) -> None:
    """Both sources present and disagreeing: the message's `usage_metadata` is what is recorded,
    cache and reasoning details included, and the cost is priced from it."""
    message_usage = {
        "input_tokens": 500, "output_tokens": 80, "total_tokens": 580,
        "input_token_details": {"cache_read": 120, "cache_creation": 30},
        "output_token_details": {"reasoning": 25},
    }
    ChatLegacyUsage(message_usage=message_usage).invoke("hi", config={"callbacks": [TracewireCallbackHandler()]})
    (span,) = recorder.spans()
    a = span.attributes
    assert (a[A.USAGE_INPUT_TOKENS], a[A.USAGE_OUTPUT_TOKENS], a[A.USAGE_TOTAL_TOKENS]) == (500, 80, 580)
    assert (a[A.USAGE_CACHE_READ_TOKENS], a[A.USAGE_CACHE_CREATION_TOKENS], a[A.USAGE_REASONING_TOKENS]) == (120, 30, 25)
    # gpt-4o: 2.50 in, 1.25 cached in, 10.00 out per million (llm_output's counts would price at 0.004)
    assert a[A.COST_USD] == pytest.approx((380 * 2.50 + 120 * 1.25 + 80 * 10.00) / 1e6)
    assert a[A.RESPONSE_MODEL] == "gpt-4o-2024-08-06"  # the model name still comes from llm_output


def test_text_completion_llm(recorder: Recorder) -> None:
    llm = FakeListLLM(responses=["forty-two"])
    assert llm.invoke("meaning of life?", config={"callbacks": [TracewireCallbackHandler()]}) == "forty-two"
    (span,) = recorder.spans()
    assert (span.kind, span.name, span.status) == ("llm", "FakeListLLM", "ok")
    assert span.attributes[A.OPERATION_NAME] == "text_completion"
    assert span.input == [{"role": "user", "content": "meaning of life?"}]
    assert span.output == {"role": "assistant", "content": "forty-two"}


def test_tools_offered_are_recorded(recorder: Recorder) -> None:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from tests.langchain.lc_fakes import ChatScripted, get_weather_tool, usage

    class ChatWithTools(ChatScripted):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self.bind(tools=[convert_to_openai_tool(t) for t in tools])

    model = ChatWithTools(respond=lambda msgs: AIMessage("ok", usage_metadata=usage(1, 1)))
    model.bind_tools([get_weather_tool()]).invoke("hi", config={"callbacks": [TracewireCallbackHandler()]})
    (span,) = recorder.spans()
    (tool_def,) = span.attributes[A.TOOL_DEFINITIONS]
    assert tool_def["function"]["name"] == "get_weather"
    assert "tools" not in span.attributes[A.INVOCATION_PARAMS]
