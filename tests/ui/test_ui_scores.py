"""Scores in the web viewer, local and the collector's `/ui/` (SQLite and PostgreSQL): the trace's on its
header, a span's as a badge on its row and in its pane, the session's and each turn's on the session
page; hostile labels and comments shown as text. One browser pass sees a trace's and a span's score."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import tracewire
from tests.server.collector_harness import start_collector
from tests.ui.conftest import BACKENDS, Browser, UiCollector, _fresh_pg_database, ingest_store
from tests.ui.test_ui_server import _get
from tracewire.read.local import LocalStore

SESSION = "rated-chat"
HOSTILE_LABEL = "<img src=x onerror=alert(1)>"
HOSTILE_COMMENT = 'mostly "fine" <script>alert(1)</script>'
STRAY_SPAN = "f" * 16  # a span the trace does not hold (yet)


@dataclass
class Rated:
    db: Path
    trace_id: str
    tool_span: str


@pytest.fixture(scope="module")
def rated(tmp_path_factory: pytest.TempPathFactory) -> Rated:
    """A store with one trace of a session, scored on a span, on the trace, on a span it lacks, and on the session."""
    db = tmp_path_factory.mktemp("ui-scores") / "tracewire.db"
    client = tracewire.init(sink="sqlite", db=str(db))
    with tracewire.session(session_id=SESSION, user_id="ana"), tracewire.span("agent", "support") as root:
        with tracewire.span("tool", "search") as tool:
            tracewire.score("relevant", label=HOSTILE_LABEL, comment="2 of 3 <b>hits</b>", source="llm", id="sc-span")
        with tracewire.span("llm", "chat"):
            pass
    tracewire.score("helpful", 0.75, trace_id=root.trace_id, comment=HOSTILE_COMMENT, source="human", id="sc-trace")
    tracewire.score("late", True, trace_id=root.trace_id, span_id=STRAY_SPAN, id="sc-stray")
    tracewire.score("csat", 4, session_id=SESSION, source="user", id="sc-session")
    assert client.flush(10)
    tracewire.shutdown()
    return Rated(db, root.trace_id, tool.span_id)


# The markup each score is shown with (every captured value escaped).
HELPFUL = ('<span class="score" data-score="helpful" title="mostly &quot;fine&quot; &lt;script&gt;alert(1)&lt;/script&gt;">'
           '<span class="score-name">helpful</span><span class="score-v">0.75</span><span class="score-src">human</span></span>')
RELEVANT = ('<span class="score" data-score="relevant" title="2 of 3 &lt;b&gt;hits&lt;/b&gt;">'
            '<span class="score-name">relevant</span><span class="score-label">&lt;img src=x onerror=alert(1)&gt;</span>'
            '<span class="score-src">llm</span></span>')
LATE = ('<span class="score" data-score="late"><span class="score-name">late</span><span class="score-v">true</span>'
        '<span class="score-src">code</span></span>')
CSAT = ('<span class="score" data-score="csat"><span class="score-name">csat</span><span class="score-v">4</span>'
        '<span class="score-src">user</span></span>')


def _assert_trace_pages(get: Any, r: Rated) -> None:
    """`get(path)` -> (status, html with links from the root): the trace page, then its tool span's."""
    status, html = get(f"traces/{r.trace_id}")
    assert status == 200
    assert (f'<div class="scores-line" id="trace-scores"><span class="k">scores</span>{HELPFUL}{LATE}'
            f'<span class="score-at">at span <code>{STRAY_SPAN}</code></span></div>') in html
    # the tool's row carries its score as a badge; no other row has one
    row = re.search(rf'<li class="[^"]*" data-span="{r.tool_span}".*?</li>', html)
    assert row and row.group(0).endswith(f'<span class="score-badges">{RELEVANT}</span></a></li>')
    assert html.count('class="score-badges"') == 1
    # the root span is chosen: its pane has no scores section
    assert '<section class="scores">' not in html
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>hits" not in html

    status, html = get(f"traces/{r.trace_id}?span={r.tool_span}")
    assert status == 200
    assert (f'<section class="scores"><h3>Scores</h3><ul class="score-list"><li class="score-item">{RELEVANT}'
            f'<pre class="score-comment">2 of 3 &lt;b&gt;hits&lt;/b&gt;</pre></li></ul></section>') in html


def _assert_session_page(get: Any, r: Rated) -> None:
    status, html = get(f"sessions/{SESSION}")
    assert status == 200
    assert f'<div class="scores-line" id="session-scores"><span class="k">scores</span>{CSAT}</div>' in html
    assert (f'<div class="scores-line turn-scores"><span class="k">scores</span>'
            f'<a class="score-at" href="/traces/{r.trace_id}?span={r.tool_span}#pane">{RELEVANT}</a>{HELPFUL}'
            f'<a class="score-at" href="/traces/{r.trace_id}?span={STRAY_SPAN}#pane">{LATE}</a></div>') in html
    assert "<script>alert" not in html and "<img src=x" not in html


def test_local_viewer_shows_scores(rated: Rated, viewer: Any) -> None:
    base = viewer(rated.db).url

    def get(path: str) -> tuple[int, str]:
        status, _, html = _get(base + path)
        return status, html

    _assert_trace_pages(get, rated)
    _assert_session_page(get, rated)


