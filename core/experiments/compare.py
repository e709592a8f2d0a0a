"""Two runs side by side, item by item (matched by dataset item id), then their aggregates.

An item is a *regression* when a score went down or it failed in B where it did not in A; an
*improvement* when a score went up (and none went down) or it failed in A and not in B; *changed* when
only a label, an evaluator error or the kind of failure differs; *added* / *removed* when only one run
has it; *same* otherwise. Items are listed in that order, and by dataset position within each group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracewire.experiments.rows import OK, Row, columns, mean, preview, score_cell, status_text
from tracewire.read import formats as F

if TYPE_CHECKING:
    from tracewire.experiments.result import ExperimentResult

ORDER = ("regression", "improvement", "changed", "added", "removed", "same")


@dataclass
class ItemChange:
    item_id: str
    change: str  # one of ORDER
    a: Row | None
    b: Row | None
    deltas: dict[str, float] = field(default_factory=dict)  # B - A, for scores numeric in both


def _delta_word(d: float) -> str:
    return f"{d:+.3g}"


def classify(a: Row | None, b: Row | None, names: list[str]) -> ItemChange:
    item_id = (b or a).item_id  # type: ignore[union-attr]  # one of them is always there
    if a is None or b is None:
        return ItemChange(item_id, "added" if a is None else "removed", a, b)
    if (a.status == OK) != (b.status == OK):
        return ItemChange(item_id, "regression" if a.status == OK else "improvement", a, b)
    if a.status != OK:
        same = a.status == b.status and (a.error or {}).get("type") == (b.error or {}).get("type")
        return ItemChange(item_id, "same" if same else "changed", a, b)
    deltas: dict[str, float] = {}
    other = False
    for n in names:
        va, vb = a.scores.get(n), b.scores.get(n)
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            deltas[n] = vb - va
        elif va != vb or (n in a.evaluator_errors) != (n in b.evaluator_errors):
            other = True
    if any(d < 0 for d in deltas.values()):
        change = "regression"
    elif any(d > 0 for d in deltas.values()):
        change = "improvement"
    else:
        change = "changed" if other else "same"
    return ItemChange(item_id, change, a, b, deltas)


@dataclass
class Comparison:
    a: ExperimentResult
    b: ExperimentResult
    items: list[ItemChange]

    @property
    def score_names(self) -> list[str]:
        return list(dict.fromkeys([*self.a.score_names(), *self.b.score_names()]))

    def counts(self) -> dict[str, int]:
        return {c: sum(i.change == c for i in self.items) for c in ORDER}

    def aggregates(self) -> dict[str, Any]:
        """Per score name the means and counts of A and B and the difference of the means; errors,
        timeouts, total cost and latency percentiles of A and B."""
        sa, sb = self.a.summary, self.b.summary
        out: dict[str, Any] = {"scores": {}}
        for n in self.score_names:
            ea, eb = sa["scores"].get(n, {}), sb["scores"].get(n, {})
            ma, mb = ea.get("mean"), eb.get("mean")
            out["scores"][n] = {"a": ma, "b": mb, "delta": None if ma is None or mb is None else mb - ma,
                                "count_a": ea.get("count", 0), "count_b": eb.get("count", 0)}
        for key in ("errors", "timeouts", "cost_usd"):
            out[key] = {"a": sa[key], "b": sb[key]}
        out["latency_ms"] = {"a": sa["latency_ms"], "b": sb["latency_ms"]}
        return out

    def to_dict(self) -> dict[str, Any]:
        def side(r: ExperimentResult) -> dict[str, Any]:
            return {"name": r.name, "run_id": r.run_id, "dataset": r.dataset, "dataset_version": r.dataset_version,
                    "items": len(r.rows)}

        def row(r: Row | None) -> dict[str, Any] | None:
            return None if r is None else {"status": r.status, "error": r.error, "scores": r.scores,
                                           "evaluator_errors": r.evaluator_errors, "latency_ms": r.latency,
                                           "cost_usd": r.cost, "trace_id": r.trace_id}

        return {"a": side(self.a), "b": side(self.b), "counts": self.counts(),
                "items": [{"item_id": i.item_id, "change": i.change, "deltas": i.deltas, "a": row(i.a),
                           "b": row(i.b)} for i in self.items],
                "aggregates": self.aggregates()}

    def text(self) -> str:
        names = self.score_names
        counts = self.counts()
        lines = [f"A  {self.a.header()}", f"B  {self.b.header()}", "",
                 "  ".join(f"{c} {counts[c]}" for c in ORDER),
                 ""]
        body = []
        for i in self.items:
            a, b = i.a, i.b
            some = b or a
            assert some is not None
            body.append([i.change, i.item_id, preview(some.input, 24),
                         *(_pair(_score(a, n), _score(b, n), i.deltas.get(n)) for n in names),
                         _pair(_cell(a, status_text), _cell(b, status_text)),
                         _pair(_cell(a, lambda r: F.cost(r.cost)), _cell(b, lambda r: F.cost(r.cost))),
                         f"{_side(_cell(a, lambda r: F.duration(r.latency)))} → "
                         f"{_side(_cell(b, lambda r: F.duration(r.latency)))}"])
        lines += columns(["change", "item", "input", *names, "status", "cost", "latency"], body)
        agg = self.aggregates()
        width = max([len(n) for n in names] + [len("timeouts")])
        lines += ["", "aggregates (A → B)"]
        for n, e in agg["scores"].items():
            delta = "" if e["delta"] is None else f" ({e['delta']:+.3f})"
            lines.append(f"  {n.ljust(width)}  mean {mean(e['a'])} → {mean(e['b'])}{delta}  "
                         f"count {e['count_a']} → {e['count_b']}")
        for key in ("errors", "timeouts"):
            va, vb = agg[key]["a"], agg[key]["b"]
            lines.append(f"  {key.ljust(width)}  {va} → {vb} ({vb - va:+d})")
        lines.append(f"  {'cost'.ljust(width)}  {F.cost(agg['cost_usd']['a'])} → {F.cost(agg['cost_usd']['b'])}")
        la, lb = agg["latency_ms"]["a"], agg["latency_ms"]["b"]
        lines.append(f"  {'latency'.ljust(width)}  p50 {F.duration(la['p50'])} → {F.duration(lb['p50'])}  "
                     f"p95 {F.duration(la['p95'])} → {F.duration(lb['p95'])}")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.text()


def _cell(row: Row | None, text: Callable[[Row], str]) -> str | None:
    """What a run says of an item, or None when the run does not have it."""
    return None if row is None else text(row)


def _score(row: Row | None, name: str) -> str | None:
    return None if row is None else score_cell(row, name)


def _side(text: str | None) -> str:
    return "(none)" if text is None else text


def _pair(a: str | None, b: str | None, delta: float | None = None) -> str:
    """`x` when both runs say the same, else `x → y`, with the difference when there is one."""
    if a == b:
        return _side(a)
    return f"{_side(a)} → {_side(b)}" + ("" if not delta else f" ({_delta_word(delta)})")


def compare(a: ExperimentResult, b: ExperimentResult) -> Comparison:
    """`b` against `a`: every item of either run, classified (see the module's note)."""
    names = list(dict.fromkeys([*a.score_names(), *b.score_names()]))
    by_a = {r.item_id: r for r in a.rows}
    by_b = {r.item_id: r for r in b.rows}
    order = [r.item_id for r in b.rows] + [r.item_id for r in a.rows if r.item_id not in by_b]
    changes = [classify(by_a.get(i), by_b.get(i), names) for i in order]
    changes.sort(key=lambda c: ORDER.index(c.change))  # stable: dataset order within a group
    return Comparison(a, b, changes)
