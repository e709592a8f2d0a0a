"""`/dashboard?since=…&until=…`: the store over a time range — traces and LLM calls over time, latency
percentiles, tokens and cost by model, the error rate and the spans that fail most. The charts are SVG
drawn here (shapes placed by attributes, which the strict CSP allows), so nothing is fetched."""

from __future__ import annotations

from collections.abc import Sequence

from tracewire.read import formats as fmt
from tracewire.read.stats import Dashboard
from tracewire.ui.markup import esc, page, url

DEFAULT_SINCE = "24h"
_W, _H, _PAD = 600.0, 160.0, 18.0  # a chart's box in SVG units, and the room left for its axis labels


def bar_chart(values: Sequence[float], label: str, first: str, last: str, css: str = "") -> str:
    """Bars of equal width, the tallest reaching the top; the range's ends written under the axis."""
    top = max(values, default=0) or 1
    step = _W / max(len(values), 1)
    plot_h = _H - _PAD
    bars = []
    for i, v in enumerate(values):
        h = v / top * (plot_h - 4)
        bars.append(f'<rect class="bar" x="{i * step + 1:.1f}" y="{plot_h - h:.1f}" width="{max(step - 2, 1):.1f}" '
                    f'height="{h:.1f}"><title>{esc(v)}</title></rect>')
    return (f'<svg class="chart {esc(css)}" viewBox="0 0 {_W:.0f} {_H:.0f}" role="img" aria-label="{esc(label)}">'
            f'<line class="axis" x1="0" y1="{plot_h}" x2="{_W:.0f}" y2="{plot_h}"></line>{"".join(bars)}'
            f'<text class="tick" x="0" y="{_H - 4:.0f}">{esc(first)}</text>'
            f'<text class="tick" x="{_W:.0f}" y="{_H - 4:.0f}" text-anchor="end">{esc(last)}</text>'
            f'<text class="tick" x="2" y="12">max {esc(f"{top:,.0f}")}</text></svg>')


def hbar_chart(rows: Sequence[tuple[str, float, str]], label: str) -> str:
    """One horizontal bar per (name, value, value as written) row."""
    top = max((v for _, v, _ in rows), default=0) or 1
    row_h = 22.0
    parts = []
    for i, (name, v, shown) in enumerate(rows):
        y = i * row_h
        parts.append(f'<text class="tick" x="0" y="{y + 15:.0f}">{esc(name)}</text>'
                     f'<rect class="bar" x="200" y="{y + 4:.0f}" width="{max(v / top * 300, 1):.1f}" height="14">'
                     f'<title>{esc(shown)}</title></rect>'
                     f'<text class="tick" x="{max(v / top * 300, 1) + 206:.1f}" y="{y + 15:.0f}">{esc(shown)}</text>')
    return (f'<svg class="chart hbars" viewBox="0 0 {_W:.0f} {max(len(rows), 1) * row_h:.0f}" role="img" '
            f'aria-label="{esc(label)}">{"".join(parts)}</svg>')


def _range_form(since: str, until: str) -> str:
    return ('<form class="filters" method="get" action="/dashboard">'
            f'<label>since <input name="since" value="{esc(since)}" placeholder="24h, 7d, 2026-12-06"></label>'
            f'<label>until <input name="until" value="{esc(until)}" placeholder="now"></label>'
            '<button type="submit">Show</button></form>')


def render(d: Dashboard, since: str, until: str, where: str) -> str:
    rate = "-" if d.error_rate is None else f"{d.error_rate:.1%}"
    facts = [("traces", f"{d.trace_count:,}"), ("LLM calls", f"{d.llm_call_count:,}"),
             ("tokens in / out", fmt.tokens_in_out(d.input_tokens, d.output_tokens)), ("cost", fmt.cost(d.cost_usd)),
             ("error rate", rate), ("p50 latency", fmt.duration(d.p50_ms)), ("p95 latency", fmt.duration(d.p95_ms))]
    tiles = "".join(f'<div class="tile" data-stat="{esc(k)}"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div>'
                    f'</div>' for k, v in facts)
    first, last = fmt.when(d.since_ns), fmt.when(d.until_ns)
    models = "".join(
        f'<tr class="model-row"><td>{esc(m.model or "(unknown)")}</td><td class="num">{m.calls:,}</td>'
        f'<td class="num tokens">{esc(fmt.tokens_in_out(m.input_tokens, m.output_tokens))}</td>'
        f'<td class="num cost">{esc(fmt.cost(m.cost_usd))}</td></tr>' for m in d.models)
    by_model = (hbar_chart([(m.model or "(unknown)", m.input_tokens + m.output_tokens,
                             f"{fmt.tokens(m.input_tokens + m.output_tokens)} tok") for m in d.models],
                           "tokens by model")
                + '<table class="traces models"><thead><tr><th>Model</th><th>LLM calls</th><th>Tokens in / out</th>'
                f'<th>Cost</th></tr></thead><tbody>{models}</tbody></table>') if d.models else \
        '<p class="empty">No LLM calls in this range.</p>'
    failing = "".join(
        f'<tr class="failing-row"><td><span class="kind kind-{esc(k)}">{esc(k)}</span> '
        f'<a href="{url("/", {"name": n, "status": "error"}) if k else "/"}">{esc(n)}</a></td>'
        f'<td class="num">{c:,}</td></tr>' for k, n, c in d.failing)
    failing_html = (f'<table class="traces failing"><thead><tr><th>Span</th><th>Failures</th></tr></thead>'
                    f'<tbody>{failing}</tbody></table>') if d.failing else '<p class="empty">No failures.</p>'
    body = (f'<h1>Dashboard</h1>{_range_form(since, until)}<p class="range">{esc(first)} – {esc(last)}</p>'
            f'<div class="tiles">{tiles}</div><div class="charts">'
            f'<section class="card"><h3>Traces over time</h3>{bar_chart(d.traces, "traces over time", first, last, "traces")}'
            f'</section><section class="card"><h3>LLM calls over time</h3>'
            f'{bar_chart(d.llm_calls, "LLM calls over time", first, last, "llm")}</section>'
            f'<section class="card"><h3>Tokens and cost by model</h3>{by_model}</section>'
            f'<section class="card"><h3>Top failing spans</h3>{failing_html}</section></div>')
    return page("Dashboard", body, subtitle=where)


def bad_range(message: str, since: str, until: str, where: str) -> str:
    return page("Dashboard", f'<h1>Dashboard</h1>{_range_form(since, until)}<p class="empty error">{esc(message)}</p>',
                subtitle=where)
