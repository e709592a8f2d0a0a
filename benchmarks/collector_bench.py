"""Collector ingestion throughput: N sender processes POST signed batches of ~1 KB events over loopback
to real `tracewire serve` subprocesses: SQLite, one PostgreSQL collector, and three PostgreSQL replicas
behind nginx (`.ci/lb.sh` installs and runs it), with the same senders and batches. Reports events/s,
request latency percentiles, and checks the store holds exactly one copy of every event sent.

    python benchmarks/collector_bench.py                       # all three (PostgreSQL ones if a DSN is set)
    python benchmarks/collector_bench.py --backend sqlite --seconds 10 --senders 4 --batch 500
    python benchmarks/collector_bench.py --backend replicas --replicas 3 --pool-size 4
PostgreSQL DSN: --pg-dsn, else $TRACEWIRE_TEST_PG_DSN (`.ci/pg-start.sh` starts a local server).
"""

from __future__ import annotations

import argparse
import gzip
import math
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from tracewire.model.ids import new_event_id, new_span_id, new_trace_id
from tracewire.server.backends import open_store
from tracewire.server.keys import create_key
from tracewire.wire import signed_headers

LB_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "lb.sh"  # installs and runs nginx


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
    """User+system CPU of a process and its children, live or exited (Linux /proc; 0 elsewhere)."""
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
            if int(entry) == pid:  # and its children that have exited (PostgreSQL's backends come and go)
                total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0.0
    return total


