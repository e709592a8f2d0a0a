"""`/dashboard` over HTTP and the read layer's aggregates behind it: the range forms, totals equal to
the listing's, tokens and cost by model, the spans that fail most, and hostile names kept as text."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tests.ui.test_ui_server import _get
from tracewire.model import attributes as A
from tracewire.read.local import LocalStore
from tracewire.read.query import totals
from tracewire.read.stats import percentile


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "tracewire.db"
    client = tracewire.init(sink="sqlite", db=str(db))
    for i in range(6):
        model = "model-a" if i % 2 else "<b>model-b</b>"
        with tracewire.span("agent", f"run {i}"):
            with tracewire.span("llm", "chat", attributes={A.REQUEST_MODEL: model, A.USAGE_INPUT_TOKENS: 100 + i,
                                                           A.USAGE_OUTPUT_TOKENS: 10, A.COST_USD: 0.001}):
                pass
            with tracewire.span("llm", "odd", attributes={A.USAGE_INPUT_TOKENS: "many"}):  # not a number: not counted
                pass
    for _ in range(2):
        try:
            with tracewire.span("agent", "planner"), tracewire.span("tool", "<img src=x onerror=alert(1)>"):
                raise TimeoutError("slow")
        except TimeoutError:
            pass
    assert client.flush(10)
    tracewire.shutdown()
    return db


def test_aggregates_agree_with_the_listing(store: Path) -> None:
    s = LocalStore(str(store))
    try:
        d = s.dashboard(0, time.time_ns() + 10**9)
        listed = totals(s.list_traces(100))
    finally:
        s.close()
    assert (d.trace_count, d.llm_call_count, d.failed_traces) == (8, 12, 2)
    assert (d.input_tokens, d.output_tokens, d.cost_usd) == (listed.input_tokens, listed.output_tokens, listed.cost_usd)
    assert d.error_rate == 0.25 and sum(d.traces) == 8 and sum(d.llm_calls) == 12
    by_model = {m.model: (m.calls, m.input_tokens, m.output_tokens) for m in d.models}
    assert by_model == {"model-a": (3, 309, 30), "<b>model-b</b>": (3, 306, 30), "": (6, 0, 0)}
    assert d.failing == [("agent", "planner", 2), ("tool", "<img src=x onerror=alert(1)>", 2)]
    assert d.p50_ms is not None and d.p95_ms is not None and d.p50_ms <= d.p95_ms
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and percentile([1.0, 2.0, 3.0, 4.0], 95) == 4.0
    assert percentile([], 50) is None


def test_dashboard_page_ranges_and_escaping(store: Path, viewer: Any) -> None:
    base = viewer(store).url
    status, headers, html = _get(base + "dashboard")
    assert status == 200 and "'unsafe-inline'" not in headers["Content-Security-Policy"]
    tile = dict(re.findall(r'data-stat="([^"]+)"><div class="k">[^<]*</div><div class="v">([^<]*)<', html))
    assert tile["traces"] == "8" and tile["LLM calls"] == "12" and tile["error rate"] == "25.0%"
    assert tile["tokens in / out"] == "615 / 60" and tile["cost"] == "$0.006"
    assert html.count("<svg class=\"chart") == 3 and " style=" not in html
    assert "&lt;b&gt;model-b&lt;/b&gt;" in html and "<b>model-b" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html
    assert 'href="/?name=planner&amp;status=error"' in html  # a failing span leads to its failed traces
    assert "Dashboard</a>" in html and 'href="/sessions"' in html  # the views link to each other
    older = _get(base + "dashboard?since=2020-01-01&until=2020-01-02")[2]
    assert 'data-stat="traces"><div class="k">traces</div><div class="v">0<' in older and "No failures." in older
    assert 'data-stat="traces"><div class="k">traces</div><div class="v">8<' in _get(base + "dashboard?since=1h")[2]
    status, _, bad = _get(base + "dashboard?since=%3Cscript%3E")
    assert status == 400 and "is not a time" in bad and "<script>" not in bad and "&lt;script&gt;" in bad
