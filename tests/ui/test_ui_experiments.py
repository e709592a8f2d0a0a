"""`/experiments`, `/experiments/<run>` and `/experiments/compare` over HTTP and in headless Chromium: two
runs of a plain Python task over five items, the second answering two items differently, read back as
the CLI reads them; an unknown run is a 404, a hostile input is text, and the collector's viewer says
where experiments are kept."""

from __future__ import annotations

import html
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import tracewire
from tests.ui.conftest import Browser, UiCollector
from tests.ui.test_ui_server import _get
from tracewire.experiments.result import ExperimentResult
from tracewire.ui.experiments_page import ELSEWHERE

HOSTILE = "<img src=x onerror=alert(1)>"
ITEMS = [("peru", "peru", "Lima"), ("japan", "japan", "Tokyo"), ("chile", "chile", "Santiago"),
         ("kenya", "kenya", "Nairobi"), ("hostile", HOSTILE, "none")]
V1 = {"peru": "Lima", "japan": "Tokyo", "chile": "Santiago", "kenya": "Mombasa", HOSTILE: "none"}
V2 = {**V1, "japan": "Kyoto", "kenya": "Nairobi"}  # one answer worse, one better


def exact(input: Any, output: Any, expected: Any) -> bool:
    return bool(output == expected)


def short(input: Any, output: Any, expected: Any) -> float:
    return 1.0 if len(output) <= 5 else 0.0


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExperimentResult, ExperimentResult]:
    db = tmp_path_factory.mktemp("experiments") / "tracewire.db"
    tracewire.init(db=str(db))
    try:
        ds = tracewire.dataset("capitals", items=[{"id": i, "input": q, "expected": e} for i, q, e in ITEMS])
        a = tracewire.experiment("capitals-v1", ds, V1.__getitem__, [exact, short])
        b = tracewire.experiment("capitals-v2", ds, V2.__getitem__, [exact, short])
    finally:
        tracewire.shutdown()
    return db, a, b


def _rows(page: str, table: str) -> list[list[str]]:
    """The text of each body row's cells of the table of class `table`, times and durations as <t>."""
    body = page.split(f'<table class="{table}">', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    out = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)]
        out.append([re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<when>",
                           re.sub(r"\d+(\.\d+)? (ms|s)\b", "<t>", c)) for c in cells])
    return out


def test_runs_run_and_comparison_pages(runs: tuple[Path, ExperimentResult, ExperimentResult], viewer: Any) -> None:
    db, a, b = runs
    base = viewer(db).url
    status, _, page = _get(base + "experiments")
    assert status == 200 and 'id="nav-experiments"' in page
    assert _rows(page, "experiments") == [
        ["capitals-v2", b.run_id[:8], "capitals v1", "5", "0.800", "0.600", "0", "0", "<t>", "-", "<when>", "", ""],
        ["capitals-v1", a.run_id[:8], "capitals v1", "5", "0.800", "0.600", "0", "0", "<t>", "-", "<when>", "", ""],
    ]
    assert f'<a class="run-link" href="/experiments/{b.run_id}">capitals-v2</a>' in page
    # the form compares the newest (B) against the one before (A) unless chosen otherwise
    assert f'name="a" value="{a.run_id}" aria-label="A" checked' in page
    assert f'name="b" value="{b.run_id}" aria-label="B" checked' in page

    status, _, page = _get(base + "experiments/capitals-v2")  # by name, as the CLI takes it
    assert status == 200
    assert _rows(page, "experiment-items") == [
        ["peru", "peru", "Lima", "Lima", "ok", "1", "1", "<t>", "-", "trace"],
        ["japan", "japan", "Kyoto", "Tokyo", "ok", "0", "1", "<t>", "-", "trace"],
        ["chile", "chile", "Santiago", "Santiago", "ok", "1", "0", "<t>", "-", "trace"],
        ["kenya", "kenya", "Nairobi", "Nairobi", "ok", "1", "0", "<t>", "-", "trace"],
        ["hostile", HOSTILE, "none", "none", "ok", "1", "1", "<t>", "-", "trace"],
    ]
    japan = next(r for r in b.rows if r.item_id == "japan")
    assert f'href="/traces/{japan.trace_id}"' in page
    # the hostile input is text, never markup
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert _get(base + f"experiments/{a.run_id[:10]}")[2].count("<h1>capitals-v1</h1>") == 1  # by id prefix

    status, _, page = _get(base + f"experiments/compare?a={a.run_id[:8]}&b=capitals-v2")
    assert status == 200
    assert _rows(page, "exp-aggregates") == [
        ["exact", "mean 0.800 → 0.800", "count 5 → 5"],
        ["short", "mean 0.600 → 0.600", "count 5 → 5"],
        ["errors", "0 → 0 (+0)", ""],
        ["timeouts", "0 → 0 (+0)", ""],
        ["cost", "- → -", ""],
        ["latency", "p50 <t> → <t>", "p95 <t> → <t>"],
    ]
    assert _rows(page, "experiment-compare") == [
        ["regression", "japan", "japan", "1 → 0 (-1)", "1", "ok", "<t> → <t>", "-", "A B"],
        ["improvement", "kenya", "kenya", "0 → 1 (+1)", "0", "ok", "<t> → <t>", "-", "A B"],
        ["same", "peru", "peru", "1", "1", "ok", "<t> → <t>", "-", "A B"],
        ["same", "chile", "chile", "1", "0", "ok", "<t> → <t>", "-", "A B"],
        ["same", "hostile", HOSTILE, "1", "1", "ok", "<t> → <t>", "-", "A B"],
    ]
    japan_a = next(r for r in a.rows if r.item_id == "japan")
    regression = page.split('data-item="japan"', 1)[1].split("</tr>", 1)[0]
    assert f'href="/traces/{japan_a.trace_id}">A</a>' in regression and f'href="/traces/{japan.trace_id}">B</a>' in regression
    assert "regression 1 · improvement 1 · changed 0 · added 0 · removed 0 · same 3" in re.sub(r"<[^>]+>", "", page)
    assert "<img src=x" not in page


