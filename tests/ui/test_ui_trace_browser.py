"""The trace page in a real headless Chromium: the flat tree's collapse all / expand all (remembered
after a reload), search in the tree from the keyboard, a failed span and the way to it marked, a
feedback point on the header, and the timeline's rows collapsing the same way."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

import tracewire
from tests.ui.conftest import Browser
from tracewire.model import attributes as A
from tracewire.read.local import LocalStore

QUESTION = "Find the Zanzibar invoice for order ord-771204"


@pytest.fixture(scope="module")
def triage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(store, trace id) of an agent whose invoice lookup failed once, then answered, and was rated."""
    db = tmp_path_factory.mktemp("ui-trace") / "tracewire.db"
    client = tracewire.init(sink="sqlite", db=str(db))
    with tracewire.session(session_id="triage-chat", user_id="ana"), tracewire.span("agent", "triage"):
        with tracewire.span("chain", "plan"), tracewire.span(
                "llm", "chat", input=[{"role": "user", "content": QUESTION}],
                attributes={A.REQUEST_MODEL: "gpt-4o-mini", A.USAGE_INPUT_TOKENS: 30, A.USAGE_OUTPUT_TOKENS: 8}):
            pass
        with tracewire.span("chain", "retry"):
            with contextlib.suppress(TimeoutError), tracewire.span("tool", "lookup_invoice", input={"ref": "ord-771204"}):
                raise TimeoutError("the billing service did not answer")
            with tracewire.span("tool", "lookup_invoice_backup", input={"ref": "ord-771204"}) as backup:
                backup.set_output({"invoice": "INV-9"})
        with tracewire.span("chain", "answer"), tracewire.span("llm", "chat"):
            pass
        tracewire.record("user.feedback", name="thumbs", output={"score": 1})
        tracewire.record("metric", name="relevance", output=0.9)
    assert client.flush(10)
    tracewire.shutdown()
    store = LocalStore(str(db))
    try:
        return db, store.list_traces(1)[0]["trace_id"]
    finally:
        store.close()


def _shown(driver: Any) -> list[str]:
    """`kind name` of the tree's rows on screen, top to bottom."""
    return [f'{r.find_element(By.CSS_SELECTOR, ".kind").text} {r.find_element(By.CSS_SELECTOR, ".name").text}'
            for r in driver.find_elements(By.CSS_SELECTOR, "ul.tree a.row") if r.is_displayed()]


def _row(driver: Any, name: str, css: str = "ul.tree li.node") -> WebElement:
    return next(r for r in driver.find_elements(By.CSS_SELECTOR, css)
                if r.find_element(By.CSS_SELECTOR, ".name").get_attribute("textContent") == name)


ALL = ["agent triage", "chain plan", "llm chat", "chain retry", "tool lookup_invoice", "tool lookup_invoice_backup",
       "chain answer", "llm chat", "user.feedback thumbs", "metric relevance"]


