"""The viewer in a real headless Chromium: a recorded LangChain agent from the list to a tool's result,
and captured markup that must stay text. Each runs on three targets: the local `tracewire ui`, and the
collector's `/ui/` on SQLite and on PostgreSQL, where the flow starts at the login form."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.ui.conftest import Browser, Target
from tests.ui.recorded import (
    HOSTILE_SESSION,
    QUESTION,
    SESSION,
    XSS_IMG,
    XSS_LINK,
    XSS_MARKDOWN,
    XSS_SCRIPT,
)

SEARCH_PHRASE = "Raining over the FJORDS"  # in the first turn's prompt only (any case)


def _rows(driver: Any) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "table.traces tbody tr")


def _tree_row(driver: Any, kind: str, name: str, nth: int = 0) -> WebElement:
    """The nth tree row of that kind and name, shown or not (`textContent`: `.text` is only what is visible)."""
    rows = [a for a in driver.find_elements(By.CSS_SELECTOR, "ul.tree a.row")
            if a.find_element(By.CSS_SELECTOR, ".kind").get_attribute("textContent") == kind
            and a.find_element(By.CSS_SELECTOR, ".name").get_attribute("textContent") == name]
    return rows[nth]


def _pane(driver: Any) -> WebElement:
    return WebDriverWait(driver, 10).until(EC.visibility_of_element_located((By.ID, "pane")))


def _messages(pane: WebElement) -> list[tuple[str, str]]:
    """(role line, text) of each message of the pane's conversations, as the page shows them."""
    return [(m.find_element(By.CSS_SELECTOR, ".role").text, m.text) for m in pane.find_elements(By.CSS_SELECTOR, ".msg")]


def test_list_filter_open_expand_and_read_the_span_pane(target: Target, browser: Browser) -> None:
    d = browser.driver
    target.open(browser)
    assert d.find_element(By.TAG_NAME, "h1").text == "Traces"
    assert len(_rows(d)) == 3
    browser.step("trace list")

    box = d.find_element(By.CSS_SELECTOR, "form.filters input[name=session]")
    box.send_keys(SESSION)
    d.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(d, 10).until(EC.url_contains(f"session={SESSION}"))
    rows = _rows(d)
    assert len(rows) == 2
    assert {r.find_element(By.CSS_SELECTOR, "a.session").text for r in rows} == {SESSION}
    assert all(r.find_element(By.CSS_SELECTOR, ".status").text == "ok" for r in rows)
    assert rows[0].find_element(By.CSS_SELECTOR, "td.tokens").text == "210 / 29"  # tokens in / out of a turn
    browser.step("filtered by session")

    # a phrase of the first turn's prompt only: the search (the collector's full-text index, or the local
    # read model's) lists that turn alone, within the session
    first_turn = rows[1].find_element(By.CSS_SELECTOR, "a.trace-link").get_attribute("href")  # newest first
    d.find_element(By.CSS_SELECTOR, "form.filters input[name=q]").send_keys(SEARCH_PHRASE)
    d.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(d, 10).until(EC.url_contains("q=Raining"))
    (row,) = _rows(d)
    assert row.find_element(By.CSS_SELECTOR, "a.trace-link").get_attribute("href") == first_turn
    assert row.find_element(By.CSS_SELECTOR, "a.session").text == SESSION
    browser.step("searched a phrase of one prompt")

    row.find_element(By.CSS_SELECTOR, "a.trace-link").click()
    WebDriverWait(d, 10).until(EC.url_contains("/traces/"))
    assert d.find_element(By.TAG_NAME, "h1").text == "LangGraph"
    assert SESSION in d.find_element(By.CSS_SELECTOR, ".facts-line").text
    llm = _tree_row(d, "llm", "ToolCallingFakeChatModel")
    assert not llm.is_displayed()  # under a closed node
    browser.step("trace opened")

    chain = _tree_row(d, "chain", "model")
    chain.find_element(By.XPATH, "./preceding-sibling::span[@class='twisty']").click()
    WebDriverWait(d, 5).until(lambda _: llm.is_displayed())
    assert "gpt-4o-mini-2024-07-18" in llm.text and "84 / 17 tok" in llm.text
    browser.step("node expanded")

    llm.click()
    WebDriverWait(d, 10).until(EC.url_contains("span="))
    pane = _pane(d)
    assert pane.find_element(By.TAG_NAME, "h2").text == "llm ToolCallingFakeChatModel"
    messages = _messages(pane)
    roles = [role.split()[0] for role, _ in messages]
    assert roles == ["system", "user", "assistant"]  # input: system + user; output: the assistant's tool call
    assert "You answer weather questions." in messages[0][1]
    assert f"{QUESTION}?" in messages[1][1]
    call = pane.find_element(By.CSS_SELECTOR, ".msg.role-assistant .tool-call")
    assert call.find_element(By.CSS_SELECTOR, ".tool-name").text == "get_weather"
    assert '"city": "Oslo"' in call.text
    assert "84 / 17" in pane.find_element(By.CSS_SELECTOR, "table.facts").text
    browser.step("llm conversation")

    tools = _tree_row(d, "chain", "tools")
    tools.find_element(By.XPATH, "./preceding-sibling::span[@class='twisty']").click()
    tool = _tree_row(d, "tool", "get_weather")
    WebDriverWait(d, 5).until(lambda _: tool.is_displayed())
    tool.click()
    WebDriverWait(d, 10).until(lambda _: _pane(d).find_element(By.TAG_NAME, "h2").text == "tool get_weather")
    sections = {s.find_element(By.TAG_NAME, "h3").text: s.text
                for s in _pane(d).find_elements(By.CSS_SELECTOR, "section")}
    assert '"city": "Oslo"' in sections["ARGUMENTS"]
    assert "sunny in Oslo" in sections["RESULT"]
    browser.step("tool result")

    # the second call's conversation carries the tool's answer, role `tool`
    second = _tree_row(d, "llm", "ToolCallingFakeChatModel", 1)
    assert not second.is_displayed()  # the page now opens on the tool: this branch is closed again
    _tree_row(d, "chain", "model", 1).find_element(By.XPATH, "./preceding-sibling::span[@class='twisty']").click()
    second.click()
    WebDriverWait(d, 10).until(lambda _: len(_messages(_pane(d))) == 5)
    tool_msg = [text for role, text in _messages(_pane(d)) if role.startswith("tool")]
    assert len(tool_msg) == 1 and "sunny in Oslo" in tool_msg[0] and "call_Oslo" in tool_msg[0]
    assert _messages(_pane(d))[-1][1].endswith("Light snow in Oslo, no rain.")
    browser.step("tool result in the conversation")

    rows = d.find_elements(By.CSS_SELECTOR, "ul.tree a.row")
    assert len(rows) == 7 and not all(r.is_displayed() for r in rows)
    d.find_element(By.ID, "expand-all").click()
    assert all(r.is_displayed() for r in rows)
    d.refresh()  # the choice is remembered
    assert all(r.is_displayed() for r in d.find_elements(By.CSS_SELECTOR, "ul.tree a.row"))
    browser.step("expanded all")
    d.find_element(By.ID, "collapse-all").click()
    shown = [r.find_element(By.CSS_SELECTOR, ".name").text
             for r in d.find_elements(By.CSS_SELECTOR, "ul.tree a.row") if r.is_displayed()]
    assert shown == ["LangGraph", "model", "tools", "model", "ToolCallingFakeChatModel"]  # the chosen span stays in view
    browser.step("collapsed all")
    assert browser.console_errors() == []  # among them: any CSP violation of the viewer's own pages