def test_unknown_or_missing_run_is_a_404(runs: tuple[Path, ExperimentResult, ExperimentResult], viewer: Any) -> None:
    db, a, _ = runs
    base = viewer(db).url
    for path, said in (("experiments/nope", "no experiment or run id &#x27;nope&#x27;"),
                       ("experiments/%3Cscript%3E", "no experiment or run id &#x27;&lt;script&gt;&#x27;"),
                       (f"experiments/compare?a={a.run_id}&b=zzz", "no experiment or run id &#x27;zzz&#x27;"),
                       (f"experiments/compare?a={a.run_id}", "choose two runs to compare")):
        status, _, page = _get(base + path)
        assert status == 404 and said in page and "<h1>Not found</h1>" in page, (path, status)


def test_a_store_without_experiments_lists_none(tmp_path: Path, viewer: Any) -> None:
    status, _, page = _get(viewer(tmp_path / "absent.db").url + "experiments")
    assert status == 200 and "No experiment runs recorded yet." in page


def test_compare_chosen_in_the_browser(runs: tuple[Path, ExperimentResult, ExperimentResult], viewer: Any,
                                       browser: Browser) -> None:
    db, a, b = runs
    d = browser.driver
    d.get(viewer(db).url + "experiments")
    # the other way round from the default: B is the older run, so the one regression is kenya's
    d.find_element(By.CSS_SELECTOR, f'tr[data-run="{b.run_id}"] input[name="a"]').click()
    d.find_element(By.CSS_SELECTOR, f'tr[data-run="{a.run_id}"] input[name="b"]').click()
    browser.step("runs chosen")
    d.find_element(By.ID, "compare").click()
    # the page or pane is replaced while it is read: a stale element is read again
    WebDriverWait(d, 10, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda _: d.find_element(By.TAG_NAME, "h1").text == "Compare")
    browser.step("comparison")
    assert d.current_url.endswith(f"/experiments/compare?a={b.run_id}&b={a.run_id}")
    first = d.find_element(By.CSS_SELECTOR, "table.experiment-compare tbody tr")
    cells = [c.text for c in first.find_elements(By.TAG_NAME, "td")]
    assert cells[:5] == ["regression", "kenya", "kenya", "1 → 0 (-1)", "0"]
    assert browser.dialogs() == [] and browser.console_errors() == []


def test_collector_viewer_says_where_experiments_are(ui_collectors: Any) -> None:
    u: UiCollector = ui_collectors("sqlite")
    http = u.session(u.key)
    for path in ("experiments", "experiments/anything", "experiments/compare?a=x&b=y"):
        r = http.get(u.ui + path, timeout=30)
        assert r.status_code == 200 and html.escape(ELSEWHERE, quote=True) in r.text, (path, r.status_code)
        assert 'href="/ui/experiments"' in r.text  # the nav, under the collector's prefix


def test_tables_of_a_newer_version_are_said_not_raised(runs: tuple[Path, ExperimentResult, ExperimentResult],
                                                       tmp_path: Path, viewer: Any) -> None:
    db = tmp_path / "newer.db"
    shutil.copy(runs[0], db)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO experiment_schema (version) VALUES (99)")
    status, _, page = _get(viewer(db).url + "experiments")
    assert status == 503 and "The experiment runs cannot be read: the experiment tables in this store are schema 99" in page
