"""Server time of the viewer's pages on a large local store (benchmarks/ui_store_gen.py's):

    python benchmarks/ui_bench.py [--db build/ui-store/tracewire.db] [--runs 20]

First brings the store's read model up to date (tracewire.read.index) and prints how long that took: on a
store never opened by the viewer, the one-off indexing of every event. Then serves the store on 127.0.0.1
and times each request from the first byte sent to the last byte read: the list's first page and deep
pages, each filter, each sort, full-text search (a rare phrase and a common word) and trace id prefixes.
Prints p50 and p95 per page against the targets (list, filters, sorts: 300 ms; search: 1 s at p95).
"""

from __future__ import annotations

import argparse
import http.client
import re
import sqlite3
import threading
import time
from urllib.parse import urlencode

from tracewire.read.index import TraceIndex
from tracewire.read.stats import percentile
from tracewire.ui.server import ViewerServer

DEFAULT_DB = "build/ui-store/tracewire.db"
LIST_TARGET_MS = 300.0
SEARCH_TARGET_MS = 1000.0


def _samples(db: str) -> dict[str, str]:
    """A user, a session, a root name, an order reference and a trace id that the store holds."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        user, session, trace_id = conn.execute(
            "SELECT user_id, session_id, trace_id FROM events WHERE user_id IS NOT NULL ORDER BY seq_no DESC LIMIT 1"
        ).fetchone()
        name = conn.execute("SELECT name FROM events WHERE parent_span_id IS NULL AND phase = 'start' "
                            "ORDER BY seq_no LIMIT 1").fetchone()[0]
        middle = conn.execute("SELECT MAX(seq_no) / 2 FROM events").fetchone()[0]
        body = conn.execute("SELECT body FROM events WHERE seq_no >= ? AND body LIKE '%ord-%' ORDER BY seq_no LIMIT 1",
                            (middle,)).fetchone()[0]
        ref = re.search(r"ord-\d{6}", body)
    finally:
        conn.close()
    return {"user": user, "session": session, "id": trace_id, "name": str(name)[:8],
            "ref": ref.group(0) if ref else "ord-000001"}


def pages(db: str) -> list[tuple[str, str, float]]:
    """(label, path, p95 target in ms) of every page timed."""
    s = _samples(db)

    def q(**params: str) -> str:
        return "/?" + urlencode(params)

    lists = [
        ("list, first page", "/"),
        ("list, page 20", "/?page=20"),
        ("list, page 400 (deep)", "/?page=400"),
        ("filter user", q(user=s["user"])),
        ("filter session", q(session=s["session"])),
        ("filter status=error", q(status="error")),
        ("filter name", q(name=s["name"])),
        ("filter name, no match", q(name="no-such-agent")),
        ("filter tag", q(tag="priority")),
        ("filter model", q(model="claude-3-5-haiku")),
        ("filter framework", q(framework="llamaindex")),
        ("filter meta", q(meta=f"thread_id={s['session']}")),
        ("filter from=24h", q(**{"from": "24h"})),
        ("filter from/to, 7d-6d", q(**{"from": "7d", "to": "6d"})),
        ("filter tag+model+error", q(tag="mobile", model="gpt-4o", status="error")),
        ("sort latency", q(sort="latency")),
        ("sort tokens", q(sort="tokens")),
        ("sort cost", q(sort="cost")),
        ("sort cost asc", q(sort="cost", dir="asc")),
        ("sort start asc", q(sort="start", dir="asc")),
        ("sort cost, page 20", q(sort="cost", page="20")),
        ("sort cost, tag=beta", q(sort="cost", tag="beta")),
        ("live rows, none newer", "/live?after=9999999999999999999:"),
        ("id prefix, unique", "/traces/" + s["id"][:16]),
        ("id prefix, ambiguous", "/traces/" + s["id"][:6]),
    ]
    searches = [
        ("search rare phrase", q(q=s["ref"])),
        ("search phrase", q(q="where is my")),
        ("search common word", q(q="refund")),
        ("search word + status", q(q="refund", status="error")),
        ("search no match", q(q="no such words here")),
    ]
    return [(label, path, LIST_TARGET_MS) for label, path in lists] + \
        [(label, path, SEARCH_TARGET_MS) for label, path in searches]


def index_store(db: str) -> tuple[int, float]:
    """(events indexed, seconds): bring the read model up to date, as `tracewire ui` does in the background."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        total = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    ix = TraceIndex(db)
    t0 = time.perf_counter()
    try:
        before = ix.lag()
        while ix.catch_up(100_000) != 0:
            pass
    finally:
        ix.stop()
    return min(before, total), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args(argv)
    indexed, seconds = index_store(args.db)
    print(f"read model: {indexed:,} events indexed in {seconds:.1f} s"
          + (" (already up to date)" if indexed == 0 else ""), flush=True)
    server = ViewerServer(args.db, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    over = 0
    try:
        print(f"{'page':<26} {'p50':>9} {'p95':>9}  {'target':>7}", flush=True)
        for label, path, target in pages(args.db):
            times, status = [], 0
            for _ in range(args.runs):
                conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=600)
                t0 = time.perf_counter()
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                times.append((time.perf_counter() - t0) * 1000)
                status = resp.status
                conn.close()
            times.sort()
            p50, p95 = percentile(times, 50) or 0.0, percentile(times, 95) or 0.0
            verdict = "ok" if p95 <= target else "OVER"
            over += verdict == "OVER"
            print(f"{label:<26} {p50:>6.1f} ms {p95:>6.1f} ms  {target:>4.0f} ms {verdict:<4}  (HTTP {status})  {path}",
                  flush=True)
    finally:
        server.shutdown()
        server.server_close()
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