def _assert_inert(browser: Browser) -> None:
    d = browser.driver
    assert browser.dialogs() == []
    with pytest.raises(NoAlertPresentException):
        d.switch_to.alert.text  # noqa: B018 - raises when no dialog is open
    assert d.find_elements(By.TAG_NAME, "img") == []
    assert d.find_elements(By.TAG_NAME, "iframe") == []
    scripts = [s.get_attribute("src") for s in d.find_elements(By.TAG_NAME, "script")]
    assert len(scripts) == 1 and scripts[0].endswith("/static/ui.js"), scripts
    hrefs = [a.get_attribute("href") or "" for a in d.find_elements(By.TAG_NAME, "a")]
    assert not [h for h in hrefs if not h.startswith(d.current_url.split("/", 3)[0] + "//")], hrefs
    assert browser.console_errors() == []


def test_captured_markup_renders_as_text(target: Target, browser: Browser) -> None:
    d = browser.driver
    target.open(browser, f"?session={HOSTILE_SESSION}")
    (row,) = _rows(d)
    assert row.find_element(By.CSS_SELECTOR, "a.trace-link").text == f"agent {XSS_SCRIPT}"
    assert row.find_element(By.CSS_SELECTOR, ".status").text == "error (tool fetch_page)"
    _assert_inert(browser)
    browser.step("hostile trace listed")

    row.find_element(By.CSS_SELECTOR, "a.trace-link").click()
    pane = _pane(d)  # a failed trace opens on the span that failed
    assert pane.find_element(By.TAG_NAME, "h2").text == "tool fetch_page"
    error = pane.find_element(By.CSS_SELECTOR, "section.error").text
    assert "ValueError" in error and f"refused {XSS_IMG}" in error
    assert "javascript:alert(5)" in pane.find_element(By.CSS_SELECTOR, "section.input").text
    _assert_inert(browser)
    browser.step("failed span")

    _tree_row(d, "llm", "chat").click()
    WebDriverWait(d, 10).until(lambda _: _pane(d).find_element(By.TAG_NAME, "h2").text == "llm chat")
    text = _pane(d).text
    for hostile in (XSS_SCRIPT, XSS_IMG, XSS_LINK, XSS_MARKDOWN):
        assert hostile in text
    assert _pane(d).find_element(By.CSS_SELECTOR, ".tool-name").text == XSS_IMG
    _assert_inert(browser)
    browser.step("hostile conversation")
