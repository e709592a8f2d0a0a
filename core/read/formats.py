"""How numbers and times are written, by the CLI and the viewer alike: one format per quantity."""

from __future__ import annotations

import datetime as _dt
import re
import time

MISSING = "-"


def duration(ms: float | None) -> str:
    """`850 ms`, `1.24 s`, `2m 03s`; under a millisecond `0.42 ms`."""
    if ms is None:
        return MISSING
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(int(round(ms / 1000)), 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def tokens(n: int | float | None) -> str:
    """`1,204`."""
    return MISSING if n is None else f"{int(n):,}"


def tokens_in_out(n_in: int | float | None, n_out: int | float | None) -> str:
    """`1,204 / 310`; `-` when neither is known (not `0/0`)."""
    if not n_in and not n_out:
        return MISSING
    return f"{tokens(n_in or 0)} / {tokens(n_out or 0)}"


def cost(usd: float | None) -> str:
    """`$0.0012` (4 significant places under $1), `$12.35` from $1 on, `-` when unknown."""
    if usd is None or usd == 0:
        return MISSING
    if abs(usd) >= 1:
        return f"${usd:,.2f}"
    text = f"{usd:.4g}"
    if "e" in text:  # 4.2e-05: written out, the way prices are read
        text = f"{usd:.{3 - _floor_log10(usd)}f}".rstrip("0")
    return f"${text}"


def _floor_log10(x: float) -> int:
    n = 0
    x = abs(x)
    while x < 1:
        x *= 10
        n -= 1
    return n


def ttft(ms: float | None) -> str:
    """`ttft 312 ms`."""
    return f"ttft {duration(ms)}"


def when(ns: int | None) -> str:
    """Local time, to the second."""
    if ns is None:
        return MISSING
    return _dt.datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def clock(ns: int | None) -> str:
    """Local time of day to the millisecond, for a line per event."""
    if ns is None:
        return MISSING
    return _dt.datetime.fromtimestamp(ns / 1e9).strftime("%H:%M:%S.%f")[:-3]


_MAX_NS = 2**63 - 1  # what the stores' integer columns hold (the year 2262)
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, now_ns: int | None = None) -> int:
    """A `--since`/`--until` value as unix ns: ISO-8601 (`2026-12-06`, `2026-12-06T10:00`; local time
    unless it carries an offset) or an age (`30s`, `15m`, `2h`, `7d`, `1w`). ValueError says what is accepted."""
    m = _RELATIVE.match(text)
    if m:
        now = time.time_ns() if now_ns is None else now_ns
        return now - int(float(m.group(1)) * _UNIT_S[m.group(2)] * 1e9)
    try:
        parsed = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use ISO-8601 (2026-12-06, 2026-12-06T10:00) "
                         "or an age (30s, 15m, 2h, 7d)") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # a time without an offset is the user's local time
    return max(0, min(int(parsed.timestamp() * 1e9), _MAX_NS))