def test_a_store_without_scores_shows_none(tmp_path: Path, viewer: Any) -> None:
    db = tmp_path / "tracewire.db"
    client = tracewire.init(sink="sqlite", db=str(db))
    with tracewire.session(session_id="plain"), tracewire.span("agent", "unscored") as root:
        pass
    assert client.flush(10)
    tracewire.shutdown()
    base = viewer(db).url
    for path in (f"traces/{root.trace_id}", "sessions/plain"):
        status, _, html = _get(base + path)
        assert status == 200 and "<h1>" in html
        assert 'class="scores-line' not in html and 'class="score"' not in html


@pytest.fixture(scope="module", params=BACKENDS)
def scored_collector(request: pytest.FixtureRequest, rated: Rated,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiCollector]:
    """`tracewire serve` whose project holds the rated store's events and scores, and a read key to another
    project holding the same trace's events without its scores."""
    log_dir = tmp_path_factory.mktemp(f"scores-{request.param}")
    drop = None
    if request.param == "sqlite":
        db = f"sqlite:///{log_dir}/collector.db"
    else:
        db, drop = _fresh_pg_database()
    c = start_collector(request.param, db, log_dir)
    try:
        project = f"rated-{uuid.uuid4().hex[:8]}"
        sender = c.new_key(project, ("ingest",))
        sent = ingest_store(c, rated.db, sender)
        store = LocalStore(str(rated.db))
        try:
            scores = [orjson.loads(line) for line in store.score_lines()]
        finally:
            store.close()
        r = c.post(sender, scores)
        assert r.status_code == 200 and r.json()["accepted"] == len(scores) == 4, r.text[:500]
        assert c.wait_for(project, sent) == sent
        yield UiCollector(c, project, c.new_key(project, ("read",)))
    finally:
        c.close()
        if drop is not None:
            drop()


def test_collector_viewer_shows_scores_of_its_project_only(rated: Rated, scored_collector: UiCollector) -> None:
    u = scored_collector
    http = u.session(u.key)

    def get(path: str) -> tuple[int, str]:
        r = http.get(u.ui + path, timeout=30)
        # the pages link from the root; the collector serves them under /ui
        return r.status_code, re.sub(r'(href|action|src)="/ui/', r'\1="/', r.text)

    _assert_trace_pages(get, rated)
    _assert_session_page(get, rated)

    # another project with the same trace's events, none of its scores: its pages show no score
    other = f"other-{uuid.uuid4().hex[:8]}"
    sent = ingest_store(u.collector, rated.db, u.collector.new_key(other, ("ingest",)))
    assert u.collector.wait_for(other, sent) == sent
    other_http = u.session(u.collector.new_key(other, ("read",)))
    for path in (f"traces/{rated.trace_id}", f"sessions/{SESSION}"):
        r = other_http.get(u.ui + path, timeout=30)
        assert r.status_code == 200 and "<h1>" in r.text
        assert 'class="score"' not in r.text


def test_the_browser_sees_a_trace_score_and_a_span_score(rated: Rated, viewer: Any, browser: Browser) -> None:
    d = browser.driver
    d.get(f"{viewer(rated.db).url}traces/{rated.trace_id}")
    WebDriverWait(d, 10).until(lambda _: d.execute_script("return document.documentElement.dataset.ready"))
    helpful = d.find_element(By.CSS_SELECTOR, '#trace-scores .score[data-score="helpful"]')
    assert helpful.is_displayed()
    assert [helpful.find_element(By.CSS_SELECTOR, c).text for c in (".score-name", ".score-v", ".score-src")] == \
        ["helpful", "0.75", "human"]
    assert helpful.get_attribute("title") == HOSTILE_COMMENT  # the comment on hover, as text
    browser.step("trace score")

    row = next(a for a in d.find_elements(By.CSS_SELECTOR, "ul.tree a.row")
               if a.find_element(By.CSS_SELECTOR, ".name").text == "search")
    assert row.find_element(By.CSS_SELECTOR, ".score-badges .score-label").text == HOSTILE_LABEL
    row.click()
    # the page or pane is replaced while it is read: a stale element is read again
    WebDriverWait(d, 10, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda _: d.find_element(By.CSS_SELECTOR, "#pane h2").text == "tool search")
    section = d.find_element(By.CSS_SELECTOR, "#pane section.scores")
    assert section.find_element(By.TAG_NAME, "h3").text == "SCORES"  # the headings are upper-cased by style
    assert section.find_element(By.CSS_SELECTOR, ".score-label").text == HOSTILE_LABEL
    assert section.find_element(By.CSS_SELECTOR, "pre.score-comment").text == "2 of 3 <b>hits</b>"
    browser.step("span score")
    assert browser.dialogs() == [] and browser.console_errors() == []


def test_show_trace_is_imported_on_first_use() -> None:
    code = ("import sys, tracewire; assert 'tracewire.ui' not in sys.modules; "
            "from tracewire.ui.notebook import show_trace; "
            "assert tracewire.show_trace is show_trace and 'show_trace' in tracewire.__all__; "
            "from tracewire import show_trace as again; assert again is show_trace; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, "ok"), out.stderr
    with pytest.raises(AttributeError, match="no attribute 'show_tracez'"):
        tracewire.show_tracez  # noqa: B018
