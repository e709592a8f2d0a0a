"""An experiment run's result: a row per dataset item, the run's aggregates, and its text table.

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
from typing import TYPE_CHECKING, Any

from tracewire.experiments import store as S
from tracewire.read import formats as F

if TYPE_CHECKING:
    from tracewire.experiments.compare import Comparison

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


@dataclass
class ExperimentResult:
    """What `tracewire.experiment` returns, and what `tracewire experiments show` reads back."""

    name: str
    run_id: str
    dataset: str
    dataset_version: int
    started_ns: int
    ended_ns: int
    rows: list[Row]
    summary: dict[str, Any]
    db: str | None = None

    def score_names(self) -> list[str]:
        return list(dict.fromkeys([*self.summary.get("scores", {}), *self.summary.get("evaluator_errors", {}),
                                   *(n for r in self.rows for n in r.scores)]))

    def header(self) -> str:
        return (f"{self.name}  run {self.run_id}  dataset {self.dataset} v{self.dataset_version}  "
                f"{len(self.rows)} item{'' if len(self.rows) == 1 else 's'}")

    def summary_lines(self) -> list[str]:
        s = self.summary
        lines = [f"ok {s['ok']}  errors {s['errors']}  timeouts {s['timeouts']}"]
        names = self.score_names()
        width = max([len(n) for n in names] + [7])
        for name in names:
            e = s["scores"].get(name, {"mean": None, "count": 0})
            failed = s["evaluator_errors"].get(name, 0)
            lines.append(f"{name.ljust(width)}  mean {mean(e['mean'])}  count {e['count']}"
                         + (f"  evaluator errors {failed}" if failed else ""))
        lat = s["latency_ms"]
        lines.append(f"{'cost'.ljust(width)}  {F.cost(s['cost_usd'])}")
        lines.append(f"{'latency'.ljust(width)}  p50 {F.duration(lat['p50'])}  p95 {F.duration(lat['p95'])}")
        return lines

    def table(self) -> str:
        """The run as text: header, aggregates, then a row per item (latency last)."""
        names = self.score_names()
        body = [[r.item_id, preview(r.input), preview(r.output), *(score_cell(r, n) for n in names),
                 status_text(r), F.cost(r.cost), F.duration(r.latency)] for r in self.rows]
        header = ["item", "input", "output", *names, "status", "cost", "latency"]
        return "\n".join([self.header(), *self.summary_lines(), "", *columns(header, body)]) + "\n"

    def compare(self, other: ExperimentResult) -> Comparison:
        """This run (A) against `other` (B), item by item: see `tracewire.experiments.compare`."""
        from tracewire.experiments.compare import compare

        return compare(self, other)


def load_run(given: str, db: str | None = None) -> ExperimentResult:
    """The newest run named `given`, else the run whose id starts with `given`, from the store.
    LookupError when there is none (or the prefix is ambiguous)."""
    path = S.store_path(db)
    with S.opened(path) as conn:
        run = S.find_run(conn, given)
        if run is None:
            raise LookupError(f"no experiment or run id {given!r} in {path}")
        stored = S.run_rows(conn, run[0])
    rows = [Row(item_id=r[1], position=r[0], trace_id=r[2], status=r[3], input=S.loads(r[4]), output=S.loads(r[5]),
                expected=S.loads(r[6]), error=S.loads(r[7]), scores=S.loads(r[8]) or {},
                evaluator_errors=S.loads(r[9]) or {}, latency=r[10], cost=r[11]) for r in stored]
    return ExperimentResult(run[1], run[0], run[2], run[3], run[4], run[5], rows, S.loads(run[6]), path)
