"""Fixtures of the viewer's tests: a recorded store, the viewer serving it on a free loopback port (the
local `tracewire ui`, or the collector's `/ui/` with the store's events ingested into a project), and
one headless Chromium for the session (Debian's, installed by .ci/chromium.sh when missing) that
screenshots each step."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.server.collector_harness import LOCAL_PG_DSN, Collector, start_collector
from tracewire.read.local import LocalStore
from tracewire.ui.server import ViewerServer
from tracewire.wire import NewKey

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "ui-artifacts"

# Selenium is given the driver and the browser: its manager must never fetch either.
os.environ.setdefault("SE_OFFLINE", "true")
os.environ.setdefault("SE_AVOID_STATS", "true")


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """(browser, driver) paths; installs Debian's chromium and chromium-driver on a machine without them."""
    out = subprocess.run(["bash", str(ROOT / ".ci" / "chromium.sh")], check=True, capture_output=True, text=True,
                         timeout=1200)
    paths = dict(item.split("=", 1) for item in out.stdout.strip().splitlines()[-1].split())
    return paths["CHROMIUM"], paths["CHROMEDRIVER"]


@pytest.fixture
def viewer() -> Iterator[Any]:
    """Serve a store: call with the db path, get the server (on a free loopback port)."""
    servers: list[ViewerServer] = []

    def start(db: str | os.PathLike[str]) -> ViewerServer:
        server = ViewerServer(str(db), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


# Replaces the dialogs before any page script runs (DevTools-injected, so the page's CSP does not
# apply to it): anything that tried to open one is listed instead of blocking the page.
_DIALOG_TRAP = ("window.__dialogs = [];" "['alert', 'confirm', 'prompt', 'print'].forEach(function (n) {"
                " window[n] = function (m) { window.__dialogs.push(n + ':' + m); }; });")


class Browser:
    """A headless Chromium session that writes a screenshot per step to build/ui-artifacts/<test>/."""

    def __init__(self, driver: Any, folder: Path) -> None:
        self.driver = driver
        self.folder = folder
        self._n = 0

    def step(self, name: str) -> Path:
        self._n += 1
        path = self.folder / f"{self._n:02d}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.png"
        assert self.driver.save_screenshot(str(path)), path
        return path

    def dialogs(self) -> list[str]:
        return list(self.driver.execute_script("return window.__dialogs || [];"))

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so the browser fixture knows whether to screenshot a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def chrome(chromium: tuple[str, str]) -> Iterator[Any]:
    """One headless Chromium for the whole session (starting one takes seconds); tests share it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000",
                "--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps",
                # nothing but loopback resolves: the page can reach no other host
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _DIALOG_TRAP})
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chrome: Any, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """The shared Chromium, starting this test clean: no cookies, no stored view state, no old console lines."""
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    chrome.get_log("browser")  # drains what earlier tests left
    b = Browser(chrome, folder)
    try:
        yield b
        if getattr(request.node, "report_call", None) is not None and request.node.report_call.failed:
            b.step("failed here")
    finally:
        chrome.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": "*", "storageTypes": "all"})
        chrome.delete_all_cookies()
        chrome.get("about:blank")


@pytest.fixture(scope="session")
def agent_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the recorded LangChain agent's two turns and the hostile trace (read only)."""
    from tests.ui.recorded import record_agent_run, record_hostile

    db = tmp_path_factory.mktemp("ui") / "tracewire.db"
    record_agent_run(db)
    record_hostile(db)
    return db


# -- the collector's /ui/ ------------------------------------------------------------------------------
@dataclass
class UiCollector:
    """A running collector whose project `project` holds the agent store's events; `key` reads it."""

    collector: Collector
    project: str
    key: NewKey

    @property
    def ui(self) -> str:
        return self.collector.url + "/ui/"

    def session(self, key: NewKey) -> requests.Session:
        """An HTTP session signed in to the viewer with `key` (through the login form)."""
        s = requests.Session()
        r = s.post(self.ui + "login", data={"key": key.api_key}, allow_redirects=False, timeout=30)
        assert r.status_code == 303 and s.cookies.get("tracewire_ui"), (r.status_code, r.text[:300])
        return s


def ingest_store(c: Collector, db: Path, key: NewKey) -> int:
    """Send every event of a local store to the collector as the SDK would (signed batches); the count sent."""
    store = LocalStore(str(db))
    try:
        events = [orjson.loads(line) for _, line in store.lines()]
    finally:
        store.close()
    for i in range(0, len(events), 100):
        r = c.post(key, events[i:i + 100])
        assert r.status_code == 200 and r.json()["rejected"] == 0, r.text[:500]
    return len(events)


def _fresh_pg_database() -> tuple[str, Any]:
    """A new empty database on the test server (TRACEWIRE_TEST_PG_DSN, else .ci/pg-start.sh's), and its dropper."""
    import psycopg

    admin = os.environ.get("TRACEWIRE_TEST_PG_DSN") or LOCAL_PG_DSN
    name = f"tracewire_ui_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]

    return urlsplit(admin)._replace(path="/" + name).geturl(), drop


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def ui_collectors(agent_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Call with a backend ("sqlite" or "postgresql"): `tracewire serve` on it (started once, on first
    use), the agent store's events ingested into a project of their own."""
    started: dict[str, UiCollector] = {}
    drops: list[Any] = []

    def get(backend: str) -> UiCollector:
        if backend not in started:
            log_dir = tmp_path_factory.mktemp(f"collector-{backend}")
            if backend == "sqlite":
                db = f"sqlite:///{log_dir}/collector.db"
            else:
                db, drop = _fresh_pg_database()
                drops.append(drop)
            c = start_collector(backend, db, log_dir)
            project = f"agents-{uuid.uuid4().hex[:8]}"
            started[backend] = UiCollector(c, project, c.new_key(project, ("read",)))
            sent = ingest_store(c, agent_store, c.new_key(project, ("ingest",)))
            assert c.wait_for(project, sent) == sent
        return started[backend]

    try:
        yield get
        for u in started.values():
            assert u.collector.proc.poll() is None, f"collector died:\n{u.collector.log.read_text()}"
    finally:
        for u in started.values():
            u.collector.close()
        for drop in drops:
            drop()


# -- where a browser test runs ------------------------------------------------------------------------
@dataclass
class Target:
    """Where the viewer runs: its base URL, and for the collector the read key the login form takes."""

    name: str
    url: str
    key: str | None = None

    def open(self, browser: Browser, rest: str = "") -> None:
        """The page at the base URL + `rest` (a query string, or a path such as "sessions"); on the
        collector through its login form, which then leads there."""
        d = browser.driver
        d.get(self.url + rest)
        if self.key is None:
            return
        WebDriverWait(d, 10).until(EC.url_contains("/ui/login"))
        assert d.find_element(By.TAG_NAME, "h1").text == "Sign in"
        browser.step("login form")
        d.find_element(By.ID, "api-key").send_keys(self.key)
        d.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
        WebDriverWait(d, 10).until(lambda _: "/ui/login" not in d.current_url)
        assert d.current_url == self.url + rest
        # the page's scripts cannot read the key: the cookie is HttpOnly
        assert d.execute_script("return document.cookie;") == ""


TARGETS = ("local", *(f"collector-{b}" for b in BACKENDS))


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, agent_store: Path, viewer: Any, ui_collectors: Any) -> Target:
    if request.param == "local":
        return Target("local", viewer(agent_store).url)
    u = ui_collectors(request.param.split("-", 1)[1])
    return Target(request.param, u.ui, u.key.api_key)
