"""Collector ingestion throughput: N sender processes POST signed batches of ~1 KB events over loopback
to a real `tracewire serve` subprocess, for SQLite and PostgreSQL. Reports events/s, request latency
percentiles, and checks the store holds exactly one copy of every event sent.

    python benchmarks/collector_bench.py                       # sqlite, and postgresql if a DSN is set
    python benchmarks/collector_bench.py --backend sqlite --seconds 10 --senders 4 --batch 500
PostgreSQL DSN: --pg-dsn, else $TRACEWIRE_TEST_PG_DSN (`.ci/pg-start.sh` starts a local server).
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from tracewire.model.ids import new_event_id, new_span_id, new_trace_id
from tracewire.server.backends import open_store
from tracewire.server.keys import create_key
from tracewire.wire import signed_headers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _event(trace_id: str, pad: str) -> dict[str, Any]:
    return {
        "id": new_event_id(), "schema": 1, "type": "llm.end", "kind": "llm", "phase": "end",
        "trace_id": trace_id, "span_id": new_span_id(), "parent_span_id": new_span_id(),
        "session_id": "bench-session", "user_id": "bench-user", "name": "ChatOpenAI", "framework": "manual",
        "time": time.time_ns(), "seq": 1,
        "attributes": {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 120,
                       "gen_ai.usage.output_tokens": 48, "tracewire.cost_usd": 0.00012},
        "output": pad, "tags": ["bench"],
    }


def _padding(target: int) -> str:
    base = len(orjson.dumps(_event(new_trace_id(), "")))
    return "x" * max(0, target - base)


def _batch_maker(batch: int, event_bytes: int) -> Any:
    """Serialized batches of `batch` distinct events: one template per batch with fresh ids spliced in,
    so the senders spend their CPU on sending, not on building dicts (the collector is what is measured)."""
    pad = _padding(event_bytes)

    def make() -> bytes:
        template = _event(new_trace_id(), pad)
        template["id"], template["span_id"] = "@ID@", "@SPAN@"
        head, rest = orjson.dumps(template).split(b"@ID@")
        mid, tail = rest.split(b"@SPAN@")
        events = b",".join(b"".join((head, new_event_id().encode(), mid, new_span_id().encode(), tail))
                           for _ in range(batch))
        return b'{"events":[' + events + b'],"client":{"sdk":"bench","version":"0","loss":{}}}'

    return make


def _sender(url: str, api_key: str, secret: str, batch: int, event_bytes: int, seconds: float, gz: bool,
            start_at: float, out: Any) -> None:
    make = _batch_maker(batch, event_bytes)
    session = requests.Session()
    latencies: list[float] = []
    sent = accepted = 0
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    cpu0 = time.process_time()
    while time.time() < deadline:
        body = make()
        if gz:
            body = gzip.compress(body, 1)
        headers = signed_headers(api_key, secret, body, gzipped=gz, batch_id=str(uuid.uuid4()))
        t0 = time.perf_counter()
        r = session.post(url + "/v1/events", data=body, headers=headers, timeout=60)
        latencies.append(time.perf_counter() - t0)
        r.raise_for_status()
        sent += batch
        accepted += r.json()["accepted"]
    out.put((sent, accepted, latencies, time.time(), time.process_time() - cpu0))


def _cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its children (Linux /proc; 0 elsewhere)."""
    total = 0.0
    try:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(entry) == pid or int(fields[1]) == pid:  # fields[1] is the parent pid
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0.0
    return total


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run(db: str, args: argparse.Namespace) -> dict[str, Any]:
    store = open_store(db)
    key = create_key(store, "bench")
    store.close()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "tracewire.server.cli", "serve", "--port", str(port), "--db", db,
         "--workers", str(args.workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        else:
            raise SystemExit(f"collector did not start: {server.stderr.read().decode() if server.stderr else ''}")
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        start_at = time.time() + 1.5  # let every sender import and get ready first
        procs = [ctx.Process(target=_sender, args=(url, key.api_key, key.signing_secret, args.batch,
                                                   args.event_bytes, args.seconds, args.gzip, start_at, out))
                 for _ in range(args.senders)]
        for p in procs:
            p.start()
        while time.time() < start_at:
            time.sleep(0.001)
        cpu0 = _cpu_seconds(server.pid)
        results = [out.get(timeout=args.seconds + 120) for _ in procs]
        cpu = _cpu_seconds(server.pid) - cpu0
        for p in procs:
            p.join()
    finally:
        server.terminate()
        server.wait(30)
    sent = sum(r[0] for r in results)
    accepted = sum(r[1] for r in results)
    latencies = [x for r in results for x in r[2]]
    wall = max(r[3] for r in results) - start_at
    store = open_store(db)
    stored = store.count_events("bench")
    store.close()
    return {"sent": sent, "accepted": accepted, "stored": stored, "seconds": wall, "events_per_s": accepted / wall,
            "requests": len(latencies), "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * _pct(latencies, 99), "max_ms": 1000 * max(latencies),
            "cpu_us_per_event": 1e6 * cpu / max(1, accepted),
            "sender_cpu_us_per_event": 1e6 * sum(r[4] for r in results) / max(1, accepted),
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")}


def _pg_database(dsn: str) -> tuple[str, Any]:
    """A fresh database next to `dsn` (dropped afterwards), so runs do not add up."""
    import psycopg

    name = f"tracewire_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]

    def drop() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]

    return urlsplit(dsn)._replace(path="/" + name).geturl(), drop


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--batch", type=int, default=500, help="events per request")
    ap.add_argument("--event-bytes", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=1, help="collector processes")
    ap.add_argument("--gzip", action="store_true", help="gzip request bodies")
    ap.add_argument("--pg-dsn", default=os.environ.get("TRACEWIRE_TEST_PG_DSN"))
    args = ap.parse_args()

    print(f"collector bench: {args.senders} sender processes, {args.batch} events/request, "
          f"{args.event_bytes} B events, {args.seconds:.0f} s, {args.workers} collector process(es), "
          f"gzip={'on' if args.gzip else 'off'}, {os.cpu_count()} CPUs")
    ok = True
    if args.backend in ("sqlite", "all"):
        with tempfile.TemporaryDirectory() as tmp:
            ok &= _report("sqlite", run(f"sqlite:///{tmp}/bench.db", args))
    if args.backend in ("postgresql", "all"):
        if not args.pg_dsn:
            print("postgresql: not run (set TRACEWIRE_TEST_PG_DSN or --pg-dsn; .ci/pg-start.sh starts one)")
        else:
            db, drop = _pg_database(args.pg_dsn)
            try:
                ok &= _report("postgresql", run(db, args))
            finally:
                drop()
    return 0 if ok else 1


def _report(name: str, r: dict[str, Any]) -> bool:
    exact = r["stored"] == r["accepted"] == r["sent"]
    print(f"{name:<11} {r['events_per_s']:>9,.0f} events/s  ({r['accepted']:,} events in {r['seconds']:.1f} s, "
          f"{r['requests']} requests)  latency p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  "
          f"max {r['max_ms']:.1f} ms  CPU/event: collector {r['cpu_us_per_event']:.0f} us, senders "
          f"{r['sender_cpu_us_per_event']:.0f} us  load {r['load']:.1f}  stored once: {'yes' if exact else 'NO'} ({r['stored']:,})")
    return exact


if __name__ == "__main__":
    sys.exit(main())
