"""Server time of the viewer's pages on a large local store (benchmarks/ui_store_gen.py's):

    python benchmarks/ui_bench.py [--db build/ui-store/tracewire.db] [--runs 3]

Serves the store on 127.0.0.1 and times each request from the first byte sent to the last byte read:
the first page of the list, a deep page, each filter, and a trace id prefix. Prints the median per page.
"""

from __future__ import annotations

import argparse
import http.client
import sqlite3
import statistics
import threading
import time
from urllib.parse import urlencode

from tracewire.ui.server import ViewerServer

DEFAULT_DB = "build/ui-store/tracewire.db"


def _samples(db: str) -> dict[str, str]:
    """A user, a session, a root name's start and a trace id that the store holds."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        user, session, trace_id = conn.execute(
            "SELECT user_id, session_id, trace_id FROM events WHERE user_id IS NOT NULL ORDER BY seq_no DESC LIMIT 1"
        ).fetchone()
        name = conn.execute("SELECT name FROM events WHERE parent_span_id IS NULL AND phase = 'start' "
                            "ORDER BY seq_no LIMIT 1").fetchone()[0]
    finally:
        conn.close()
    return {"user": user, "session": session, "id": trace_id, "name": str(name)[:8]}


def pages(db: str) -> list[tuple[str, str]]:
    s = _samples(db)
    return [
        ("list, first page", "/"),
        ("list, page 20", "/?page=20"),
        ("filter user", "/?" + urlencode({"user": s["user"]})),
        ("filter session", "/?" + urlencode({"session": s["session"]})),
        ("filter status=error", "/?status=error"),
        ("filter name", "/?" + urlencode({"name": s["name"]})),
        ("filter name, no match", "/?name=no-such-agent"),
        ("id prefix, unique", "/traces/" + s["id"][:16]),
        ("id prefix, ambiguous", "/traces/" + s["id"][:6]),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    server = ViewerServer(args.db, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for label, path in pages(args.db):
            times, status = [], 0
            for _ in range(args.runs):
                conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=600)
                t0 = time.perf_counter()
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                times.append(time.perf_counter() - t0)
                status = resp.status
                conn.close()
            print(f"{label:<22} {statistics.median(times) * 1000:>9.1f} ms  (HTTP {status})  {path}", flush=True)
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
