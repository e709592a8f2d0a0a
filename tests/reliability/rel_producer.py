"""A producer process for the reliability suite. One JSON argument:

    settings     tracewire.init keyword arguments (sink http, endpoint, keys, spool_dir, ...)
    tag          event names are "<tag>:<n>", n = 1, 2, ..., all in one trace (root span "<tag>")
    n            events to record (0: only start, drain the spool, stop)
    rate         events per second (steady; 0 = as fast as possible)
    pad          bytes of content per event
    mark         file to mmap: after each record() returns, (n, time_ns) is stored there
    forever      record until killed, or until the file `stop_file` exists
    exit         "shutdown" (flush, then stop) | "abandon" (wait until committed, then os._exit)
    flush_timeout, segment_bytes

Prints "READY <trace id>" once initialised, then (unless killed) one JSON line: latencies and stats().
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
import time
from array import array

spec = json.loads(sys.argv[1])
import tracewire  # noqa: E402
import tracewire.delivery.spool  # noqa: E402

if spec.get("segment_bytes"):
    tracewire.delivery.spool.SEGMENT_BYTES = int(spec["segment_bytes"])

client = tracewire.init(**spec["settings"])
mark = None
MARK_RING = 4096  # the return times of the last events, for a loss measured in time
MARK_BYTES = 16 + 8 * MARK_RING
if spec.get("mark"):
    fd = os.open(spec["mark"], os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, MARK_BYTES)
    mark = mmap.mmap(fd, MARK_BYTES)
tag, n_events, rate = spec.get("tag", "e"), int(spec.get("n", 0)), float(spec.get("rate", 0))
root = client.start_span("agent", tag, parent=None)
print("READY", root.trace_id, flush=True)
point = client.point

pad = "x" * int(spec.get("pad", 64))
forever = bool(spec.get("forever"))
stop_file = spec.get("stop_file")
lat = array("q")
pack = struct.pack_into
t0 = time.perf_counter()
i = 0
while forever or i < n_events:
    i += 1
    if rate:
        target = t0 + i / rate
        now = time.perf_counter()
        if target > now:
            time.sleep(target - now)
    if stop_file and i % 100 == 0 and os.path.exists(stop_file):
        i -= 1
        break
    a = time.perf_counter_ns()
    point("log", name=f"{tag}:{i}", input={"n": i, "pad": pad}, parent=root)
    b = time.perf_counter_ns()
    lat.append(b - a)
    if mark is not None:
        pack("<q", mark, 16 + (i % MARK_RING) * 8, b)  # before n: a reader never sees n ahead of its time
        pack("<qq", mark, 0, i, b)
recorded = i if not forever else len(lat)
root.end()

if spec.get("exit") == "abandon":  # leave the spool behind, as a crash would (but fully committed)
    deadline = time.monotonic() + 30
    while client.stats()["written"] < recorded and time.monotonic() < deadline:
        time.sleep(0.01)
    print(json.dumps({"recorded": recorded, "trace_id": root.trace_id, "stats": client.stats()}, default=str),
          flush=True)
    os._exit(0)

flushed = tracewire.flush(float(spec.get("flush_timeout", 60)))
stats = tracewire.stats()
tracewire.shutdown(5)
s = sorted(lat)


def pct(p: float) -> float:
    return round(s[min(len(s) - 1, int(p * len(s)))] / 1e6, 4) if s else 0.0


print(json.dumps({
    "recorded": recorded, "trace_id": root.trace_id, "flushed": flushed, "stats": stats,
    "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(s[-1] / 1e6, 3) if s else 0.0,
    "elapsed_s": round(time.perf_counter() - t0, 3),
}, default=str), flush=True)
