"""Aggregates over a time range of the local store, for the viewer's dashboard: counts per time bucket,
latency percentiles, tokens and cost by model, the error rate and the spans that fail most. Each is one
SQL aggregate over the event table (attributes read with SQLite's JSON functions), never a fold of
every trace."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from tracewire.model import attributes as A

BUCKETS = 24  # points on the over-time charts
TOP_FAILING = 10


def _num(key: str) -> str:
    """An attribute as a number in SQL, NULL unless the stored JSON value is one (as `fold` counts it)."""
    path = f"'$.attributes.\"{key}\"'"
    return f"CASE WHEN json_type(body, {path}) IN ('integer', 'real') THEN json_extract(body, {path}) END"


def _text(key: str) -> str:
    path = f"'$.attributes.\"{key}\"'"
    return f"CASE WHEN json_type(body, {path}) = 'text' THEN json_extract(body, {path}) END"


@dataclass
class ModelUse:
    model: str  # "" when no model was recorded
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass
class Dashboard:
    since_ns: int
    until_ns: int
    bucket_ns: int
    traces: list[int] = field(default_factory=list)  # traces started in each bucket
    llm_calls: list[int] = field(default_factory=list)  # LLM calls started in each bucket
    trace_count: int = 0
    failed_traces: int = 0  # traces with a failed span
    llm_call_count: int = 0
    p50_ms: float | None = None  # trace latency, first event to last
    p95_ms: float | None = None
    models: list[ModelUse] = field(default_factory=list)  # most tokens first
    failing: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, name, failures), most first

    @property
    def error_rate(self) -> float | None:
        return self.failed_traces / self.trace_count if self.trace_count else None

    @property
    def input_tokens(self) -> int:
        return sum(m.input_tokens for m in self.models)

    @property
    def output_tokens(self) -> int:
        return sum(m.output_tokens for m in self.models)

    @property
    def cost_usd(self) -> float:
        return round(sum(m.cost_usd for m in self.models), 8)


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil(n·p/100)
    return sorted_values[int(rank) - 1]


def dashboard(conn: sqlite3.Connection, since_ns: int, until_ns: int, buckets: int = BUCKETS) -> Dashboard:
    """Traces are those whose first event falls in [since_ns, until_ns]; LLM calls and failures are
    counted by the time of their own events."""
    until_ns = max(until_ns, since_ns + 1)
    width = -(-(until_ns - since_ns) // buckets)
    d = Dashboard(since_ns, until_ns, width, [0] * buckets, [0] * buckets)
    latencies: list[float] = []
    for t0, t1, failed in conn.execute(
            "SELECT MIN(time) AS t0, MAX(time), MAX(phase = 'error') FROM events WHERE trace_id IS NOT NULL "
            "GROUP BY trace_id HAVING t0 BETWEEN ? AND ?", (since_ns, until_ns)):
        d.traces[min((t0 - since_ns) // width, buckets - 1)] += 1
        d.trace_count += 1
        d.failed_traces += bool(failed)
        latencies.append((t1 - t0) / 1e6)
    latencies.sort()
    d.p50_ms, d.p95_ms = percentile(latencies, 50), percentile(latencies, 95)
    for bucket, n in conn.execute(
            "SELECT MIN((time - ?) / ?, ?) AS b, COUNT(*) FROM events WHERE kind = 'llm' AND phase = 'start' "
            "AND time BETWEEN ? AND ? GROUP BY b", (since_ns, width, buckets - 1, since_ns, until_ns)):
        d.llm_calls[bucket] += n
        d.llm_call_count += n
    # one row per LLM call (its events' attributes, later ones over earlier as `fold` merges them), then by model
    per_call = (
        f"SELECT trace_id, span_id, MAX({_text(A.RESPONSE_MODEL)}) AS rm, MAX({_text(A.REQUEST_MODEL)}) AS qm, "
        f"MAX({_num(A.USAGE_INPUT_TOKENS)}) AS tin, MAX({_num(A.USAGE_OUTPUT_TOKENS)}) AS tout, "
        f"MAX({_num(A.COST_USD)}) AS cost FROM events WHERE kind = 'llm' AND phase != 'point' "
        "AND time BETWEEN ? AND ? GROUP BY trace_id, span_id")
    d.models = [ModelUse(m, calls, int(tin), int(tout), round(cost, 8)) for m, calls, tin, tout, cost in conn.execute(
        f"SELECT COALESCE(rm, qm, '') AS model, COUNT(*), TOTAL(tin), TOTAL(tout), TOTAL(cost) FROM ({per_call}) "
        "GROUP BY model ORDER BY TOTAL(tin) + TOTAL(tout) DESC, model", (since_ns, until_ns))]
    d.failing = [(k or "", n or "", c) for k, n, c in conn.execute(
        "SELECT kind, name, COUNT(*) AS c FROM events WHERE phase = 'error' AND time BETWEEN ? AND ? "
        "GROUP BY kind, name ORDER BY c DESC, kind, name LIMIT ?", (since_ns, until_ns, TOP_FAILING))]
    return d
