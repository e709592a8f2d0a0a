"""The trace page's tree as HTML: flat rows in display order with their depth, parent and first state,
failed, slow and unfinished spans marked, feedback and metric points on the header, the search text
each row carries, a tree thousands of levels deep, and the same tree inline in a notebook."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.ui.recorded import HOSTILE_SESSION, SESSION
from tracewire.read.fold import summarize, summarize_tree, tree
from tracewire.read.local import LocalStore
from tracewire.sinks.sqlite_table import connect
from tracewire.ui import notebook, timeline, trace_page

TRACE = "t" * 32
LANGGRAPH_TREE = [(0, "agent", "LangGraph"), (1, "chain", "model"), (2, "llm", "ToolCallingFakeChatModel"),
                  (1, "chain", "tools"), (2, "tool", "get_weather"), (1, "chain", "model"),
                  (2, "llm", "ToolCallingFakeChatModel")]


def _event(span: str, kind: str, phase: str, ms: float, parent: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"trace_id": TRACE, "span_id": span, "parent_span_id": parent, "kind": kind, "phase": phase,
            "name": extra.pop("name", span), "type": f"{kind}.{phase}", "time": int(1_800_000_000e9 + ms * 1e6),
            **extra}


def _span(span: str, kind: str, start: float, end: float | None, parent: str | None = None,
          **extra: Any) -> list[dict[str, Any]]:
    out = [_event(span, kind, "start", start, parent, **dict(extra))]
    if end is not None:
        out.append(_event(span, kind, "end", end, parent, **dict(extra)))
    return out


class Rows(HTMLParser):
    """Each `li.node` of the tree: its attributes, and the text of its kind, name and status cells."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self._cell: str | None = None
        self.done = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        a = dict(attrs)
        css = (a.get("class") or "").split()
        if tag == "li" and "node" in css:
            self.rows.append({**a, "classes": css, "hidden": "hidden" in a, "cells": {}})
        elif tag == "a" and "row" in css and self.rows:
            self.rows[-1]["row"] = css
        elif tag == "span" and self.rows and css and css[0] in ("kind", "name", "status", "dur", "model", "tok"):
            self._cell = css[0]

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self.rows[-1]["cells"][self._cell] = self.rows[-1]["cells"].get(self._cell, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._cell = None
        if tag == "ul":
            self.done = True  # the span pane after the tree holds kinds and names too


def _page(events: list[dict[str, Any]], span_id: str | None = None) -> str:
    return trace_page.render(summarize(TRACE, events), tree(events), span_id, "db")


def _events() -> list[dict[str, Any]]:
    """An agent: a planner with an LLM call, a failing tool under a retry chain, a feedback and a metric
    point, and a step still running (started, never ended)."""
    return [
        *_span("root", "agent", 0, 100),
        *_span("plan", "chain", 1, 40, "root"),
        *_span("llm1", "llm", 2, 38, "plan", attributes={"gen_ai.request.model": "gpt-4o-mini",
                                                         "gen_ai.usage.input_tokens": 12,
                                                         "gen_ai.usage.output_tokens": "many"},
               input=[{"role": "user", "content": "Find the Zanzibar invoice"}]),
        *_span("retry", "chain", 41, 60, "root"),
        _event("tool1", "tool", "start", 42, "retry", name="lookup"),
        _event("tool1", "tool", "error", 59, "retry", name="lookup", error={"type": "TimeoutError", "message": "slow"}),
        _event("fb", "user", "point", 61, "root", type="user.feedback", name="thumbs", output={"score": -1}),
        _event("m1", "metric", "point", 62, "root", type="metric", name="relevance", output=0.25),
        _event("wait", "tool", "start", 70, "root", name="await_human"),
    ]


def test_the_tree_is_flat_rows_in_display_order_with_their_first_state() -> None:
    html = _page(_events())
    rows = Rows(html).rows
    assert [(r["data-span"], int(r["data-depth"]), r["data-parent"], int(r["data-kids"])) for r in rows] == [
        ("root", 0, "", 5), ("plan", 1, "root", 1), ("llm1", 2, "plan", 0), ("retry", 1, "root", 1),
        ("tool1", 2, "retry", 0), ("fb", 1, "root", 0), ("m1", 1, "root", 0), ("wait", 1, "root", 0)]
    assert [(r["cells"]["kind"], r["cells"]["name"]) for r in rows] == [
        ("agent", "root"), ("chain", "plan"), ("llm", "llm1"), ("chain", "retry"), ("tool", "lookup"),
        ("user.feedback", "thumbs"), ("metric", "relevance"), ("tool", "await_human")]
    assert "<ul class=\"tree flat\" id=\"flat-rows\">" in html and "<details" not in html and "<ul><li" not in html
    # a failed trace opens on its failed span: the way there is open, the closed planner hides its LLM call
    shown = [r["data-span"] for r in rows if not r["hidden"]]
    assert shown == ["root", "plan", "retry", "tool1", "fb", "m1", "wait"]
    assert {r["data-span"] for r in rows if "open" in r["classes"]} == {"root", "retry"}
    assert {r["data-span"] for r in rows if "path" in r["classes"]} == {"root", "retry"}
    assert [r["data-span"] for r in rows if "chosen" in r.get("row", [])] == ["tool1"]
    # a row's indentation is a class: the page's CSP allows no inline style
    assert [r["classes"][1] for r in rows[:3]] == ["ind-0", "ind-1", "ind-2"] and " style=" not in html


def test_failed_slow_and_unfinished_spans_stand_out() -> None:
    html = _page(_events())
    rows = {r["data-span"]: r for r in Rows(html).rows}
    assert "failed" in rows["tool1"]["row"] and rows["tool1"]["cells"]["status"] == "error"
    assert {s for s, r in rows.items() if "error-path" in r["classes"]} == {"root", "retry"}
    failed_at = re.search(r'<div class="failed-at">(.*?)</div>', html)
    assert failed_at is not None
    steps = re.findall(r'<a class="step" href="([^"]+)"><span class="kind kind-\w+">(\w+)</span> (\w+)</a>',
                       failed_at.group(1))
    assert steps == [("/traces/" + TRACE + "?span=root#pane", "agent", "root"),
                     ("/traces/" + TRACE + "?span=retry#pane", "chain", "retry"),
                     ("/traces/" + TRACE + "?span=tool1#pane", "tool", "lookup")]
    # the LLM call takes 36 of the trace's 100 ms: over a quarter, slow; not the planner around it
    assert {s for s, r in rows.items() if "slow" in r["row"]} == {"llm1"}
    assert rows["llm1"]["cells"]["status"] == "slow" and rows["llm1"]["cells"]["model"] == "gpt-4o-mini"
    assert rows["llm1"]["cells"]["tok"] == "12 / - tok"  # a count stored as text is not a count: not raised
    assert "unfinished" in rows["wait"]["row"] and rows["wait"]["cells"]["status"] == "unfinished"
    assert "dur" not in rows["wait"]["cells"]
    assert 'data-fact="unfinished"><span class="k">unfinished</span> 1<' in html
    assert 'data-fact="slow"><span class="k">slow</span> 1<' in html
    assert "unfinished (started, no end recorded)" in _page(_events(), "wait")


def test_outliers_among_many_calls_are_slow() -> None:
    """40 tool calls under a chain: none takes a quarter of the trace; the slowest 5% (two) are slow when
    they take at least twice the median call and 100 ms; calls all alike, or a few, have none."""
    def trace(durations: list[float]) -> list[dict[str, Any]]:
        events = [*_span("root", "agent", 0, 100_000), *_span("loop", "chain", 0, 99_999, "root")]
        at = 1.0
        for i, ms in enumerate(durations, 1):
            events += _span(f"s{i}", "tool", at, at + ms, "loop")
            at += ms
        return events

    def slow(events: list[dict[str, Any]]) -> set[str]:
        return timeline.slow_spans([s for r in tree(events) for s in r.walk()])

    outliers = trace([100.0] * 37 + [150.0, 900.0, 1000.0])
    assert slow(outliers) == {"loop", "s39", "s40"}  # the chain by its share; s38 is not twice the median
    # nested, a share marks only the deepest span that has it
    nested = [*_span("root", "agent", 0, 100), *_span("a", "chain", 0, 90, "root"), *_span("b", "chain", 0, 80, "a"),
              *_span("c", "llm", 1, 70, "b"), *_span("d", "tool", 71, 72, "b")]
    assert slow(nested) == {"c"}
    assert sorted(r["data-span"] for r in Rows(_page(outliers)).rows if "slow" in r["row"]) == ["loop", "s39", "s40"]
    assert slow(trace([100.0] * 40)) == {"loop"}
    assert slow(trace([100.0] * 10 + [900.0])) == {"loop"}  # too few calls to rank
    assert slow(trace([1.0] * 38 + [9.0, 10.0])) == {"loop"}  # milliseconds: jitter, not slowness


def test_feedback_and_metric_points_are_on_the_header_and_in_the_tree() -> None:
    html = _page(_events())
    line = re.search(r'<div class="points-line">(.*?)</div>', html)
    assert line is not None
    points = re.findall(r'<a class="point-link" data-span="(\w+)" href="[^"]+"><span class="kind kind-\w+">'
                        r'([\w.]+)</span> <span class="name">(\w+)</span> <span class="v">([^<]*)</span></a>',
                        line.group(1))
    assert points == [("fb", "user.feedback", "thumbs", '{ &quot;score&quot;: -1 }'),
                      ("m1", "metric", "relevance", "0.25")]
    rows = {r["data-span"]: r for r in Rows(html).rows}
    assert rows["fb"]["data-parent"] == "root" and "point" in rows["fb"]["row"] and "status" not in rows["fb"]["cells"]
    assert '<div class="points-line">' not in _page(_events()[:6])  # no points, no line


def test_each_row_carries_what_the_search_matches_on() -> None:
    rows = {r["data-span"]: r["data-q"] for r in Rows(_page(_events())).rows}
    assert "llm" in rows["llm1"] and "gpt-4o-mini" in rows["llm1"] and "zanzibar invoice" in rows["llm1"]
    assert "zanzibar" not in rows["plan"] and "timeouterror" not in rows["tool1"] and "slow" in rows["tool1"]
    assert "role" not in rows["llm1"] and "user find the zanzibar" in rows["llm1"]  # the words, not the JSON
    assert rows["fb"].startswith("thumbs user user.feedback")
    hostile = [*_span("x", "tool", 0, 1, name='"><img src=x onerror=alert(1)>', input="<script>alert(2)</script>")]
    html = _page(hostile)
    assert "<img" not in html and "<script>alert" not in html
    assert Rows(html).rows[0]["data-q"].startswith('"><img src=x onerror=alert(1)> tool')


def test_a_trace_thousands_of_levels_deep_is_flat_and_quick_to_render() -> None:
    """Browsers flatten markup nested past 512 levels: the rows stay flat at any depth."""
    depth = 3000
    events = [e for i in range(depth)
              for e in _span(f"s{i}", "chain", i, 2 * depth - i, f"s{i - 1}" if i else None)]
    roots = tree(events)
    t0 = time.perf_counter()
    html = trace_page.render(summarize(TRACE, events), roots, f"s{depth - 1}", "db")
    took = time.perf_counter() - t0
    rows = Rows(html).rows
    assert [int(r["data-depth"]) for r in rows] == list(range(depth))
    assert all(not r["hidden"] for r in rows)  # the way to the chosen, deepest span is open
    assert html.count("<li ") == depth and "<ul><li" not in html
    assert rows[-1]["classes"][1] == "ind-24" and f'<span class="deep" title="depth">{depth - 1}</span>' in html
    timeline_html = trace_page.render(summarize(TRACE, events), roots, None, "db", view="timeline")
    assert timeline_html.count('class="tl-row') == depth
    # past timeline.OPEN_ALL_SPANS the timeline opens like the tree: the root open, the rest folded
    shown = re.findall(r'<a class="tl-row[^"]*" data-span="(\w+)"[^>]*?(?: hidden)? href', timeline_html)
    assert len(shown) == depth and timeline_html.count(" hidden href") == depth - 2
    assert ' data-span="s1" data-depth="1" data-parent="s0" data-kids="1" data-q="s1 chain" href' in timeline_html
    assert ' data-span="s2" data-depth="2" data-parent="s1" data-kids="1" data-q="s2 chain" hidden href' in timeline_html
    assert took < 5, took


def test_summarize_tree_folds_once_for_both() -> None:
    events = [*_events(), {"span_id": 7, "trace_id": TRACE}, "not an event"]
    problems: list[dict[str, Any]] = []
    summary, roots = summarize_tree(TRACE, events, problems)
    assert summary == summarize(TRACE, events) and summary.problems == 3 and len(problems) == 3
    assert roots == tree(events) and [s.span_id for s in roots] == ["root"]


@pytest.fixture(scope="module")
def langgraph_ids(agent_store: Path) -> list[str]:
    store = LocalStore(str(agent_store))
    try:
        return [r["trace_id"] for r in reversed(store.list_traces(10, session_id=SESSION))]
    finally:
        store.close()


class NotebookTree(HTMLParser):
    """(depth, kind, name) of each row of the notebook block, depth counted in nested `tw-kids` blocks."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[tuple[int, str, str]] = []
        self.tags: list[str] = []
        self._cell: str | None = None
        self._row: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        css = (dict(attrs).get("class") or "").split()
        self.tags.append(tag)
        if tag == "div":
            self.tags[-1] = "kids" if "tw-kids" in css else "div"
        if tag == "span" and css and css[0] in ("kind", "name"):
            self._cell = css[0]

    def handle_data(self, data: str) -> None:
        if self._cell == "kind":
            self._row = [data]
        elif self._cell == "name":
            self.rows.append((self.tags.count("kids"), self._row[0], data))

    def handle_endtag(self, tag: str) -> None:
        self._cell = None
        while self.tags and self.tags.pop() not in (tag, "kids" if tag == "div" else tag):
            pass


def test_a_notebook_shows_the_recorded_langgraph_run_as_the_same_tree(agent_store: Path,
                                                                      langgraph_ids: list[str]) -> None:
    view = notebook.show_trace(langgraph_ids[0][:-1], db=str(agent_store))
    assert view.trace_id == langgraph_ids[0]
    html = view._repr_html_()
    assert NotebookTree(html).rows == LANGGRAPH_TREE
    # self-contained: scoped styles inline, no script, nothing fetched
    assert html.startswith('<div class="tracewire-trace"><style>') and "<script" not in html
    assert "<link" not in html and "http" not in html and "src=" not in html
    css = html.split("<style>")[1].split("</style>")[0]
    rules = [r.strip() for r in css.split("}") if r.strip()]
    assert rules and all(r.startswith(".tracewire-trace") for r in rules)
    assert html.count("<details open>") == 1  # the root is open, the steps under it fold
    assert "<b>LangGraph</b>" in html and "210 / 29" in html
    # the page's tree holds the same rows in the same order
    events = LocalStore(str(agent_store)).trace_events(langgraph_ids[0])
    rows = Rows(trace_page.render(summarize(langgraph_ids[0], events), tree(events), None, "db")).rows
    assert [(int(r["data-depth"]), r["cells"]["kind"], r["cells"]["name"]) for r in rows] == LANGGRAPH_TREE


def test_show_trace_without_an_id_shows_the_last_trace(agent_store: Path) -> None:
    view = notebook.show_trace(db=str(agent_store))
    store = LocalStore(str(agent_store))
    try:
        (hostile,) = store.list_traces(1, session_id=HOSTILE_SESSION)
    finally:
        store.close()
    assert view.trace_id == hostile["trace_id"]
    html = view._repr_html_()
    tree_rows = NotebookTree(html).rows
    assert [(d, k) for d, k, _ in tree_rows] == [(0, "agent"), (1, "llm"), (1, "tool")]
    assert tree_rows[0][2] == "agent <script>alert(1)</script>"  # parsed back from escaped text
    assert "<script>alert" not in html
    assert re.search(r'class="row failed[^"]*"><span class="kind kind-tool">tool</span><span class="name">fetch_page<', html)
    assert f"{hostile['trace_id']}" in repr(view) and "status=error" in repr(view)
    with pytest.raises(LookupError):
        notebook.show_trace("ffffffffffff", db=str(agent_store))  # no such id


def test_show_trace_on_an_empty_store_says_so(tmp_path: Path) -> None:
    db = tmp_path / "tracewire.db"
    connect(str(db)).close()  # the sink's own schema, no event yet
    with pytest.raises(LookupError, match="no trace recorded"):
        notebook.show_trace(db=str(db))