def test_failed_span_feedback_collapse_memory_and_search(triage: tuple[Path, str], viewer: Any,
                                                         browser: Browser) -> None:
    d = browser.driver
    db, trace_id = triage
    d.get(f"{viewer(db).url}traces/{trace_id}")
    WebDriverWait(d, 10).until(lambda _: d.execute_script("return document.documentElement.dataset.ready"))

    # a failed trace opens on the span that failed, with the way to it open and marked
    pane = d.find_element(By.ID, "pane")
    assert pane.find_element(By.TAG_NAME, "h2").text == "tool lookup_invoice"
    assert _shown(d) == ["agent triage", "chain plan", "chain retry", "tool lookup_invoice",
                         "tool lookup_invoice_backup", "chain answer", "user.feedback thumbs", "metric relevance"]
    failed = d.find_element(By.CSS_SELECTOR, "ul.tree a.row.failed")
    assert failed.find_element(By.CSS_SELECTOR, ".name").text == "lookup_invoice"
    red = "rgb(192, 38, 45)"
    assert d.execute_script("return getComputedStyle(arguments[0]).color;",
                            failed.find_element(By.CSS_SELECTOR, ".name")) == red
    on_path = [r.find_element(By.CSS_SELECTOR, ".name").text for r in d.find_elements(By.CSS_SELECTOR, "li.error-path")]
    assert on_path == ["triage", "retry"]
    assert d.execute_script("return getComputedStyle(arguments[0]).color;",
                            d.find_element(By.CSS_SELECTOR, "li.error-path .twisty")) == red
    assert d.find_element(By.CSS_SELECTOR, ".failed-at").text == \
        "failed at agent triage › chain retry › tool lookup_invoice"
    browser.step("failed span")

    # the feedback and the metric on the header; one click opens the point
    points = [p.text for p in d.find_elements(By.CSS_SELECTOR, ".points-line a.point-link")]
    assert points == ['user.feedback thumbs { "score": 1 }', "metric relevance 0.9"]
    d.find_element(By.CSS_SELECTOR, ".points-line a.point-link").click()
    # the page or pane is replaced while it is read: a stale element is read again
    WebDriverWait(d, 10, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda _: d.find_element(By.CSS_SELECTOR, "#pane h2").text == "user.feedback thumbs")
    assert d.find_element(By.CSS_SELECTOR, "ul.tree a.row.chosen .name").text == "thumbs"
    browser.step("feedback point")

    # collapse all keeps the way to the chosen point and to the failed span; a reload remembers it
    d.find_element(By.ID, "collapse-all").click()
    collapsed = ["agent triage", "chain plan", "chain retry", "tool lookup_invoice", "tool lookup_invoice_backup",
                 "chain answer", "user.feedback thumbs", "metric relevance"]
    assert _shown(d) == collapsed
    d.find_element(By.ID, "expand-all").click()
    assert _shown(d) == ALL
    d.refresh()
    WebDriverWait(d, 10).until(lambda _: d.execute_script("return document.documentElement.dataset.ready"))
    assert _shown(d) == ALL
    browser.step("expanded all, reloaded")
    _row(d, "triage").find_element(By.CSS_SELECTOR, ".twisty").click()  # by hand: its subtree folds
    assert _shown(d) == ["agent triage"]
    d.find_element(By.ID, "collapse-all").click()
    d.refresh()
    WebDriverWait(d, 10).until(lambda _: d.execute_script("return document.documentElement.dataset.ready"))
    assert _shown(d) == collapsed
    assert d.execute_script("return localStorage.getItem('tracewire.tree');") == "collapsed"
    browser.step("collapsed all, reloaded")

    # "/" goes to the search; a match in a closed subtree shows with the nodes above it
    ActionChains(d).send_keys("/").perform()
    box = d.switch_to.active_element
    assert box.get_attribute("id") == "tree-search"
    box.send_keys("zanzibar")  # in the LLM call's prompt, under the closed planner
    WebDriverWait(d, 5).until(lambda _: d.find_element(By.ID, "search-count").text == "1 match")
    assert _shown(d) == ["agent triage", "chain plan", "llm chat"]
    match = d.find_element(By.CSS_SELECTOR, "ul.tree li.match")
    assert match.find_element(By.CSS_SELECTOR, ".name").text == "chat"
    assert d.execute_script("return getComputedStyle(arguments[0]).backgroundColor;",
                            match.find_element(By.CSS_SELECTOR, "a.row")) == "rgb(255, 244, 194)"
    browser.step("search by content")
    box.send_keys(Keys.ENTER)  # Enter walks the matches, the arrow down key goes to the current one
    assert d.find_element(By.ID, "search-count").text == "1 of 1"
    assert "current" in (match.get_attribute("class") or "")
    box.send_keys(Keys.ARROW_DOWN)
    assert d.switch_to.active_element.get_attribute("class").startswith("row")
    d.switch_to.active_element.send_keys(Keys.ENTER)  # and Enter on the row opens the span
    WebDriverWait(d, 10).until(EC.url_contains("span="))
    assert d.find_element(By.CSS_SELECTOR, "#pane h2").text == "llm chat"

    box = d.find_element(By.ID, "tree-search")
    box.send_keys("lookup_invoice")  # by name: both tools, under their open chain
    WebDriverWait(d, 5).until(lambda _: d.find_element(By.ID, "search-count").text == "2 matches")
    assert _shown(d) == ["agent triage", "chain retry", "tool lookup_invoice", "tool lookup_invoice_backup"]
    box.send_keys(Keys.ENTER, Keys.ENTER)
    assert d.find_element(By.ID, "search-count").text == "2 of 2"
    assert d.find_element(By.CSS_SELECTOR, "li.current .name").text == "lookup_invoice_backup"
    box.send_keys(Keys.ARROW_DOWN, Keys.ARROW_UP)  # on the rows, the arrow keys move between the rows shown
    assert d.switch_to.active_element.find_element(By.CSS_SELECTOR, ".name").text == "lookup_invoice"
    d.find_element(By.ID, "tree-search").send_keys(Keys.ESCAPE)  # cleared: the tree as it was
    assert d.find_element(By.ID, "search-count").text == ""
    assert _shown(d) == ["agent triage", "chain plan", "llm chat", "chain retry", "tool lookup_invoice",
                         "tool lookup_invoice_backup", "chain answer", "user.feedback thumbs", "metric relevance"]
    assert d.find_elements(By.CSS_SELECTOR, "li.match") == []
    box = d.find_element(By.ID, "tree-search")
    box.send_keys("gpt-4o-mini")  # by model
    WebDriverWait(d, 5).until(lambda _: d.find_element(By.ID, "search-count").text == "1 match")
    box.clear()
    box.send_keys("no such words")
    WebDriverWait(d, 5).until(lambda _: d.find_element(By.ID, "search-count").text == "0 matches")
    assert _shown(d) == []
    browser.step("no match")

    # the session's page shows the feedback and the metric with their turn, and counts them
    d.find_element(By.CSS_SELECTOR, ".facts-line a.session").click()
    WebDriverWait(d, 10).until(EC.url_contains("/sessions/triage-chat"))
    noted = [(p.find_element(By.CSS_SELECTOR, ".kind").text, p.find_element(By.CSS_SELECTOR, ".name").text,
              p.find_element(By.TAG_NAME, "pre").text) for p in d.find_elements(By.CSS_SELECTOR, ".turn .point")]
    assert noted == [("user.feedback", "thumbs", '{\n  "score": 1\n}'), ("metric", "relevance", "0.9")]
    facts = {f.get_attribute("data-fact"): f.find_element(By.CSS_SELECTOR, ".v").text
             for f in d.find_elements(By.CSS_SELECTOR, ".totals .fact")}
    assert facts["feedback"] == "1" and facts["metrics"] == "1" and facts["errors"] == "1"
    browser.step("session with its feedback")
    assert browser.console_errors() == [] and browser.dialogs() == []


