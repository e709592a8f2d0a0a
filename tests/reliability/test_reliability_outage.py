"""Must show 3: the collector is down for a while (default 60 s, env TRACEWIRE_TEST_OUTAGE_S) while
the app records at a steady rate. The producer's RSS stays within queue_max_bytes + a small
constant (the backlog goes to the disk spool, not to memory); once the collector is back,
every event arrives, exactly once."""

from __future__ import annotations

import os
import time
from pathlib import Path

from rel_harness import Collector, finish_producer, start_producer, wait_ready

OUTAGE_S = float(os.environ.get("TRACEWIRE_TEST_OUTAGE_S", "60"))
RATE = 1000.0  # events/s, ~1 KiB each
QUEUE_MAX_BYTES = 4 * 1024 * 1024
# The "small constant": one batch in flight, gzip buffers, allocator slack. Measured RSS growth over
# the warm baseline: 3.5-4.0 MiB in 4 runs, all of it this constant (the worker commits to the spool
# every commit_interval, so the queue stays near empty); 8 MiB is twice the worst.
RSS_SLACK = 8 * 1024 * 1024


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_outage_keeps_memory_bounded_and_loses_nothing(collector: Collector, tmp_path: Path) -> None:
    stop_file = tmp_path / "stop"
    settings = {"sink": "http", **collector.settings(), "spool_dir": str(tmp_path / "spool"),
                "queue_max_bytes": QUEUE_MAX_BYTES, "retry_max_backoff": 1.0, "http_timeout": 2.0}
    proc = start_producer({"settings": settings, "tag": "outage", "forever": True, "rate": RATE, "pad": 900,
                           "stop_file": str(stop_file), "flush_timeout": 90})
    try:
        trace_id = wait_ready(proc)
        time.sleep(2.0)  # warm: shipping normally
        baseline = _rss(proc.pid)
        collector.stop()
        peak, t_end = baseline, time.monotonic() + OUTAGE_S
        while time.monotonic() < t_end:
            time.sleep(0.25)
            peak = max(peak, _rss(proc.pid))
    finally:
        collector.start()
    t_back = time.monotonic()
    time.sleep(2.0)  # recording goes on after the collector is back
    peak = max(peak, _rss(proc.pid))
    stop_file.touch()
    out = finish_producer(proc, timeout=OUTAGE_S + 120)
    drained_s = time.monotonic() - t_back
    dl = out["stats"]["delivery"]["http"]
    stored = collector.stored(trace_id, "outage:")
    n = out["recorded"]
    print(f"\noutage {OUTAGE_S:.0f} s at {RATE:.0f} events/s: {n} events recorded; RSS baseline "
          f"{baseline / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB (+{(peak - baseline) / 2**20:.1f} MiB; "
          f"bound queue {QUEUE_MAX_BYTES / 2**20:.0f} MiB + {RSS_SLACK / 2**20:.0f} MiB); backlog drained "
          f"{drained_s:.1f} s after the collector came back; p99 record() {out['p99_ms']} ms; "
          f"requests {dl['requests']}, retried {dl['retried']}")
    assert out["flushed"], out
    assert len(stored) == n and set(stored) == {f"outage:{i}" for i in range(1, n + 1)}
    assert max(stored.values()) == 1
    assert n >= RATE * OUTAGE_S * 0.9
    assert not out["stats"]["dropped"] and dl["backlog"] == 0, out["stats"]
    assert peak - baseline <= QUEUE_MAX_BYTES + RSS_SLACK
