"""Time to interactive of the viewer's trace page for a 5,000-span trace, in headless Chromium:

    python benchmarks/ui_render_bench.py [--spans 5000] [--runs 3] [--target-ms 2000] [--screenshots DIR]

Records two traces into a temporary store through the SDK (`deep`: one chain of nested spans;
`wide`: a root with 50 agents of about 100 LLM and tool calls each, with content, one failure and a
feedback point), serves the store on 127.0.0.1 and opens each trace's tree and timeline in Debian's
headless Chromium (.ci/chromium.sh installs it when missing). Time to interactive is from navigation
start to the moment the page's script has wired the rows up and the first frame is laid out: the
script writes that time (`performance.now()`) to `<html data-ready>`. Prints the median per page
against the target, and the time "Collapse all" and a search take on the loaded page. Exits 1 when
a page misses the target.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import tracewire
from tracewire.model import attributes as A
from tracewire.ui.server import ViewerServer

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("The order shipped from the Porto warehouse on Monday and should reach the customer within three "
        "working days; the tracking number is attached to the ticket. ")


def _record_deep(spans: int) -> None:
    with contextlib.ExitStack() as stack:
        for i in range(spans):
            stack.enter_context(tracewire.span("chain" if i % 2 else "agent", f"step {i}", input={"i": i}))


def _record_wide(spans: int) -> None:
    agents = 50
    calls = max(0, spans - 1 - agents - 2)  # less the root, the agents, the failing tool and the feedback
    with tracewire.span("agent", "support desk", input={"question": "Where is my order ord-123456?"}):
        for a in range(agents):
            with tracewire.span("agent", f"worker {a}"):
                for c in range(calls // agents + (a < calls % agents)):
                    if c % 2:
                        with tracewire.span("tool", "lookup_order", input={"ref": f"ord-{a:03d}{c:03d}"}) as t:
                            t.set_output(TEXT)
                    else:
                        with tracewire.span("llm", "chat", input=[{"role": "user", "content": TEXT}],
                                            attributes={A.REQUEST_MODEL: "gpt-4o-mini", A.USAGE_INPUT_TOKENS: 120,
                                                        A.USAGE_OUTPUT_TOKENS: 30}) as m:
                            m.set_output({"role": "assistant", "content": f"answer {a}.{c}"})
                if a == agents - 1:
                    with contextlib.suppress(TimeoutError), tracewire.span("tool", "create_ticket"):
                        raise TimeoutError("the ticket service did not answer")
        tracewire.record("user.feedback", name="thumbs", output={"score": 1})


def record(db: str, spans: int) -> dict[str, str]:
    """{variant: trace id} of the two traces, recorded through the `sqlite` sink."""
    client = tracewire.init(sink="sqlite", db=db, queue_max_events=8 * spans)
    ids: dict[str, str] = {}
    for variant, build in (("deep", _record_deep), ("wide", _record_wide)):
        with tracewire.span("agent", f"{variant} trace") as root:
            ids[variant] = root.trace_id
            build(spans - 1)
    if not client.flush(120) or client.stats()["dropped"]:
        raise SystemExit(f"the store did not take every event: {client.stats()}")
    tracewire.shutdown()
    return ids


def _chromium() -> tuple[str, str]:
    out = subprocess.run(["bash", str(ROOT / ".ci" / "chromium.sh")], check=True, capture_output=True, text=True)
    paths = dict(item.split("=", 1) for item in out.stdout.strip().splitlines()[-1].split())
    return paths["CHROMIUM"], paths["CHROMEDRIVER"]


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")
    binary, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(120)
    return driver


def time_to_interactive(driver: Any, url: str) -> tuple[float, float]:
    """Milliseconds from navigation start to the page's ready marker, and of them until the page's last
    byte arrived (the server's share); with nothing remembered from an earlier visit."""
    driver.get(url)
    driver.execute_script("localStorage.clear();")
    driver.get(url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready = driver.execute_script("return document.documentElement.getAttribute('data-ready');")
        if ready:
            nav = driver.execute_script("return performance.getEntriesByType('navigation')[0].responseEnd;")
            return float(ready), float(nav)
        time.sleep(0.02)
    raise SystemExit(f"{url}: the page never became ready")


def _action_ms(driver: Any, script: str) -> float:
    """How long one action takes in the page, to the next frame laid out."""
    return float(driver.execute_async_script(
        "var done = arguments[arguments.length - 1], t0 = performance.now();" + script +
        "requestAnimationFrame(function () { setTimeout(function () { done(performance.now() - t0); }, 0); });"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spans", type=int, default=5000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--target-ms", type=float, default=2000.0)
    p.add_argument("--screenshots", default="", help="a folder for a screenshot of each page, once loaded")
    args = p.parse_args(argv)
    missed = False
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "tracewire.db")
        t0 = time.perf_counter()
        ids = record(db, args.spans)
        print(f"recorded 2 traces of {args.spans} spans in {time.perf_counter() - t0:.1f} s", flush=True)
        server = ViewerServer(db, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        driver = _driver()
        try:
            for variant, trace_id in ids.items():
                for view in ("tree", "timeline"):
                    url = f"{server.url}traces/{trace_id}" + ("?view=timeline" if view == "timeline" else "")
                    samples = [time_to_interactive(driver, url) for _ in range(args.runs)]
                    times = [t for t, _ in samples]
                    ms = statistics.median(times)
                    served = statistics.median(s for _, s in samples)
                    ok = ms <= args.target_ms
                    missed = missed or not ok
                    if args.screenshots:
                        Path(args.screenshots).mkdir(parents=True, exist_ok=True)
                        driver.save_screenshot(str(Path(args.screenshots) / f"{variant}-{view}.png"))
                    button = "collapse-all" if view == "tree" else "tl-collapse"
                    collapse = _action_ms(driver, f"document.getElementById('{button}').click();")
                    search = _action_ms(driver, "var s = document.getElementById('tree-search'); s.value = 'step 4';"
                                                "s.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'}));")
                    print(f"{variant:<5} {view:<8} interactive {ms:>7.0f} ms (target {args.target_ms:.0f}: "
                          f"{'ok' if ok else 'MISSED'}; page received at {served:.0f})  runs {', '.join(f'{t:.0f}' for t in times)}  "
                          f"collapse all {collapse:.0f} ms  search {search:.0f} ms", flush=True)
        finally:
            driver.quit()
            server.shutdown()
            server.server_close()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
