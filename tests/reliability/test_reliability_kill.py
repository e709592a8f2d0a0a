"""Must show 2: a producer is kill -9ed at a random moment, 20 times per mode; each restart drains
what the killed one left in the spool. durable=True loses nothing; by default the loss is at most
the events of one default commit interval (+ the slack below). The worst loss is printed to the
terminal, past pytest's capture, so CI logs show it."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
from rel_harness import Collector, read_mark, run_producer, start_producer, wait_ready

from tracewire.config import SETTINGS_BY_NAME

KILLS = 20
RATE = 2000.0  # events/s, paced: n / RATE is an event's offset in time
COMMIT_INTERVAL_S: float = SETTINGS_BY_NAME["commit_interval"].default
# Slack for the worker waking late on 2 shared cores: the shipper thread may hold the GIL for a
# switch interval (5 ms) and the OS may queue the thread. Worst loss per 20 kills, 19 runs on this
# machine at load average 2-5: <= 40 events in 13 runs, 44-54 (22-27 ms) in 5, and once 124 (62 ms)
# in a load spike that no small slack covers. 10 ms keeps the bound under 1.5 intervals.
SLACK_S = 0.010
MAX_LOSS = RATE * (COMMIT_INTERVAL_S + SLACK_S)


def _until_recording(mark: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if mark.exists() and mark.stat().st_size >= 16 and read_mark(mark)[0] > 0:
            return
        time.sleep(0.01)
    raise AssertionError(f"no record() returned within {timeout} s ({mark})")


def _kill_chain(collector: Collector, tmp_path: Path, mode: str, durable: bool) -> list[dict[str, Any]]:
    settings = {"sink": "http", **collector.settings(), "spool_dir": str(tmp_path / f"spool-{mode}"),
                "durable": durable, "retry_max_backoff": 0.2, "http_timeout": 2.0}
    rng = random.Random(8 + durable)
    runs: list[dict[str, Any]] = []
    for k in range(KILLS):
        tag, mark = f"kill-{mode}-{k}", tmp_path / f"mark-{mode}-{k}"
        proc = start_producer({"settings": settings, "tag": tag, "forever": True, "rate": RATE, "pad": 100,
                               "mark": str(mark)})
        trace_id = wait_ready(proc)
        _until_recording(mark)  # every kill lands mid-recording, however slow the first commit is
        time.sleep(rng.uniform(0.05, 0.4))
        proc.kill()  # SIGKILL
        proc.wait()
        runs.append({"tag": tag, "trace_id": trace_id, "mark": mark})
    drain = run_producer({"settings": settings, "tag": f"kill-{mode}-drain", "n": 0, "flush_timeout": 60})
    assert drain["flushed"], drain
    assert not [p for p in (tmp_path / f"spool-{mode}").iterdir() if p.name.startswith("seg-")]  # drained
    results = []
    for run in runs:
        last_n, _ = read_mark(run["mark"])
        stored = {int(name.rsplit(":", 1)[1]) for name in collector.stored(run["trace_id"], run["tag"] + ":")}
        lost = [n for n in range(1, last_n + 1) if n not in stored]
        # anything lost is the tail just before the kill, never a hole in the middle
        assert lost == list(range(lost[0], last_n + 1)) if lost else True, (run["tag"], lost[:10], last_n)
        results.append({"tag": run["tag"], "returned": last_n, "lost": len(lost), "lost_ms": len(lost) / RATE * 1000})
    return results


@pytest.mark.parametrize("mode", ["durable", "default"])
def test_kill_minus_9_loses_at_most_the_commit_window(mode: str, collector: Collector, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    results = _kill_chain(collector, tmp_path, mode, durable=mode == "durable")
    worst = max(results, key=lambda r: r["lost"])
    total = sum(r["returned"] for r in results)
    bound = 0 if mode == "durable" else MAX_LOSS
    with capsys.disabled():  # visible under plain `pytest -q`, in CI logs
        print(f"\nkill -9 x{KILLS} ({mode}): one commit interval ({COMMIT_INTERVAL_S * 1000:g} ms) = "
              f"{RATE * COMMIT_INTERVAL_S:.0f} events, bound {bound:.0f}; {total} events returned by record(); "
              f"worst loss {worst['lost']} events = {worst['lost_ms']:.1f} ms of recording ({worst['tag']}); "
              f"losses: {[r['lost'] for r in results]}")
    assert all(r["returned"] > 0 for r in results)
    assert worst["lost"] <= bound, results
