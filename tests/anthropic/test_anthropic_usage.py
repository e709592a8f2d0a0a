"""Usage normalised to the GenAI convention (input counts cache reads and writes, which Anthropic
reports on top of `input_tokens`) and cost priced part by part — checked against figures worked
out by hand from the published prices."""

from __future__ import annotations

import pytest

import tracewire
from tests.anthropic.clients import HI, client
from tests.conftest import Recorder
from tracewire.model import attributes as A
from tracewire.model import pricing
from tracewire.testing.anthropic_server import AnthropicServer, Reply

# claude-sonnet-4-5, USD per million: input 3, cache read 0.30, 5-minute write 3.75, 1-hour write 6,
# output 15. 100 uncached + 2,000 read + 500 written for 5 minutes + 300 for an hour; 400 out, 150
# of them thinking:
#   100 × 3 + 2,000 × 0.30 + 500 × 3.75 + 300 × 6 + 400 × 15 = 10,575 → $0.010575
SONNET = Reply("cached", input_tokens=100, cache_read_tokens=2000, cache_creation_tokens=500,
               cache_creation_1h_tokens=300, output_tokens=400, thinking_tokens=150)
SONNET_USAGE = {
    A.USAGE_INPUT_TOKENS: 2900, A.USAGE_OUTPUT_TOKENS: 400, A.USAGE_TOTAL_TOKENS: 3300,
    A.USAGE_CACHE_READ_TOKENS: 2000, A.USAGE_CACHE_CREATION_TOKENS: 800, A.USAGE_REASONING_TOKENS: 150,
}
# claude-3-5-haiku-20241022: input 0.80, read 0.08, 5-minute write 1.00, output 4.
#   1,000 × 0.80 + 4,000 × 0.08 + 2,000 × 1.00 + 500 × 4 = 5,120 → $0.00512
HAIKU = Reply("dated", model="claude-3-5-haiku-20241022", input_tokens=1000, cache_read_tokens=4000,
              cache_creation_tokens=2000, output_tokens=500)


def usage(attrs: dict[str, object]) -> dict[str, object]:
    return {k: attrs.get(k) for k in SONNET_USAGE}


@pytest.mark.parametrize("streamed", [False, True])
def test_cache_and_thinking_tokens_are_counted_and_priced(recorder: Recorder, server: AnthropicServer,
                                                          instrumented: None, streamed: bool) -> None:
    server.push(SONNET, HAIKU)
    c = client(server)
    for model in ("claude-sonnet-4-5", "claude-3-5-haiku"):
        if streamed:
            for _ in c.messages.create(model=model, max_tokens=64, messages=HI, stream=True):
                pass
        else:
            c.messages.create(model=model, max_tokens=64, messages=HI)
    sonnet, haiku = recorder.spans()
    assert usage(sonnet.attributes) == SONNET_USAGE
    assert sonnet.attributes[A.COST_USD] == pytest.approx(0.010575, abs=1e-12)
    assert haiku.attributes[A.RESPONSE_MODEL] == "claude-3-5-haiku-20241022"
    assert (haiku.attributes[A.USAGE_INPUT_TOKENS], haiku.attributes[A.USAGE_CACHE_CREATION_TOKENS]) == (7000, 2000)
    assert haiku.attributes[A.COST_USD] == pytest.approx(0.00512, abs=1e-12)


def test_a_model_without_a_price_has_usage_and_no_cost(recorder: Recorder, server: AnthropicServer,
                                                       instrumented: None) -> None:
    server.push(Reply("?", model="claude-next-preview", input_tokens=7, cache_read_tokens=3, output_tokens=2))
    client(server).messages.create(model="claude-next-preview", max_tokens=64, messages=HI)
    [llm] = recorder.spans()
    assert (llm.attributes[A.USAGE_INPUT_TOKENS], llm.attributes[A.USAGE_OUTPUT_TOKENS]) == (10, 2)
    assert A.COST_USD not in llm.attributes


def test_a_registered_price_is_used(recorder: Recorder, server: AnthropicServer, instrumented: None) -> None:
    pricing.register_price("claude-house-model", 2.0, 10.0, 0.2, 2.5, 4.0)
    try:
        # 10 × 2 + 20 × 0.2 + 30 × 2.5 + 40 × 4 + 5 × 10 = 309 → $0.000309
        server.push(Reply("house", input_tokens=10, cache_read_tokens=20, cache_creation_tokens=30,
                          cache_creation_1h_tokens=40, output_tokens=5))
        with tracewire.span("agent", "a"):
            client(server).messages.create(model="claude-house-model-2026-12", max_tokens=64, messages=HI)
        [llm] = [s for s in recorder.spans() if s.kind == "llm"]
        assert llm.attributes[A.COST_USD] == pytest.approx(0.000309, abs=1e-12)
    finally:
        del pricing._PRICES["claude-house-model"]
        pricing._resolved.clear()
