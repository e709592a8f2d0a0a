"""Core client benchmark: record() latency, throughput into SQLite, memory with a stalled sink.

    python benchmarks/core_bench.py          (about a minute on a 2-core machine)

Figures are measured in this run and printed; nothing here is pass/fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

PAYLOAD = {
    "messages": [{"role": "user", "content": "Summarise the quarterly report for the board, briefly. " * 2}
                 for _ in range(5)],
    "model": "gpt-4o-mini", "temperature": 0.2,
}


def _event_size() -> int:
    import tracewire
    from tracewire.sinks.memory import MemorySink

    sink = MemorySink()
    c = tracewire.init(sink=[sink])
    tracewire.record("log", name="sizing", input=PAYLOAD)
    c.flush(5)
    size = len(json.dumps(sink.events[0]))
    tracewire.shutdown()
    return size


def latency(n: int = 100_000) -> dict[str, float]:
    import tracewire

    with tempfile.TemporaryDirectory() as d:
        # queue limits raised so a burst is measured, not the drop path
        tracewire.init(db=os.path.join(d, "lat.db"), queue_max_bytes=2**31, queue_max_events=10**7)
        record, clock = tracewire.record, time.perf_counter_ns
        samples = []
        for i in range(n):
            t0 = clock()
            record("log", name="bench", input=PAYLOAD, attributes={"i": i})
            samples.append(clock() - t0)
            if i % 1000 == 999:
                time.sleep(0.02)  # an app that does other work between events, not a flood
        tracewire.flush()
        stats = tracewire.stats()
        tracewire.shutdown()
    samples.sort()
    assert stats["written"] == n, stats
    return {"p50_us": samples[n // 2] / 1e3, "p99_us": samples[int(n * 0.99)] / 1e3,
            "p999_us": samples[int(n * 0.999)] / 1e3, "mean_us": sum(samples) / n / 1e3}


def throughput(n: int = 200_000) -> dict[str, float]:
    import tracewire

    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "tp.db")
        tracewire.init(db=db, queue_max_events=n + 1, queue_max_bytes=2**31, batch_size=2048)
        t0 = time.perf_counter()
        for i in range(n):
            tracewire.record("log", name="bench", input=PAYLOAD, attributes={"i": i})
        t_rec = time.perf_counter() - t0
        assert tracewire.flush(600)
        t_all = time.perf_counter() - t0
        stats = tracewire.stats()
        tracewire.shutdown()
        import sqlite3

        stored = sqlite3.connect(db).execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert stored == n == stats["written"], (stored, stats)
    return {"events": n, "record_phase_s": t_rec, "total_s": t_all, "events_per_s": n / t_all}


def host_floor(n: int = 200_000) -> dict[str, float]:
    """This machine's CPython cost per event with none of tracewire's code, to read the targets by.

    caller: a function taking record()'s arguments that snapshots the content (orjson) and queues a
    tuple, the least a recorder with content capture can do. writer: the envelope dict built,
    serialized with the content spliced in, and made a row of the store's own schema (no
    accounting). scan: the serialized content searched for the secret shapes and key words the
    requirements list. All three hold the GIL, so with one process their sum bounds the events/s
    any in-process recorder reaches here. sqlite: those rows inserted, 2,048 a transaction, as the
    sink writes them (its CPU is partly outside the GIL: a bound of its own). The writer, scan and
    sqlite figures are this thread's CPU time per event."""
    import collections

    import orjson

    from tracewire.sinks.sqlite_table import INSERT_HEAD, connect, insert_rows

    queue: collections.deque[Any] = collections.deque()
    clock, dumps = time.time_ns, orjson.dumps

    def rec(event_type: str, *, name: Any = None, input: Any = None, attributes: Any = None) -> None:
        queue.append((event_type, name, clock(), dumps(input).decode(), dict(attributes) if attributes else None))

    t0 = time.perf_counter()
    for i in range(n):
        rec("log", name="bench", input=PAYLOAD, attributes={"i": i})
    caller = (time.perf_counter() - t0) / n * 1e6

    content = queue[0][3]
    queue.clear()
    # The least scrubbing the requirements name: one lower-cased pass per secret shape and key
    # word they list (the standard library has no multi-pattern search; a regex is slower).
    hints = ("sk-", "bearer", "akia", "eyj", "api_key", "authorization", "password", "secret", "token", "x-api-key")
    text = f'"attributes":{{"i":1}},"input":{content}'
    t0 = time.thread_time()
    for _ in range(n // 4):
        low = text.lower()
        for h in hints:
            if h in low:
                break
    scan = (time.thread_time() - t0) / (n // 4) * 1e6
    # The writer's part in the pipeline's own shape: a batch of envelopes serialized into the rows
    # of the store's schema, then inserted in one transaction; timed apart, memory reused.
    writer_s = sqlite_s = sqlite_cpu_s = 0.0
    with tempfile.TemporaryDirectory() as d:
        conn = connect(os.path.join(d, "floor.db"))  # the sink's own settings and schema
        for start in range(0, n, 2048):
            t0, c0 = time.perf_counter(), time.thread_time()
            rows = []
            for i in range(start, min(n, start + 2048)):
                now = clock()
                ev = {"id": f"{now:032x}{i}", "schema": 1, "type": "log", "kind": "event", "phase": "point",
                      "trace_id": f"{now:032x}", "span_id": f"{i:016x}", "parent_span_id": None,
                      "session_id": None, "user_id": None, "name": "bench", "framework": "manual", "time": now,
                      "seq": i, "attributes": {"i": i}, "error": None, "tags": (), "metadata": None,
                      "input": orjson.Fragment(content)}
                rows.append((ev["id"], ev["trace_id"], ev["span_id"], None, "log", "event", "point", "bench", None,
                             None, now, dumps(ev).decode()))
            t1, c1 = time.perf_counter(), time.thread_time()
            conn.execute("BEGIN")
            insert_rows(conn, INSERT_HEAD, rows)  # as the sink writes them
            conn.execute("COMMIT")
            writer_s += c1 - c0  # CPU time, as the worker's figures are
            sqlite_s += time.perf_counter() - t1
            sqlite_cpu_s += time.thread_time() - c1
        conn.close()
    writer = writer_s / n * 1e6
    sqlite_wall, sqlite_cpu = sqlite_s / n * 1e6, sqlite_cpu_s / n * 1e6
    return {"caller_us": caller, "writer_us": writer, "scan_us": scan, "sqlite_cpu_us": sqlite_cpu,
            "sqlite_wall_us": sqlite_wall, "bound_events_per_s": 1e6 / (caller + writer + scan),
            "sqlite_rows_per_s": 1e6 / sqlite_wall}


STALLED = textwrap.dedent("""
    import json, sys, threading, tracewire
    sys.path.insert(0, %r)
    from core_bench import PAYLOAD
    class Stalled(tracewire.BaseSink):
        name = "stalled"
        def write(self, batch):
            threading.Event().wait()
    def rss_kib(field):  # VmHWM/VmRSS: ru_maxrss would carry the parent's peak over exec
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1])
    queue_bytes = int(sys.argv[1])
    # Warm up the recording path on a memory sink: a record() before init() would start the
    # default client, whose SQLite file lands in the caller's directory.
    tracewire.init(sink="memory")
    tracewire.record("log", name="warm-up", input=PAYLOAD)
    tracewire.shutdown()
    base = rss_kib("VmRSS:")
    tracewire.init(sink=[Stalled()], queue_max_bytes=queue_bytes, queue_max_events=10**7, exit_flush_timeout=0)
    for i in range(1_000_000):
        tracewire.record("log", name="bench", input=PAYLOAD, attributes={"i": i})
    peak = rss_kib("VmHWM:")
    s = tracewire.stats()
    print(json.dumps({"baseline_kib": base, "peak_kib": peak, "queued_bytes": s["queued_bytes"],
                      "queued": s["queued"], "dropped": s["dropped"]}))
    import os; os._exit(0)
""")


def stalled_memory(queue_bytes: int) -> dict[str, float]:
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", STALLED % here, str(queue_bytes)], capture_output=True, text=True,
                         check=True, timeout=900)
    r = json.loads(out.stdout)
    r["growth_mib"] = (r["peak_kib"] - r["baseline_kib"]) / 1024
    r["queue_limit_mib"] = queue_bytes / 2**20
    return r


def main() -> None:
    from tracewire.model import codec as _json

    print(f"python {sys.version.split()[0]}, orjson={'yes' if _json.HAS_ORJSON else 'no'}, cores={os.cpu_count()}")
    print(f"event size: {_event_size()} bytes serialized (content capture on)")
    lat = latency()
    print(f"record() latency, sqlite sink, 100k events: p50 {lat['p50_us']:.1f} µs  p99 {lat['p99_us']:.1f} µs  "
          f"p99.9 {lat['p999_us']:.1f} µs  mean {lat['mean_us']:.1f} µs")
    tp = throughput()
    print(f"throughput into SQLite: {tp['events_per_s']:,.0f} events/s sustained "
          f"({tp['events']:,} events recorded in {tp['record_phase_s']:.2f} s, all stored after {tp['total_s']:.2f} s)")
    if _json.HAS_ORJSON:  # the floor is measured with the serializer tracewire uses
        fl = host_floor()
        print(f"host floor, none of tracewire's code, per event: a call that snapshots the content and queues "
              f"it {fl['caller_us']:.1f} µs, the envelope built and serialized {fl['writer_us']:.1f} µs, the "
              f"content scanned for the listed secret shapes {fl['scan_us']:.1f} µs (all three under the GIL: at most "
              f"{fl['bound_events_per_s']:,.0f} events/s in one process here); a prepared row into SQLite "
              f"{fl['sqlite_cpu_us']:.1f} µs CPU, {fl['sqlite_wall_us']:.1f} wall (at most "
              f"{fl['sqlite_rows_per_s']:,.0f} rows/s)")
        # The same unit as langchain_overhead.py's "background worker ... µs per event" (CPU time
        # per event written), so the two can be read side by side.
        print(f"host floor of a background writer, per event: serialize + scan + one row "
              f"{fl['writer_us'] + fl['scan_us'] + fl['sqlite_cpu_us']:.1f} µs CPU")
    for qb in (16 * 2**20, 64 * 2**20):
        m = stalled_memory(qb)
        print(f"stalled sink, 1,000,000 events, queue_max_bytes={m['queue_limit_mib']:.0f} MiB: "
              f"RSS grew {m['growth_mib']:.1f} MiB (peak {m['peak_kib'] / 1024:.0f} MiB), "
              f"queued {m['queued']:,} events / {m['queued_bytes'] / 2**20:.1f} MiB, dropped {m['dropped']}")


if __name__ == "__main__":
    main()
