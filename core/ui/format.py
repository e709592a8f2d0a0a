"""How the viewer writes numbers and times: the same formats as the terminal's."""

from __future__ import annotations

import datetime as _dt
import math


def duration(ms: float | None) -> str:
    """`850 ms`, `0.45 ms`, `1.24 s`, `2m 03s`; `-` when unknown."""
    if ms is None:
        return "-"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(int(round(ms / 1000)), 60)
    return f"{minutes}m {seconds:02d}s"


def tokens(n: int | float | None) -> str:
    """Thousands separators: `1,204`; `-` when unknown."""
    return "-" if n is None else f"{int(n):,}"


def cost(usd: float | None) -> str:
    """`$0.0012` (4 significant places under $1), `$12.35` above; `-` when unknown or nothing."""
    if not usd:
        return "-"
    if usd >= 1:
        return f"${usd:,.2f}"
    places = 3 - math.floor(math.log10(usd))
    return "$" + f"{usd:.{places}f}".rstrip("0").rstrip(".")


def clock(ns: int | None) -> str:
    """A start time in local time, to the second."""
    if ns is None:
        return "-"
    return _dt.datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")