def _postmaster_pid(db: str) -> int | None:
    """A local PostgreSQL server's main process, whose children are its backends and background workers
    (so `_cpu_seconds` of it is the database's CPU, other clients' work included); None elsewhere."""
    if not db.startswith("postgres"):
        return None
    import psycopg

    try:
        with psycopg.connect(db) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            with open(f"/proc/{backend}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
    except (psycopg.Error, OSError, ValueError):
        return None


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    proc.terminate()  # the stderr of a process still running would never end
    _, err = proc.communicate(timeout=30)
    raise SystemExit(f"{what} did not answer /healthz within {timeout:.0f} s: {(err or b'').decode()[-2000:]}")


def run(db: str, args: argparse.Namespace, replicas: int = 1) -> dict[str, Any]:
    """One collector, or `replicas` of them behind nginx (`.ci/lb.sh run`), all with `--workers`."""
    store = open_store(db)
    key = create_key(store, "bench")
    store.close()
    ports = [_free_port() for _ in range(replicas)]
    servers = [subprocess.Popen(
        [sys.executable, "-m", "tracewire.server.cli", "serve", "--port", str(port), "--db", db,
         "--workers", str(args.workers), "--pool-size", str(args.pool_size)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for port in ports]
    lb_dir = tempfile.mkdtemp(prefix="tracewire-bench-lb-")
    try:
        for port, server in zip(ports, servers, strict=True):
            _wait_healthy(f"http://127.0.0.1:{port}", server, "collector")
        url = f"http://127.0.0.1:{ports[0]}"
        if replicas > 1:
            lb_port = _free_port()
            servers.append(subprocess.Popen(["bash", str(LB_SCRIPT), "run", lb_dir, str(lb_port), *map(str, ports)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            url = f"http://127.0.0.1:{lb_port}"
            _wait_healthy(url, servers[-1], "nginx", timeout=600)  # the first run may install it
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
        db_pid = _postmaster_pid(db)
        lb_pid = servers[-1].pid if replicas > 1 else None
        cpu0 = sum(_cpu_seconds(server.pid) for server in servers)
        db_cpu0 = _cpu_seconds(db_pid) if db_pid else 0.0
        lb_cpu0 = _cpu_seconds(lb_pid) if lb_pid else 0.0
        results = [out.get(timeout=args.seconds + 120) for _ in procs]
        cpu = sum(_cpu_seconds(server.pid) for server in servers) - cpu0
        db_cpu = _cpu_seconds(db_pid) - db_cpu0 if db_pid else float("nan")
        lb_cpu = _cpu_seconds(lb_pid) - lb_cpu0 if lb_pid else float("nan")
        for p in procs:
            p.join()
    finally:
        for server in reversed(servers):  # nginx first
            server.terminate()
            server.wait(30)
        shutil.rmtree(lb_dir, ignore_errors=True)
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
            "cpu_us_per_event": 1e6 * cpu / max(1, accepted), "db_cpu_us_per_event": 1e6 * db_cpu / max(1, accepted),
            "lb_cpu_us_per_event": 1e6 * lb_cpu / max(1, accepted),
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
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "replicas", "all"], default="all",
                    help="replicas: --replicas collectors on one PostgreSQL behind nginx")
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--batch", type=int, default=500, help="events per request")
    ap.add_argument("--event-bytes", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=1, help="processes per collector")
    ap.add_argument("--replicas", type=int, default=3, help="collectors behind nginx (--backend replicas)")
    ap.add_argument("--pool-size", type=int, default=8, help="PostgreSQL connections per collector process")
    ap.add_argument("--rounds", type=int, default=3, help="turns of the PostgreSQL runs (each keeps its best)")
    ap.add_argument("--gzip", action="store_true", help="gzip request bodies")
    ap.add_argument("--pg-dsn", default=os.environ.get("TRACEWIRE_TEST_PG_DSN"))
    args = ap.parse_args()

    print(f"collector bench: {args.senders} sender processes, {args.batch} events/request, "
          f"{args.event_bytes} B events, {args.seconds:.0f} s, {args.workers} process(es) per collector, "
          f"gzip={'on' if args.gzip else 'off'}, {os.cpu_count()} CPUs")
    ok = True
    figures: dict[str, dict[str, Any]] = {}
    if args.backend in ("sqlite", "all"):
        with tempfile.TemporaryDirectory() as tmp:
            figures["sqlite"] = run(f"sqlite:///{tmp}/bench.db", args)
            ok &= _report("sqlite", figures["sqlite"])
    # One collector and the replicas take turns, `--rounds` times, and each keeps its best round: on a
    # machine shared with other work, a round that others slowed says nothing about the collector.
    configs = [(name, n) for name, n in (("postgresql", 1), (f"pg x{args.replicas} nginx", args.replicas))
               if args.backend in ("all", "postgresql" if n == 1 else "replicas")]
    if configs and not args.pg_dsn:
        print("postgresql: not run (set TRACEWIRE_TEST_PG_DSN or --pg-dsn; .ci/pg-start.sh starts one)")
        configs = []
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in configs}
    for _ in range(args.rounds if configs else 0):
        for name, replicas in configs:
            db, drop = _pg_database(args.pg_dsn)
            try:
                rounds[name].append(run(db, args, replicas))
            finally:
                drop()
    for name, got in rounds.items():
        figures[name] = max(got, key=lambda r: r["events_per_s"])
        ok &= all(_exact(r) for r in got)
        _report(name, figures[name])
        if len(got) > 1:
            each = ", ".join(f"{r['events_per_s']:,.0f}" for r in got)
            print(f"{'':<15} rounds: {each} events/s")
    one, many = figures.get("postgresql"), figures.get(f"pg x{args.replicas} nginx")
    if one and many:
        per_core = 1e6 / max(1.0, one["cpu_us_per_event"])
        print(f"{args.replicas} replicas / 1: {many['events_per_s'] / one['events_per_s']:.2f}x events/s. It cannot be "
              f"much higher here: the {os.cpu_count()} CPUs are shared by the senders, PostgreSQL, nginx and the "
              "collectors, so a replica adds no CPU; it only keeps the cores busy while another waits on the "
              f"database. A collector spends {one['cpu_us_per_event']:.0f} us of CPU per event (one core: about "
              f"{per_core:,.0f} events/s), so replicas on hosts of their own add up until PostgreSQL is the bound"
              + ("." if math.isnan(one["db_cpu_us_per_event"]) else
                 f" (here it spent {one['db_cpu_us_per_event']:.0f} us per event: about "
                 f"{1e6 / max(1.0, one['db_cpu_us_per_event']):,.0f} events/s per database core)."))
    return 0 if ok else 1


def _exact(r: dict[str, Any]) -> bool:
    return bool(r["stored"] == r["accepted"] == r["sent"])


def _report(name: str, r: dict[str, Any]) -> bool:
    exact = _exact(r)
    db = r["db_cpu_us_per_event"]
    db_cpu = "" if math.isnan(db) else f"database {db:.0f} us, "
    if not math.isnan(r["lb_cpu_us_per_event"]):
        db_cpu = f"(nginx {r['lb_cpu_us_per_event']:.0f} us of it), {db_cpu}"
    print(f"{name:<15} {r['events_per_s']:>9,.0f} events/s  ({r['accepted']:,} events in {r['seconds']:.1f} s, "
          f"{r['requests']} requests)  latency p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  "
          f"max {r['max_ms']:.1f} ms  CPU/event: collector {r['cpu_us_per_event']:.0f} us, "
          f"{db_cpu}senders "
          f"{r['sender_cpu_us_per_event']:.0f} us  load {r['load']:.1f}  stored once: {'yes' if exact else 'NO'} ({r['stored']:,})")
    return exact


if __name__ == "__main__":
    sys.exit(main())
