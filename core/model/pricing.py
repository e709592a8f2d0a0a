"""Model prices for cost estimates, in USD per million tokens.

The built-in table holds list prices published by the providers (checked 2026-11); adapters
prefer a cost the framework computes itself (LiteLLM's `response_cost`) and fall back to this
table. Users add or override prices with `register_price`. Unknown models get no cost.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cached_input: float | None = None


_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "o3": Price(2.00, 8.00, 0.50),
    "o4-mini": Price(1.10, 4.40, 0.275),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "claude-3-5-sonnet": Price(3.00, 15.00, 0.30),
    "claude-3-5-haiku": Price(0.80, 4.00, 0.08),
    "claude-sonnet-4": Price(3.00, 15.00, 0.30),
    "claude-opus-4": Price(15.00, 75.00, 1.50),
    "gemini-1.5-pro": Price(1.25, 5.00),
    "gemini-1.5-flash": Price(0.075, 0.30),
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "text-embedding-3-small": Price(0.02, 0.0),
    "text-embedding-3-large": Price(0.13, 0.0),
}


def register_price(model: str, input_per_million: float, output_per_million: float,
                   cached_input_per_million: float | None = None) -> None:
    _PRICES[model.lower()] = Price(input_per_million, output_per_million, cached_input_per_million)
    _resolved.clear()


# model name as asked -> its price (or None): the prefix search runs on the hot path of every LLM
# call otherwise. Bounded; cleared whenever a price changes.
_resolved: dict[str, Price | None] = {}


def price_for(model: str | None) -> Price | None:
    """Exact name first, then without a provider prefix (`openai/gpt-4o`), then the longest
    known prefix (`gpt-4o-mini-2024-07-18` -> `gpt-4o-mini`)."""
    if not model:
        return None
    try:
        return _resolved[model]
    except KeyError:
        pass
    price = _find_price(model)
    if len(_resolved) < 4096:
        _resolved[model] = price
    return price


def _find_price(model: str) -> Price | None:
    name = model.lower()
    if name in _PRICES:
        return _PRICES[name]
    name = name.rsplit("/", 1)[-1]
    if name in _PRICES:
        return _PRICES[name]
    best = max((k for k in _PRICES if name.startswith(k)), key=len, default=None)
    return _PRICES[best] if best else None


def cost_usd(model: str | None, input_tokens: int | None, output_tokens: int | None,
             cached_input_tokens: int | None = None) -> float | None:
    price = price_for(model)
    if price is None or (input_tokens is None and output_tokens is None):
        return None
    cached = min(cached_input_tokens or 0, input_tokens or 0)
    uncached = (input_tokens or 0) - cached
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    total = uncached * price.input + cached * cached_rate + (output_tokens or 0) * price.output
    return round(total / 1_000_000, 10)
