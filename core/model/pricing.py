"""Model prices for cost estimates, in USD per million tokens.

The built-in table holds list prices published by the providers (checked 2026-12-06); adapters
prefer a cost the framework computes itself (LiteLLM's `response_cost`) and fall back to this
table. Users add or override prices with `register_price`. Unknown models get no cost.

Token counts follow the OpenTelemetry GenAI convention: `input_tokens` includes every input token,
cached or not, and the cache-read and cache-write counts are parts of it (an adapter whose provider
reports them on top of the input, as Anthropic does, adds them up first). Reasoning tokens are
parts of `output_tokens` and billed at the output price.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """USD per million tokens. `cached_input`: a cache read (hit); `cache_write`: a cache write
    (Anthropic's 5-minute write); `cache_write_1h`: a write kept for an hour. A part without its own
    price is billed as the part it refines: a cache write or read as input, a 1-hour write as a
    5-minute one."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    cache_write_1h: float | None = None


def _claude(input: float, output: float) -> Price:
    # Anthropic's published multipliers of the base input price: reads 0.1x, 5-minute writes
    # 1.25x, 1-hour writes 2x (every Claude model listed but Claude 3 Haiku, written out).
    return Price(input, output, round(input * 0.1, 6), round(input * 1.25, 6), round(input * 2, 6))


_PRICES: dict[str, Price] = {
    # OpenAI: cached input is a cache read; writes cost nothing extra.
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "gpt-5": Price(1.25, 10.00, 0.125),
    "gpt-5-mini": Price(0.25, 2.00, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
    "o3": Price(2.00, 8.00, 0.50),
    "o3-mini": Price(1.10, 4.40, 0.55),
    "o4-mini": Price(1.10, 4.40, 0.275),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    # Anthropic
    "claude-3-haiku": Price(0.25, 1.25, 0.03, 0.30, 0.50),
    "claude-3-opus": _claude(15.00, 75.00),
    "claude-3-5-sonnet": _claude(3.00, 15.00),
    "claude-3-5-haiku": _claude(0.80, 4.00),
    "claude-3-7-sonnet": _claude(3.00, 15.00),
    "claude-sonnet-4": _claude(3.00, 15.00),
    "claude-sonnet-4-5": _claude(3.00, 15.00),
    "claude-sonnet-4-6": _claude(3.00, 15.00),
    "claude-opus-4": _claude(15.00, 75.00),
    "claude-opus-4-1": _claude(15.00, 75.00),
    "claude-opus-4-5": _claude(5.00, 25.00),
    "claude-opus-4-6": _claude(5.00, 25.00),
    "claude-haiku-4-5": _claude(1.00, 5.00),
    # Google
    "gemini-1.5-pro": Price(1.25, 5.00),
    "gemini-1.5-flash": Price(0.075, 0.30),
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "text-embedding-3-small": Price(0.02, 0.0),
    "text-embedding-3-large": Price(0.13, 0.0),
}


def register_price(model: str, input_per_million: float, output_per_million: float,
                   cached_input_per_million: float | None = None,
                   cache_write_per_million: float | None = None,
                   cache_write_1h_per_million: float | None = None) -> None:
    """Add or replace the price of `model` (matched as the built-in names are: exactly, without a
    provider prefix, or as the longest known prefix of a dated name)."""
    _PRICES[model.lower()] = Price(input_per_million, output_per_million, cached_input_per_million,
                                   cache_write_per_million, cache_write_1h_per_million)
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
             cached_input_tokens: int | None = None, *, cache_creation_tokens: int | None = None,
             cache_creation_1h_tokens: int | None = None) -> float | None:
    """The cost of one call, or None for a model without a price.

    `input_tokens` counts every input token; `cached_input_tokens` (cache reads) and
    `cache_creation_tokens` (cache writes, of which `cache_creation_1h_tokens` kept for an hour) are
    parts of it, each billed at its own price, and the rest at the input price."""
    price = price_for(model)
    if price is None or (input_tokens is None and output_tokens is None):
        return None
    total_in = input_tokens or 0
    cached = min(cached_input_tokens or 0, total_in)
    written = min(cache_creation_tokens or 0, total_in - cached)
    written_1h = min(cache_creation_1h_tokens or 0, written)
    uncached = total_in - cached - written
    read_rate = price.cached_input if price.cached_input is not None else price.input
    write_rate = price.cache_write if price.cache_write is not None else price.input
    write_1h_rate = price.cache_write_1h if price.cache_write_1h is not None else write_rate
    total = (uncached * price.input + cached * read_rate + (written - written_1h) * write_rate
             + written_1h * write_1h_rate + (output_tokens or 0) * price.output)
    return round(total / 1_000_000, 10)
