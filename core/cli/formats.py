"""The CLI's name for the shared number and time formats, which live in `tracewire.read.formats`."""

from tracewire.read.formats import (
    MISSING,
    clock,
    cost,
    duration,
    parse_when,
    tokens,
    tokens_in_out,
    ttft,
    when,
)

__all__ = ["MISSING", "clock", "cost", "duration", "parse_when", "tokens", "tokens_in_out", "ttft", "when"]
