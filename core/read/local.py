"""Reading the local SQLite store: what the CLI shows and exports."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from tracewire.model import codec as _json
from tracewire.read.fold import summarize
from tracewire.sinks.sqlite_table import connect


def default_db() -> str:
    return os.environ.get("TRACEWIRE_DB") or os.path.join(".tracewire", "tracewire.db")


class LocalStore:
    """Read side of the `sqlite` sink's file; safe to use while an app is writing (WAL)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or default_db()
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no tracewire store at {self.path} (set TRACEWIRE_DB or --db)")
        self._conn: sqlite3.Connection = connect(self.path, readonly=True)

    def list_traces(self, limit: int = 20, offset: int = 0, session_id: str | None = None,
                    **_filters: Any) -> list[dict[str, Any]]:
        where, args = ("WHERE session_id = ?", [session_id]) if session_id else ("", [])
        rows = self._conn.execute(
            f"SELECT trace_id, MIN(time) AS t FROM events {where} GROUP BY trace_id ORDER BY t DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [asdict(summarize(tid, self.trace_events(tid))) for tid, _ in rows]

    def trace_events(self, trace_id: str) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT body FROM events WHERE trace_id = ? ORDER BY time, seq_no", (trace_id,)
        ).fetchall()
        return [_json.loads(body) for (body,) in rows]

    def last_trace_id(self) -> str | None:
        """The most recently started trace."""
        row = self._conn.execute(
            "SELECT trace_id, MIN(time) AS t FROM events GROUP BY trace_id ORDER BY t DESC LIMIT 1"
        ).fetchone()
        return None if row is None else str(row[0])

    def lines(self, trace_id: str | None = None, after: int = 0) -> Iterator[tuple[int, str]]:
        """(row number, raw JSON line) in arrival order; `after` resumes a tail."""
        if trace_id:
            cur = self._conn.execute(
                "SELECT seq_no, body FROM events WHERE trace_id = ? AND seq_no > ? ORDER BY seq_no", (trace_id, after))
        else:
            cur = self._conn.execute("SELECT seq_no, body FROM events WHERE seq_no > ? ORDER BY seq_no", (after,))
        yield from cur

    def close(self) -> None:
        self._conn.close()
