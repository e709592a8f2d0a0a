"""Identifiers: time-ordered event ids (UUIDv7) and OpenTelemetry-shaped trace/span ids."""

from __future__ import annotations

import random
import time

# `random` reseeds itself in a forked child, so ids stay unique across fork; ids need
# uniqueness, not unpredictability, and getrandbits is ~20x cheaper than os.urandom + UUID.
_bits = random.getrandbits


def new_event_id(now_ns: int | None = None) -> str:
    """A UUIDv7 string: 48-bit ms timestamp, 12 bits of sub-ms time, 62 random bits."""
    ns = time.time_ns() if now_ns is None else now_ns
    ms, sub = divmod(ns, 1_000_000)
    rand_a = (sub * 4096) // 1_000_000
    rand_b = _bits(62) | 0x8000_0000_0000_0000
    h = f"{ms:012x}7{rand_a:03x}{rand_b:016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_trace_id() -> str:
    """32 hex chars, never all zero (valid as an OpenTelemetry trace id)."""
    return f"{_bits(128) or 1:032x}"


def new_span_id() -> str:
    """16 hex chars, never all zero (valid as an OpenTelemetry span id)."""
    return f"{_bits(64) or 1:016x}"
