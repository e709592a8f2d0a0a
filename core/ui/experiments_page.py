"""`/experiments`, `/experiments/<run>` and `/experiments/compare?a=RUN&b=RUN`: the experiment runs of the
local store, one run item by item, and two runs compared as `tracewire experiments compare` compares them
(`tracewire.experiments.compare`). A run is named as the command takes it: a name (its newest run) or a
run id prefix. Inputs and outputs are untrusted: every one reaches the page through `esc`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tracewire.experiments import store as S
from tracewire.experiments.compare import ORDER, Comparison, ItemChange
from tracewire.experiments.result import ExperimentResult, load_run
from tracewire.experiments.rows import Row, mean, preview, score_cell, status_text
from tracewire.read import formats as F
from tracewire.ui.markup import esc, page, trace_url, url

RUNS_SHOWN = 200  # newest first
PREVIEW_CHARS = 60
ELSEWHERE = ("Experiments are kept in the local store; run `tracewire ui` where they were recorded.")


def run_url(run_id: str) -> str:
    return url(f"/experiments/{run_id}")


def _trace_link(row: Row | None, label: str = "trace") -> str:
    if row is None or not row.trace_id:
        return F.MISSING
    return f'<a class="trace-link" href="{trace_url(row.trace_id)}">{esc(label)}</a>'


def _cell(value: Any) -> str:
    """A content preview: one line, its full text on hover."""
    full = preview(value, 2_000)
    return f'<span class="preview" title="{esc(full)}">{esc(preview(value, PREVIEW_CHARS))}</span>'


def _table(css: str, header: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


# -- the runs ----------------------------------------------------------------------------------------------
def runs_page(runs: Sequence[tuple[Any, ...]], where: str) -> str:
    """Runs (rows of `store.list_runs`, newest first) with a GET form choosing two to compare: A is the
    second newest and B the newest unless chosen otherwise."""
    if not runs:
        body = '<h1>Experiments</h1><p class="empty">No experiment runs recorded yet.</p>'
        return page("Experiments", body, subtitle=where)
    summaries = [S.loads(r[6]) for r in runs]
    names = list(dict.fromkeys(n for s in summaries for n in s["scores"]))
    out = []
    for i, ((run_id, name, dataset, version, started, _, _), s) in enumerate(zip(runs, summaries, strict=True)):
        scores = "".join(f'<td class="num exp-score">{esc(mean(s["scores"][n]["mean"]) if n in s["scores"] else F.MISSING)}'
                         "</td>" for n in names)
        a_on = " checked" if i == min(1, len(runs) - 1) else ""
        b_on = " checked" if i == 0 else ""
        out.append(
            f'<tr class="run" data-run="{esc(run_id)}">'
            f'<td><a class="run-link" href="{run_url(run_id)}">{esc(name)}</a></td>'
            f'<td class="id">{esc(run_id[:8])}</td><td>{esc(dataset)} v{int(version)}</td>'
            f'<td class="num">{int(s["items"])}</td>{scores}'
            f'<td class="num">{int(s["errors"])}</td><td class="num">{int(s["timeouts"])}</td>'
            f'<td class="num">{esc(F.duration(s["latency_ms"]["p50"]))}</td>'
            f'<td class="num">{esc(F.cost(s["cost_usd"]))}</td><td>{esc(F.when(started))}</td>'
            f'<td class="pick"><input type="radio" name="a" value="{esc(run_id)}" aria-label="A"{a_on}></td>'
            f'<td class="pick"><input type="radio" name="b" value="{esc(run_id)}" aria-label="B"{b_on}></td></tr>')
    header = ["Experiment", "Run", "Dataset", "Items", *names, "Errors", "Timeouts", "Latency p50", "Cost",
              "Started", "A", "B"]
    body = ('<h1>Experiments</h1><form class="compare-form" method="get" action="/experiments/compare">'
            + _table("experiments", header, out)
            + '<p><button type="submit" id="compare">Compare</button> the run chosen as B against A</p></form>')
    return page("Experiments", body, subtitle=where)


def elsewhere(where: str) -> str:
    """What the collector's viewer says: the experiments are in the store of the machine that ran them."""
    return page("Experiments", f'<h1>Experiments</h1><p class="empty">{esc(ELSEWHERE)}</p>',
                subtitle=where)


