"""Fixtures of the viewer's tests: a recorded store, the viewer serving it on a free loopback port, and
a headless Chromium (Debian's, installed by .ci/chromium.sh when missing) that screenshots each step."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tracewire.ui.server import ViewerServer

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


@pytest.fixture
def browser(chromium: tuple[str, str], request: pytest.FixtureRequest) -> Iterator[Browser]:
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
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    b = Browser(driver, folder)
    try:
        yield b
        if getattr(request.node, "report_call", None) is not None and request.node.report_call.failed:
            b.step("failed here")
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def agent_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the recorded LangChain agent's two turns and the hostile trace (read only)."""
    from tests.ui.recorded import record_agent_run, record_hostile

    db = tmp_path_factory.mktemp("ui") / "tracewire.db"
    record_agent_run(db)
    record_hostile(db)
    return db
