"""The trace page's timeline in a real headless Chromium: the recorded agent's spans as bars on one time
scale, the view kept in the URL, a bar opening its span's pane, a failed span in red."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.ui.conftest import Browser
from tests.ui.recorded import HOSTILE_SESSION, SESSION, XSS_SCRIPT


def _bars(driver: Any) -> list[tuple[str, str, str]]:
    """(kind, name, duration text) of each timeline row, top to bottom."""
    return [(r.find_element(By.CSS_SELECTOR, ".kind").text, r.find_element(By.CSS_SELECTOR, ".name").text,
             r.find_element(By.CSS_SELECTOR, ".dur").text) for r in driver.find_elements(By.CSS_SELECTOR, "a.tl-row")]


def _rect(driver: Any, name: str, nth: int = 0) -> tuple[float, float]:
    rows = [r for r in driver.find_elements(By.CSS_SELECTOR, "a.tl-row")
            if r.find_element(By.CSS_SELECTOR, ".name").text == name]
    rect = rows[nth].find_element(By.CSS_SELECTOR, "rect.tl-bar")
    return float(rect.get_attribute("x") or "nan"), float(rect.get_attribute("width") or "nan")


def test_switch_to_the_timeline_and_open_a_span_from_its_bar(agent_store: Path, viewer: Any, browser: Browser) -> None:
    d = browser.driver
    server = viewer(agent_store)
    d.get(f"{server.url}?session={SESSION}")
    d.find_elements(By.CSS_SELECTOR, "table.traces tbody tr a.trace-link")[1].click()  # the first turn
    WebDriverWait(d, 10).until(EC.url_contains("/traces/"))
    assert d.find_element(By.CSS_SELECTOR, ".view-tab.chosen").text == "Tree"
    assert d.find_elements(By.CSS_SELECTOR, "a.tl-row") == []

    d.find_element(By.ID, "view-timeline").click()
    WebDriverWait(d, 10).until(EC.url_contains("view=timeline"))
    assert d.find_element(By.CSS_SELECTOR, ".view-tab.chosen").text == "Timeline"
    bars = _bars(d)
    assert [(k, n) for k, n, _ in bars] == [
        ("agent", "LangGraph"), ("chain", "model"), ("llm", "ToolCallingFakeChatModel"), ("chain", "tools"),
        ("tool", "get_weather"), ("chain", "model"), ("llm", "ToolCallingFakeChatModel")]
    assert all(dur and dur != "unfinished" for _, _, dur in bars)
    assert d.find_elements(By.CSS_SELECTOR, "a.tl-row svg rect.tl-bar")
    # one scale: the root spans it all, each step starts where the one before it ended
    root_x, root_w = _rect(d, "LangGraph")
    assert root_x == 0 and root_w == pytest.approx(1000, abs=0.01)
    first_x, _ = _rect(d, "model")
    tool_x, _ = _rect(d, "get_weather")
    second_x, second_w = _rect(d, "model", 1)
    assert first_x <= tool_x <= second_x and second_x + second_w <= 1000.01
    assert all(r.is_displayed() for r in d.find_elements(By.CSS_SELECTOR, "a.tl-row"))
    browser.step("timeline")

    tool = [r for r in d.find_elements(By.CSS_SELECTOR, "a.tl-row") if r.find_element(By.CSS_SELECTOR, ".name").text == "get_weather"]
    tool[0].click()
    WebDriverWait(d, 10).until(EC.url_contains("span="))
    assert "view=timeline" in d.current_url  # the view stays chosen
    pane = WebDriverWait(d, 10).until(EC.visibility_of_element_located((By.ID, "pane")))
    assert pane.find_element(By.TAG_NAME, "h2").text == "tool get_weather"
    assert d.find_element(By.CSS_SELECTOR, "a.tl-row.chosen .name").text == "get_weather"
    browser.step("span chosen from its bar")

    d.find_element(By.ID, "view-tree").click()
    WebDriverWait(d, 10).until(lambda _: "view=timeline" not in d.current_url)
    assert d.find_element(By.CSS_SELECTOR, "a.row.chosen .name").text == "get_weather"  # same span, in the tree
    assert browser.console_errors() == []


def test_a_failed_span_is_red_on_the_timeline(agent_store: Path, viewer: Any, browser: Browser) -> None:
    d = browser.driver
    server = viewer(agent_store)
    d.get(f"{server.url}?session={HOSTILE_SESSION}")
    href = d.find_element(By.CSS_SELECTOR, "a.trace-link").get_attribute("href")
    d.get(f"{href}?view=timeline")
    failed = d.find_element(By.CSS_SELECTOR, "a.tl-row.tl-error")
    assert failed.find_element(By.CSS_SELECTOR, ".name").text == "fetch_page"
    assert "chosen" in (failed.get_attribute("class") or "")  # a failed trace opens on the span that failed
    fill = d.execute_script("return getComputedStyle(arguments[0]).fill;", failed.find_element(By.CSS_SELECTOR, "rect"))
    assert fill == "rgb(192, 38, 45)"
    assert d.find_element(By.CSS_SELECTOR, "a.tl-row .name").text == f"agent {XSS_SCRIPT}"  # text, not markup
    assert browser.dialogs() == [] and browser.console_errors() == []
    browser.step("failed span on the timeline")


def _event(span: str, kind: str, phase: str, ms: float, parent: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"trace_id": "t" * 32, "span_id": span, "parent_span_id": parent, "kind": kind, "phase": phase,
            "name": extra.pop("name", span), "type": f"{kind}.{phase}", "time": int(1_800_000_000e9 + ms * 1e6),
            **extra}


def test_timeline_marks_unfinished_slow_failed_and_point_events() -> None:
    """Rendered from events as the store holds them: a span with a start and no end yet, a long LLM call,
    a failed tool and a feedback point."""
    from tracewire.read.fold import summarize, tree
    from tracewire.ui import trace_page

    events = [
        _event("root", "agent", "start", 0), _event("root", "agent", "end", 100),
        _event("llm1", "llm", "start", 5, "root"), _event("llm1", "llm", "end", 85, "root"),
        _event("tool1", "tool", "start", 86, "root", name="<b>lookup</b>"),
        _event("tool1", "tool", "error", 88, "root", error={"type": "KeyError", "message": "x"}),
        _event("fb", "user", "point", 90, "root", type="user.feedback", name="thumbs"),
        _event("wait", "tool", "start", 92, "root"),
    ]
    html = trace_page.render(summarize("t" * 32, events), tree(events), "llm1", "db", view="timeline")
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<a class="tl-row[^"]*" data-span="(\w+)".*?</a>', html)}
    assert list(rows) == ["root", "llm1", "tool1", "fb", "wait"]
    assert 'x="0.00" y="2" width="1000.00"' in rows["root"]
    assert "slow" in rows["llm1"].split('"')[1] and 'x="50.00" y="2" width="800.00"' in rows["llm1"]
    assert "slow" not in rows["root"].split('"')[1] and "slow" not in rows["tool1"].split('"')[1]
    assert "tl-error" in rows["tool1"] and "&lt;b&gt;lookup&lt;/b&gt;" in rows["tool1"] and "<b>" not in html
    assert "tl-point" in rows["fb"] and "user.feedback" in rows["fb"]
    assert "tl-open" in rows["wait"] and "unfinished" in rows["wait"]
    assert 'x="920.00" y="2" width="80.00"' in rows["wait"]  # runs to the last thing known of the trace
    assert "chosen" in rows["llm1"].split('"')[1] and "view=timeline" in rows["llm1"]
    assert 'id="view-timeline" href="/traces/' + "t" * 32 + '?span=llm1&amp;view=timeline"' in html
    assert "expand-all" not in html  # the tree's buttons belong to the tree
    assert " style=" not in html
    tree_page = trace_page.render(summarize("t" * 32, events), tree(events), None, "db", view="<script>")
    assert "tl-row" not in tree_page and "expand-all" in tree_page  # an unknown view is the tree


def test_open_the_session_and_read_the_conversation(agent_store: Path, viewer: Any, browser: Browser) -> None:
    d = browser.driver
    server = viewer(agent_store)
    d.get(server.url)
    d.find_element(By.ID, "nav-sessions").click()
    WebDriverWait(d, 10).until(EC.url_contains("/sessions"))
    rows = {r.get_attribute("data-session"): r for r in d.find_elements(By.CSS_SELECTOR, "tr.session-row")}
    assert set(rows) == {SESSION, HOSTILE_SESSION}
    ours = rows[SESSION]
    assert [ours.find_element(By.CSS_SELECTOR, f"td.{c}").text for c in ("user", "traces", "llm", "tokens", "errors")] \
        == ["ana", "2", "4", "420 / 58", "0"]
    assert rows[HOSTILE_SESSION].find_element(By.CSS_SELECTOR, "td.errors").text == "1"
    browser.step("sessions")

    ours.find_element(By.CSS_SELECTOR, "a.session-link").click()
    WebDriverWait(d, 10).until(EC.url_contains(f"/sessions/{SESSION}"))
    said = [(m.find_element(By.CSS_SELECTOR, ".role").text, m.find_element(By.TAG_NAME, "pre").text)
            for m in d.find_elements(By.CSS_SELECTOR, ".turn .msg.said")]
    assert said == [("user", "Is it raining over the fjords in Oslo?"), ("assistant", "Light snow in Oslo, no rain."),
                    ("user", "And in Lisbon?"), ("assistant", "Sunny in Lisbon.")]
    did = [line.text for line in d.find_elements(By.CSS_SELECTOR, ".turn .did-line")]
    assert len(did) == 2 and all("2 LLM calls" in t and "tool get_weather" in t and "210 / 29 tok" in t for t in did)
    facts = {f.get_attribute("data-fact"): f.find_element(By.CSS_SELECTOR, ".v").text
             for f in d.find_elements(By.CSS_SELECTOR, ".totals .fact")}
    assert {k: facts[k] for k in ("traces", "LLM calls", "tokens in / out", "errors", "user")} == \
        {"traces": "2", "LLM calls": "4", "tokens in / out": "420 / 58", "errors": "0", "user": "ana"}
    assert facts["latency"].endswith("ms") or facts["latency"].endswith(" s")
    browser.step("session conversation")

    d.find_elements(By.CSS_SELECTOR, ".turn .did-line a.trace-link")[1].click()  # the second turn's trace
    WebDriverWait(d, 10).until(EC.url_contains("/traces/"))
    assert "Lisbon" in d.find_element(By.ID, "pane").text
    d.find_element(By.CSS_SELECTOR, ".facts-line a.session").click()  # and back to its session
    WebDriverWait(d, 10).until(EC.url_contains(f"/sessions/{SESSION}"))
    assert browser.console_errors() == [] and browser.dialogs() == []


def test_open_the_dashboard(agent_store: Path, viewer: Any, browser: Browser) -> None:
    d = browser.driver
    server = viewer(agent_store)
    d.get(server.url)
    d.find_element(By.ID, "nav-dashboard").click()
    WebDriverWait(d, 10).until(EC.url_contains("/dashboard"))
    stats = {t.get_attribute("data-stat"): t.find_element(By.CSS_SELECTOR, ".v").text
             for t in d.find_elements(By.CSS_SELECTOR, ".tile")}
    # the agent's two turns (210 / 29 each) and the hostile trace's call (40 / 9), one of three traces failed
    assert {k: stats[k] for k in ("traces", "LLM calls", "tokens in / out", "error rate")} == \
        {"traces": "3", "LLM calls": "5", "tokens in / out": "460 / 67", "error rate": "33.3%"}
    assert stats["p50 latency"].endswith("ms") and stats["p95 latency"] != "-"
    charts = d.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 3 and all(c.is_displayed() for c in charts)
    traces_chart = d.find_element(By.CSS_SELECTOR, "svg.chart.traces")
    heights = [float(r.get_attribute("height") or 0) for r in traces_chart.find_elements(By.CSS_SELECTOR, "rect.bar")]
    assert len(heights) == 24 and sum(h > 0 for h in heights) >= 1
    models = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_element(By.CSS_SELECTOR, "td.tokens").text
              for r in d.find_elements(By.CSS_SELECTOR, "tr.model-row")}
    assert models == {"gpt-4o-mini-2024-07-18": "420 / 58", "gpt-4o-mini": "40 / 9"}
    (failing,) = d.find_elements(By.CSS_SELECTOR, "tr.failing-row")
    assert failing.text.split() == ["tool", "fetch_page", "1"]
    browser.step("dashboard")

    box = d.find_element(By.CSS_SELECTOR, "form.filters input[name=until]")
    box.send_keys("2020-01-01")
    d.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(d, 10).until(EC.url_contains("until=2020-01-01"))
    assert d.find_element(By.CSS_SELECTOR, '.tile[data-stat="traces"] .v').text == "0"
    assert browser.console_errors() == [] and browser.dialogs() == []
    browser.step("dashboard, an empty range")