def not_found(message: str, where: str) -> str:
    return page("Not found", f'<h1>Not found</h1><p class="empty">{esc(message)}</p>'
                             '<p><a href="/experiments">All experiment runs</a></p>', subtitle=where)


def unreadable(message: str, where: str) -> str:
    return page("Experiments", f'<h1>Experiments</h1><p class="empty">The experiment runs cannot be read: '
                               f"{esc(message)}</p>", subtitle=where)


# -- one run -----------------------------------------------------------------------------------------------
def _summary(r: ExperimentResult) -> str:
    s = r.summary
    cells = [("ok", str(s["ok"])), ("errors", str(s["errors"])), ("timeouts", str(s["timeouts"]))]
    for n in r.score_names():
        e = s["scores"].get(n, {"mean": None, "count": 0})
        failed = s["evaluator_errors"].get(n, 0)
        cells.append((n, f"mean {mean(e['mean'])} · count {e['count']}"
                      + (f" · evaluator errors {failed}" if failed else "")))
    lat = s["latency_ms"]
    cells += [("cost", F.cost(s["cost_usd"])), ("latency", f"p50 {F.duration(lat['p50'])} · p95 {F.duration(lat['p95'])}")]
    return '<dl class="exp-summary">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in cells) + "</dl>"


def _head(r: ExperimentResult) -> str:
    return (f'<a class="run-link" href="{run_url(r.run_id)}">{esc(r.name)}</a> <span class="id">{esc(r.run_id[:8])}'
            f'</span> · dataset {esc(r.dataset)} v{int(r.dataset_version)} · {len(r.rows)} items · '
            f"started {esc(F.when(r.started_ns))}")


def run_page(r: ExperimentResult, where: str) -> str:
    names = r.score_names()
    rows = [f'<tr class="item {esc(row.status)}" data-item="{esc(row.item_id)}"><td>{esc(row.item_id)}</td>'
            f"<td>{_cell(row.input)}</td><td>{_cell(row.output)}</td><td>{_cell(row.expected)}</td>"
            f'<td class="status {esc(row.status)}">{esc(status_text(row))}</td>'
            + "".join(f'<td class="num exp-score">{esc(score_cell(row, n))}</td>' for n in names)
            + f'<td class="num">{esc(F.duration(row.latency))}</td><td class="num">{esc(F.cost(row.cost))}</td>'
            f"<td>{_trace_link(row)}</td></tr>" for row in r.rows]
    table = _table("experiment-items", ["Item", "Input", "Output", "Expected", "Status", *names, "Latency", "Cost",
                                        "Trace"], rows)
    body = (f"<h1>{esc(r.name)}</h1><p class=\"exp-head\">{_head(r)}</p>{_summary(r)}{table}"
            '<p><a href="/experiments">All experiment runs</a></p>')
    return page(f"Experiment {r.name}", body, subtitle=where)


# -- two runs ----------------------------------------------------------------------------------------------
def _delta(d: float | None, places: str = ".3g") -> str:
    if not d:
        return ""
    return f' <span class="exp-delta {"down" if d < 0 else "up"}">({d:+{places}})</span>'


def _pair(a: str | None, b: str | None, delta: float | None = None) -> str:
    """`x` when both runs say the same, else `x → y`, with B - A when there is one (escaped)."""
    shown_a, shown_b = ("(none)" if v is None else v for v in (a, b))
    if a == b:
        return esc(shown_a)
    return f"{esc(shown_a)} → {esc(shown_b)}{_delta(delta)}"


def _said(row: Row | None, text: Callable[[Row], str]) -> str | None:
    """What a run says of an item, or None when the run does not have it."""
    return None if row is None else text(row)


