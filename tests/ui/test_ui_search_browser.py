"""The trace list in a real headless Chromium: searching a recorded LangChain agent's prompt, sorting by cost,
filtering by tag and model, and a trace recorded while the page is open showing up without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

import tracewire
from tests.ui.conftest import Browser
from tests.ui.recorded import QUESTION, record_agent_run
from tracewire.model import attributes as A
from tracewire.read.local import LocalStore

PHRASE = "raining over the fjords"  # in the agent's first prompt only
# (name, tag, model, cost): SDK-recorded calls around the agent's run; one has the phrase's words in another order
CALLS = (("triage", "vip", "claude-3-5-haiku", 0.30), ("summarize", "vip", "gpt-4o", 0.90),
         ("translate", "bulk", "claude-3-5-haiku", 0.60))


@pytest.fixture
def search_store(tmp_path: Path) -> Path:
    db = tmp_path / "tracewire.db"
    record_agent_run(db)
    client = tracewire.init(sink="sqlite", db=str(db))
    for name, tag, model, cost in CALLS:
        with tracewire.span("agent", name, tags=[tag]):
            with tracewire.span("llm", "chat", input=[{"role": "user", "content": "Over the fjords, was it raining?"}],
                                attributes={A.REQUEST_MODEL: model, A.USAGE_INPUT_TOKENS: 50,
                                            A.USAGE_OUTPUT_TOKENS: 5, A.COST_USD: cost}):
                pass
    assert client.flush(10)
    tracewire.shutdown()
    return db


def _lag(db: Path) -> int | None:
    store = LocalStore(str(db))
    try:
        return store.index_lag()
    finally:
        store.close()


def _names(driver: Any) -> list[str]:
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.traces tbody tr a.trace-link")]


def _field(driver: Any, name: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f"form.filters [name={name}]")


def _submit(driver: Any, expect_in_url: str) -> None:
    driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(driver, 10).until(EC.url_contains(expect_in_url))


def test_search_sort_filter_and_a_live_row(search_store: Path, viewer: Any, browser: Browser) -> None:
    d = browser.driver
    server = viewer(search_store)
    WebDriverWait(d, 30).until(lambda _: _lag(search_store) == 0)  # the viewer's first indexing round is done
    d.get(server.url)
    assert len(_names(d)) == 5  # the agent's two turns and three calls
    browser.step("trace list")

    box = _field(d, "q")
    assert d.find_element(By.XPATH, "//form[@class='filters']//label[input[@name='q']]").text.startswith("Search")
    box.send_keys(PHRASE)
    _submit(d, "q=raining")
    assert _names(d) == ["LangGraph"]
    browser.step("searched a phrase of one prompt")
    d.find_element(By.CSS_SELECTOR, "a.trace-link").click()
    WebDriverWait(d, 10).until(EC.url_contains("/traces/"))
    assert QUESTION in d.page_source
    d.back()

    _field(d, "q").clear()
    Select(_field(d, "sort")).select_by_value("cost")
    _submit(d, "sort=cost")
    assert _names(d)[:3] == ["summarize", "translate", "triage"]
    costs = [c.text for c in d.find_elements(By.CSS_SELECTOR, "table.traces tbody td.cost")]
    assert costs[:3] == ["$0.9", "$0.6", "$0.3"]
    browser.step("sorted by cost")

    _field(d, "tag").send_keys("vip")
    _submit(d, "tag=vip")
    assert _names(d) == ["summarize", "triage"]
    _field(d, "model").send_keys("haiku")
    _submit(d, "model=haiku")
    assert _names(d) == ["triage"]
    browser.step("filtered by tag and model")

    d.get(server.url)
    d.execute_script("window.__sameDocument = true;")  # gone if the page were reloaded
    before = _names(d)
    client = tracewire.init(sink="sqlite", db=str(search_store))
    with tracewire.span("agent", "arrived while watching", tags=["vip"]):
        pass
    assert client.flush(10)
    tracewire.shutdown()
    WebDriverWait(d, 20).until(lambda _: _names(d)[:1] == ["arrived while watching"])
    assert _names(d) == ["arrived while watching", *before]
    assert d.execute_script("return window.__sameDocument === true;")
    browser.step("a new trace at the top, no reload")
    assert browser.dialogs() == [] and browser.console_errors() == []