def test_the_timeline_collapses_and_searches_the_same_rows(triage: tuple[Path, str], viewer: Any,
                                                           browser: Browser) -> None:
    d = browser.driver
    db, trace_id = triage
    d.get(f"{viewer(db).url}traces/{trace_id}?view=timeline")
    WebDriverWait(d, 10).until(lambda _: d.execute_script("return document.documentElement.dataset.ready"))

    def shown() -> list[str]:
        return [r.find_element(By.CSS_SELECTOR, ".name").text for r in d.find_elements(By.CSS_SELECTOR, "a.tl-row")
                if r.is_displayed()]

    assert shown() == [n.split(" ", 1)[1] for n in ALL]  # the timeline starts with everything shown
    retry = _row(d, "retry", "a.tl-row")
    retry.find_element(By.CSS_SELECTOR, ".twisty").click()  # folds, does not follow the row's link
    assert "span=" not in d.current_url
    assert shown() == ["triage", "plan", "chat", "retry", "answer", "chat", "thumbs", "relevance"]
    browser.step("timeline, one node folded")
    d.find_element(By.ID, "tl-collapse").click()  # the failed span stays in view
    assert shown() == ["triage", "plan", "retry", "lookup_invoice", "lookup_invoice_backup", "answer", "thumbs",
                       "relevance"]
    d.find_element(By.ID, "tree-search").send_keys("backup")
    WebDriverWait(d, 5).until(lambda _: d.find_element(By.ID, "search-count").text == "1 match")
    assert shown() == ["triage", "retry", "lookup_invoice_backup"]
    browser.step("timeline search")
    d.find_element(By.ID, "tl-expand").click()
    d.find_element(By.ID, "tree-search").send_keys(Keys.ESCAPE)
    assert shown() == [n.split(" ", 1)[1] for n in ALL]
    assert browser.console_errors() == [] and browser.dialogs() == []