def _item(i: ItemChange, names: Sequence[str]) -> str:
    a, b = i.a, i.b
    some = b or a
    assert some is not None  # a change always has one side

    def score(row: Row | None, name: str) -> str | None:
        return None if row is None else score_cell(row, name)

    scores = "".join(f'<td class="num exp-score">{_pair(score(a, n), score(b, n), i.deltas.get(n))}</td>' for n in names)
    status = _pair(_said(a, status_text), _said(b, status_text))
    cost = _pair(_said(a, lambda r: F.cost(r.cost)), _said(b, lambda r: F.cost(r.cost)))
    # latency always as A → B: it differs from run to run even when nothing else does
    latency = " → ".join(esc(_said(r, lambda r: F.duration(r.latency)) or "(none)") for r in (a, b))
    return (f'<tr class="change {esc(i.change)}" data-item="{esc(i.item_id)}"><td class="exp-change">{esc(i.change)}</td>'
            f"<td>{esc(i.item_id)}</td><td>{_cell(some.input)}</td>{scores}<td>{status}</td>"
            f'<td class="num">{latency}</td><td class="num">{cost}</td>'
            f"<td>{_trace_link(a, 'A')} {_trace_link(b, 'B')}</td></tr>")


def _aggregates(c: Comparison) -> str:
    agg = c.aggregates()
    rows = []
    for n, e in agg["scores"].items():
        rows.append(f'<tr data-agg="{esc(n)}"><th>{esc(n)}</th><td>mean {esc(mean(e["a"]))} → {esc(mean(e["b"]))}'
                    f'{_delta(e["delta"], ".3f")}</td><td>count {int(e["count_a"])} → {int(e["count_b"])}</td></tr>')
    for key in ("errors", "timeouts"):
        va, vb = int(agg[key]["a"]), int(agg[key]["b"])
        rows.append(f'<tr data-agg="{key}"><th>{key}</th><td>{va} → {vb} ({vb - va:+d})</td><td></td></tr>')
    rows.append(f'<tr data-agg="cost"><th>cost</th><td>{esc(F.cost(agg["cost_usd"]["a"]))} → '
                f'{esc(F.cost(agg["cost_usd"]["b"]))}</td><td></td></tr>')
    la, lb = agg["latency_ms"]["a"], agg["latency_ms"]["b"]
    rows.append(f'<tr data-agg="latency"><th>latency</th><td>p50 {esc(F.duration(la["p50"]))} → '
                f'{esc(F.duration(lb["p50"]))}</td><td>p95 {esc(F.duration(la["p95"]))} → '
                f'{esc(F.duration(lb["p95"]))}</td></tr>')
    return f'<table class="exp-aggregates"><tbody>{"".join(rows)}</tbody></table>'


def compare_page(c: Comparison, where: str) -> str:
    """B against A: the aggregate deltas on top, then every item, regressions first (`compare.ORDER`)."""
    names = c.score_names
    counts = c.counts()
    said = " · ".join(f'<span class="exp-count {c_}">{c_} {counts[c_]}</span>' for c_ in ORDER)
    table = _table("experiment-compare", ["Change", "Item", "Input", *names, "Status", "Latency", "Cost", "Traces"],
                   [_item(i, names) for i in c.items])
    body = (f'<h1>Compare</h1><p class="exp-head">A: {_head(c.a)}</p><p class="exp-head">B: {_head(c.b)}</p>'
            f'<h2>Aggregates (A → B)</h2>{_aggregates(c)}<p class="counts">{said}</p>{table}'
            '<p><a href="/experiments">All experiment runs</a></p>')
    return page(f"Compare {c.a.name} and {c.b.name}", body, subtitle=where)


# -- read from the store: a run not found (or an ambiguous prefix) is a LookupError naming it ---------------
def listing(db: str, where: str) -> str:
    with S.opened(db) as conn:
        return runs_page(S.list_runs(conn, limit=RUNS_SHOWN), where)


def one_run(db: str, given: str, where: str) -> str:
    return run_page(load_run(given, db), where)


def comparison(db: str, a: str, b: str, where: str) -> str:
    if not a or not b:
        raise LookupError("choose two runs to compare: /experiments/compare?a=RUN&b=RUN")
    return compare_page(load_run(a, db).compare(load_run(b, db)), where)
