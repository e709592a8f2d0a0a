"""Must show 1: for each fault, N events recorded -> exactly N distinct events stored, none twice,
and record() p99 < 1 ms while the faults happen (measured in the producer process)."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path
from typing import Any

import pytest
from rel_harness import Collector, FaultProxy, finish_producer, start_producer, wait_ready

N = 3000
RATE = 3000.0  # events/s: recording spans ~1 s, so faults hit batches while the app records


def _every(k: int, action: Any, first: int = 10**9) -> Any:
    """`action` for requests 1..first where n % k != 0 (so some requests in between succeed)."""
    return lambda n, events: action if n <= first and n % k != 0 else "pass"


def _retry_after_plan() -> Any:
    def plan(n: int, events: int) -> Any:
        if n == 1:
            return ("status", 429, {"Retry-After": "1"})
        if n == 2:
            when = email.utils.formatdate(time.time() + 2.0, usegmt=True)
            return ("status", 429, {"Retry-After": when})
        if n == 3:
            return ("status", 503, {"Retry-After": "0"})
        return "pass"

    return plan


SCENARIOS: dict[str, Any] = {
    "refused": None,  # the proxy stops listening twice during the run (see below)
    "reset": _every(2, "reset", first=12),
    "stall": _every(2, "stall", first=4),
    "http500": _every(2, ("status", 500, {}), first=16),
    "http503": _every(3, ("status", 503, {}), first=16),
    "http408": _every(2, ("status", 408, {}), first=16),  # request timeout: resent, not dead-lettered
    "http425": _every(2, ("status", 425, {}), first=16),  # too early: resent, not dead-lettered
    "http429_retry_after": _retry_after_plan(),
    "http413": lambda n, events: ("status", 413, {}) if events > 40 else "pass",
    "500_after_commit": _every(2, "after500", first=16),
}


def _settings(collector: Collector, proxy: FaultProxy, tmp_path: Path) -> dict[str, Any]:
    return {
        "sink": "http", **collector.settings(proxy.url), "spool_dir": str(tmp_path / "spool"),
        "http_timeout": 0.5, "retry_max_backoff": 0.4,
    }


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_fault_scenario_stores_each_event_exactly_once(
    scenario: str, collector: Collector, proxy: FaultProxy, tmp_path: Path,
) -> None:
    tag = f"fault-{scenario}"
    if scenario == "refused":
        proxy.down()
    else:
        proxy.plan = SCENARIOS[scenario]
    proc = start_producer({"settings": _settings(collector, proxy, tmp_path), "tag": tag, "n": N, "rate": RATE,
                           "pad": 200, "flush_timeout": 60})
    wait_ready(proc)
    if scenario == "refused":  # down for the first 0.5 s of recording, up 0.3 s, down 0.4 s, up
        for pause, action in ((0.5, proxy.up), (0.3, proxy.down), (0.4, proxy.up)):
            time.sleep(pause)
            action()
    out = finish_producer(proc)
    stored = collector.stored(out["trace_id"], tag + ":")
    st, dl = out["stats"], out["stats"]["delivery"]["http"]
    print(f"\n{scenario}: p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms, max {out['max_ms']} ms; "
          f"requests {dl['requests']}, retried {dl['retried']}, reconnects {dl['reconnects']}, splits {dl['splits']}, "
          f"duplicates {dl['duplicates']}, last_error {dl['last_error']}")
    assert out["flushed"], out
    assert len(stored) == N and set(stored) == {f"{tag}:{i}" for i in range(1, N + 1)}
    assert max(stored.values()) == 1  # zero stored twice
    assert st["emitted"] == st["written"] == N + 2 and not st["dropped"], st  # + the root span's start/end
    assert dl["shipped"] + dl["duplicates"] == N + 2 and dl["backlog"] == 0 and not dl["dead_lettered"], dl
    # the delivery side balances too: what was committed is shipped, duplicate, dead-lettered, evicted or waiting
    assert dl["committed"] + dl["recovered"] == (dl["shipped"] + dl["duplicates"] + sum(dl["dead_lettered"].values())
                                                 + dl["evicted"] + dl["backlog"]), dl
    assert out["p99_ms"] < 1.0, out
    assert dl["retried"] + dl["reconnects"] > 0 or scenario == "http413", dl  # the fault really happened
    if scenario == "http413":
        assert dl["splits"] > 0
        assert all(events <= 40 for _, _, action, events in proxy.log if action == "pass")
    if scenario == "500_after_commit":  # the resends of committed batches came back `duplicate`
        assert dl["duplicates"] > 0 and max(proxy.forwarded.values()) >= 2
    if scenario == "http429_retry_after":  # Retry-After (seconds, then HTTP date) was honoured
        times = {n: t for t, n, _, _ in proxy.log}
        assert times[2] - times[1] >= 0.9 and times[3] - times[2] >= 0.9, proxy.log[:4]
