"""An experiment run's result as `tracewire.experiment` returns it and the commands read it back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracewire.experiments import store as S
from tracewire.experiments.compare import Comparison, compare
from tracewire.experiments.rows import Row, columns, mean, preview, score_cell, status_text
from tracewire.read import formats as F


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
