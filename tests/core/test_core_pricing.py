"""The price table and `cost_usd`: every input part at its own price (uncached, cache read, 5-minute
and 1-hour cache writes), output with reasoning at the output price, names resolved from dated and
prefixed model ids, and `register_price` adding or overriding — checked against figures worked out
by hand from the providers' list prices."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tracewire.model import pricing
from tracewire.model.genai import usage_attributes
from tracewire.model.pricing import Price, cost_usd, price_for, register_price


@pytest.fixture
def restore_prices() -> Iterator[None]:
    saved = dict(pricing._PRICES)
    yield
    pricing._PRICES.clear()
    pricing._PRICES.update(saved)
    pricing._resolved.clear()


def test_openai_cached_tokens_are_part_of_the_prompt() -> None:
    # gpt-4o-mini: 0.15 in, 0.075 cached, 0.60 out. 10,000 prompt tokens of which 6,000 cached, 1,000 out:
    #   4,000 × 0.15 + 6,000 × 0.075 + 1,000 × 0.60 = 1,650 → $0.00165
    assert cost_usd("gpt-4o-mini-2024-07-18", 10_000, 1_000, 6_000) == pytest.approx(0.00165, abs=1e-12)
    # gpt-5-mini: 0.25 in, 0.025 cached, 2.00 out (reasoning tokens are output tokens):
    #   12,000 × 0.25 + 8,000 × 0.025 + 3,000 × 2 = 9,200 → $0.0092
    assert cost_usd("gpt-5-mini", 20_000, 3_000, 8_000) == pytest.approx(0.0092, abs=1e-12)
    # through a provider prefix; gpt-4.1: 2.00 in, 0.50 cached, 8.00 out: 500 × 2 + 500 × 0.5 + 100 × 8 = 2,050
    assert cost_usd("openai/gpt-4.1", 1_000, 100, 500) == pytest.approx(0.00205, abs=1e-12)
    # o4-mini: 1.10 in, 4.40 out: 1,000 × 1.1 + 1,000 × 4.4 = 5,500
    assert cost_usd("o4-mini-2025-04-16", 1_000, 1_000) == pytest.approx(0.0055, abs=1e-12)


def test_every_anthropic_input_part_has_its_price() -> None:
    # claude-opus-4-1: 15 in, 1.50 read, 18.75 5-minute write, 30 1-hour write, 75 out. 3,000 input tokens:
    # 1,000 read, 1,200 written (200 of them for an hour), 800 uncached; 100 out:
    #   800 × 15 + 1,000 × 1.5 + 1,000 × 18.75 + 200 × 30 + 100 × 75 = 45,750 → $0.04575
    got = cost_usd("claude-opus-4-1-20250805", 3_000, 100, 1_000, cache_creation_tokens=1_200,
                   cache_creation_1h_tokens=200)
    assert got == pytest.approx(0.04575, abs=1e-12)


def test_dated_names_resolve_to_their_own_model() -> None:
    assert price_for("claude-opus-4-1-20250805") == Price(15.0, 75.0, 1.5, 18.75, 30.0)
    assert price_for("claude-opus-4-20250514") == Price(15.0, 75.0, 1.5, 18.75, 30.0)
    assert price_for("claude-opus-4-5-20251101") == Price(5.0, 25.0, 0.5, 6.25, 10.0)
    assert price_for("claude-sonnet-4-5-20250929") == Price(3.0, 15.0, 0.3, 3.75, 6.0)
    assert price_for("claude-haiku-4-5-20251001") == Price(1.0, 5.0, 0.1, 1.25, 2.0)
    assert price_for("claude-3-7-sonnet-latest") == Price(3.0, 15.0, 0.3, 3.75, 6.0)
    assert price_for("claude-3-5-haiku-20241022") == Price(0.8, 4.0, 0.08, 1.0, 1.6)
    assert price_for("gpt-5-nano-2025-08-07") == Price(0.05, 0.40, 0.005)
    assert price_for("gpt-4.1-mini") == Price(0.40, 1.60, 0.10)
    assert price_for("o3-mini") == Price(1.10, 4.40, 0.55)
    assert price_for("a-model-nobody-priced") is None
    assert cost_usd("a-model-nobody-priced", 10, 10) is None
    assert cost_usd("gpt-4o", None, None) is None


def test_parts_without_their_own_price_are_billed_as_what_they_refine(restore_prices: None) -> None:
    register_price("plain-model", 1.0, 2.0)  # no cache prices: reads and writes at the input price
    assert cost_usd("plain-model", 1_000, 0, 400, cache_creation_tokens=300) == pytest.approx(0.001, abs=1e-12)
    register_price("five-minute-only", 1.0, 2.0, 0.1, 1.25)  # a 1-hour write at the 5-minute price
    # 100 × 1 + 0 × 0.1 + 900 × 1.25 = 1,225
    assert cost_usd("five-minute-only", 1_000, 0, cache_creation_tokens=900, cache_creation_1h_tokens=900) == \
        pytest.approx(0.001225, abs=1e-12)


def test_counts_beyond_the_input_are_capped(restore_prices: None) -> None:
    register_price("capped", 1.0, 0.0, 0.5, 2.0)
    # 100 input tokens, 80 said read and 80 said written: 80 read, 20 written, none uncached
    assert cost_usd("capped", 100, 0, 80, cache_creation_tokens=80) == pytest.approx((80 * 0.5 + 20 * 2.0) / 1e6)


def test_register_price_overrides_and_clears_what_was_resolved(restore_prices: None) -> None:
    assert cost_usd("claude-sonnet-4-5", 1_000_000, 0) == pytest.approx(3.0)
    register_price("claude-sonnet-4-5", 2.0, 10.0, 0.2, 2.5, 4.0)
    assert cost_usd("claude-sonnet-4-5-20250929", 1_000_000, 0) == pytest.approx(2.0)
    assert cost_usd("claude-sonnet-4-5", 4_000_000, 1_000_000, 1_000_000, cache_creation_tokens=2_000_000,
                    cache_creation_1h_tokens=1_000_000) == pytest.approx(2.0 + 0.2 + 2.5 + 4.0 + 10.0)


def test_the_shared_usage_shape_keeps_pricing_reads() -> None:
    # genai.usage_attributes passes cache reads positionally, as before: 1,000 × 2.5 + 1,000 × 1.25 + 100 × 10
    attrs = usage_attributes(2_000, 100, cache_read_tokens=1_000, model="gpt-4o")
    assert attrs["tracewire.cost_usd"] == pytest.approx(0.00475, abs=1e-12)
