"""An experiment run's rows (one per dataset item), their aggregates, and how both are written as text.

Aggregates: per score name the mean of its numeric values and the count of items that produced it,
over the items whose task returned. Items whose task raised (`errors`) or ran past the timeout
(`timeouts`) are counted apart and are not evaluated, so they never pull a score's mean down; a
comparison shows them as failures instead. Latency p50/p95 is over the items that finished (returned or
raised), not those cut off by the timeout; cost is the total over every item.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tracewire.read import formats as F

OK, ERROR, TIMEOUT = "ok", "error", "timeout"


@dataclass
class Row:
    """One dataset item's run. `scores` maps an evaluator's name to its number (or its label);
    `evaluator_errors` to what it raised. `error` is {"type", "message"} when the task failed (type
    "timeout" when it ran out of time). `latency` is in ms, `cost` in USD (None when unknown)."""

    item_id: str
    position: int
    input: Any
    output: Any
    expected: Any
    trace_id: str | None
    status: str = OK
    error: dict[str, str] | None = None
    scores: dict[str, float | str | None] = field(default_factory=dict)
    evaluator_errors: dict[str, str] = field(default_factory=dict)
    latency: float | None = None
    cost: float | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: a value that occurred, the same on every platform."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def aggregate(rows: Sequence[Row]) -> dict[str, Any]:
    """The run's summary (see the module's note on what each figure covers)."""
    scores: dict[str, dict[str, Any]] = {}
    evaluator_errors: dict[str, int] = {}
    for r in rows:
        if r.status != OK:
            continue
        for name, v in r.scores.items():
            entry = scores.setdefault(name, {"mean": None, "count": 0, "_sum": 0.0, "_n": 0})
            entry["count"] += 1
            if isinstance(v, (int, float)):
                entry["_sum"] += v
                entry["_n"] += 1
        for name in r.evaluator_errors:
            evaluator_errors[name] = evaluator_errors.get(name, 0) + 1
    for entry in scores.values():
        n, total = entry.pop("_n"), entry.pop("_sum")
        entry["mean"] = total / n if n else None
    latencies = [r.latency for r in rows if r.status != TIMEOUT and r.latency is not None]
    costs = [r.cost for r in rows if r.cost is not None]
    return {
        "items": len(rows),
        "ok": sum(r.status == OK for r in rows),
        "errors": sum(r.status == ERROR for r in rows),
        "timeouts": sum(r.status == TIMEOUT for r in rows),
        "scores": scores,
        "evaluator_errors": evaluator_errors,
        "latency_ms": {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95)},
        "cost_usd": round(sum(costs), 8) if costs else None,
    }


# -- text ------------------------------------------------------------------------------------------------
def number(v: float | str | None) -> str:
    """A score as written in tables: `1`, `0.5`, `0.333`; a label as it is; `-` for none."""
    if v is None:
        return F.MISSING
    if isinstance(v, str):
        return v
    return f"{v:.3g}"


def mean(v: float | None) -> str:
    return F.MISSING if v is None else f"{v:.3f}"


def preview(value: Any, width: int = 32) -> str:
    """One line of at most `width` characters: a string as it is, anything else as JSON-ish text."""
    text = value if isinstance(value, str) else F.MISSING if value is None else _compact(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _compact(value: Any) -> str:
    import json

    try:
        return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(value)


def columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, trailing blanks cut: a column whose width varies from
    run to run (latency) goes last, so the others stay where they are."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


def score_cell(row: Row, name: str) -> str:
    """A row's score as written in tables; `error` when its evaluator raised."""
    return "error" if name in row.evaluator_errors else number(row.scores.get(name))


def status_text(row: Row) -> str:
    if row.status == OK:
        return OK
    if row.status == TIMEOUT:
        return TIMEOUT
    return f"error {row.error['type']}" if row.error else ERROR
