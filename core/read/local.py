"""Reading the local SQLite store: what the CLI and the viewer list, show, tail and export.

Listing reads the store's read model (tracewire.read.index: a summary row per trace, facets, full-text
search) when it holds every event. Otherwise (never indexed, or an indexer is catching up) it asks SQLite
for what the event table indexes (session, user, start time, failed spans) and folds each candidate
trace for the rest (see `TraceQuery`). Ids are resolved and shortened with range scans of the trace_id
index, never by reading every id.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

from tracewire.model import codec as _json
from tracewire.model.score import row as score_fields
from tracewire.read import index
from tracewire.read.fold import summarize
from tracewire.read.query import IdLookup, Totals, TraceQuery, raise_unless_one, totals
from tracewire.read.stats import Dashboard, dashboard
from tracewire.sinks.sqlite_table import connect

_IDS = IdLookup("events")
_SCAN_CHUNK = 200  # candidate traces folded at a time while a folded filter looks for matches


def _name_like(q: TraceQuery) -> str | None:
    """The LIKE pattern that pre-selects a name filter's traces in SQL, or None when there is no name
    filter or it is not ASCII (LIKE folds the case of ASCII letters only)."""
    if not q.name or not q.name.isascii():
        return None
    return "%" + q.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def default_db() -> str:
    """The store the settings name: TRACEWIRE_DB, else the nearest `.tracewire/` (absolute); only
    the `db` setting is read, so a bad unrelated setting does not stop the CLI from reading."""
    from tracewire.config import setting

    return str(setting("db"))


class IndexMissing(LookupError):
    """The query needs the store's read model, and the store has none yet."""


class LocalStore:
    """Read side of the `sqlite` sink's file; safe to use while an app is writing (WAL)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = os.path.abspath(path or default_db())
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no tracewire store at {self.path} (set TRACEWIRE_DB or --db)")
        self._conn: sqlite3.Connection = connect(self.path, readonly=True)

    # -- listing ------------------------------------------------------------------------------------
    def _candidates(self, q: TraceQuery, by_name: bool = False) -> sqlite3.Cursor:
        """Trace ids newest first (by the trace's first event) matching the indexed part of `q`, as a
        cursor: SQLite groups and sorts once, and a folded filter reads on only as far as it needs.
        `by_name` also keeps only traces with an event whose name contains `q.name` (a table scan)."""
        where: list[str] = []
        args: list[Any] = []
        for col, val in (("session_id", q.session_id), ("user_id", q.user_id)):
            if val is not None:  # any event of the trace carries it (the root's events may not)
                where.append(f"trace_id IN (SELECT trace_id FROM events WHERE {col} = ?)")
                args.append(val)
        if q.status == "error":  # a failed span has an error event: the partial index narrows the fold to these
            where.append("trace_id IN (SELECT trace_id FROM events WHERE phase = 'error')")
        like = _name_like(q) if by_name else None
        if like is not None:  # some event carries the root's name
            where.append("trace_id IN (SELECT trace_id FROM events WHERE name LIKE ? ESCAPE '\\')")
            args.append(like)
        having: list[str] = []
        if q.since is not None:
            having.append("t >= ?")
            args.append(q.since)
        if q.until is not None:
            having.append("t <= ?")
            args.append(q.until)
        sql = ("SELECT trace_id, MIN(time) AS t FROM events WHERE trace_id IS NOT NULL"
               + "".join(f" AND {w}" for w in where) + " GROUP BY trace_id"
               + (f" HAVING {' AND '.join(having)}" if having else "")
               + " ORDER BY t DESC, trace_id DESC")
        return self._conn.execute(sql, args)

    def list_traces(self, limit: int = 20, offset: int = 0, session_id: str | None = None,
                    query: TraceQuery | None = None, fresh_within: int = 0) -> list[dict[str, Any]]:
        """Trace summaries (TraceSummary fields), newest first, matching `query`; `offset` skips that
        many matches (a page of a listing). The read model answers when it lags the events by at most
        `fresh_within` events (a caller that has just caught it up can allow what arrived since)."""
        q = query or TraceQuery(session_id=session_id)
        lag = self.index_lag()
        if lag is not None and (lag <= fresh_within or q.needs_index):
            return self._indexed(q, limit, offset)
        if q.needs_index:
            raise IndexMissing("search, framework and metadata filters and sorting need the store's read model: "
                               "open the store in `tracewire ui` once to build it")
        if not q.folded:
            cur = self._candidates(q)
            try:
                rows = cur.fetchmany(offset + limit) if limit > 0 else []  # fetchmany(0) would read one
            finally:
                cur.close()
            return [self.summary(t) for t, _ in rows[offset:]]
        # A name filter first folds the newest traces as they come (a common name fills the page at
        # once); when they do not, it asks SQLite which traces carry the name at all (one scan of the
        # table) rather than folding every trace in the store.
        found, complete = self._scan(q, offset + limit, most=_SCAN_CHUNK if _name_like(q) is not None else None)
        if not complete:
            found, _ = self._scan(q, offset + limit, by_name=True)
        return found[offset:offset + limit]

    def _indexed(self, q: TraceQuery, limit: int, offset: int) -> list[dict[str, Any]]:
        return [self._short(r) for r in index.page(self._conn, q, limit, offset)]

    def _short(self, row: dict[str, Any]) -> dict[str, Any]:
        row["short_id"] = self.short_id(row["trace_id"])
        return row

    def newer_traces(self, query: TraceQuery, after_ns: int, after_id: str, limit: int) -> list[dict[str, Any]]:
        """Traces matching `query` that started after (after_ns, after_id), newest first (a live list's
        new rows); [] while the store has no read model."""
        if index.lag(self._conn) is None:
            return []
        return [self._short(r) for r in index.newer(self._conn, query, after_ns, after_id, limit)]

    def list_notes(self) -> list[str]:
        """Nothing to say: only the viewer's store (`tracewire.ui.indexed`) catches the read model up."""
        return []

    def index_lag(self) -> int | None:
        """Events the read model has not taken in yet; None when the store has none."""
        return index.lag(self._conn)

    def _scan(self, q: TraceQuery, want: int, most: int | None = None,
              by_name: bool = False) -> tuple[list[dict[str, Any]], bool]:
        """Summaries matching `q`, newest first, until `want` of them or the candidates run out (True),
        or `most` candidates were folded short of that (False)."""
        found: list[dict[str, Any]] = []
        scanned = 0
        cur = self._candidates(q, by_name)
        try:
            while len(found) < want:
                if most is not None and scanned >= most:
                    return found, False
                rows = cur.fetchmany(_SCAN_CHUNK)
                scanned += len(rows)
                found += [s for s in (self.summary(t) for t, _ in rows) if q.matches(s)]
                if len(rows) < _SCAN_CHUNK:
                    break
            return found, True
        finally:
            cur.close()

    def query_traces(self, query: TraceQuery, limit: int = 20) -> list[dict[str, Any]]:
        """`list_traces` by query alone (the same call as RemoteStore's)."""
        return self.list_traces(limit, query=query)

    def summary(self, trace_id: str) -> dict[str, Any]:
        """The trace's listing row, its short id included."""
        row = asdict(summarize(trace_id, self.trace_events(trace_id)))
        row["short_id"] = self.short_id(trace_id)
        return row

    def sessions(self, limit: int = 20, user_id: str | None = None, since: int | None = None,
                 until: int | None = None) -> list[tuple[str, Totals]]:
        """Sessions most recently active first, each with the roll-up of its traces. `since`/`until`
        bound a session's activity (its last and first event)."""
        where: list[str] = ["session_id IS NOT NULL"]
        args: list[Any] = []
        if user_id is not None:
            where.append("user_id = ?")
            args.append(user_id)
        having: list[str] = []
        if since is not None:
            having.append("MAX(time) >= ?")
            args.append(since)
        if until is not None:
            having.append("MIN(time) <= ?")
            args.append(until)
        sql = (f"SELECT session_id FROM events WHERE {' AND '.join(where)} GROUP BY session_id"
               + (f" HAVING {' AND '.join(having)}" if having else "")
               + " ORDER BY MAX(time) DESC LIMIT ?")
        out = []
        for (sid,) in self._conn.execute(sql, [*args, limit]).fetchall():
            ids = [r[0] for r in self._conn.execute(
                "SELECT DISTINCT trace_id FROM events WHERE session_id = ?", (sid,))]
            out.append((sid, totals(map(self.summary, ids))))
        return out

    def dashboard(self, since_ns: int, until_ns: int) -> Dashboard:
        """The dashboard's aggregates over [since_ns, until_ns] (see `tracewire.read.stats`)."""
        return dashboard(self._conn, since_ns, until_ns)

    # -- ids ----------------------------------------------------------------------------------------
    def _run(self, sql: str, args: Sequence[Any]) -> list[Any]:
        return self._conn.execute(sql, list(args)).fetchall()

    def resolve(self, given: str) -> str:
        """The one trace id `given` names: whole, or a unique prefix. IdNotFound, AmbiguousId, ValueError."""
        ids, count = _IDS.resolve(self._run, (), given)
        return raise_unless_one(given, ids, count, lambda t: f"{self.short_id(t)} {self.summary(t)['name']}")

    def short_id(self, trace_id: str) -> str:
        """The shortest prefix (at least 8 characters) no other stored trace id shares."""
        return _IDS.short_id(self._run, (), trace_id)

    # -- events -------------------------------------------------------------------------------------
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

    def start_event(self, trace_id: str, span_id: str) -> dict[str, Any] | None:
        """A span's start event: what a tail showing only its end needs (when it started, its model)."""
        row = self._conn.execute(
            "SELECT body FROM events WHERE trace_id = ? AND span_id = ? AND phase = 'start' LIMIT 1",
            (trace_id, span_id)).fetchone()
        doc = None if row is None else _json.loads(row[0])
        return doc if isinstance(doc, dict) else None

    def last_line(self) -> int:
        """The newest row number (0 when empty): where a tail of new events starts."""
        return int(self._conn.execute("SELECT COALESCE(MAX(seq_no), 0) FROM events").fetchone()[0])

    # -- scores -------------------------------------------------------------------------------------
    def scores(self, *, trace_ids: Sequence[str] | None = None, session_id: str | None = None,
               name: str | None = None, span_id: str | None = None) -> list[dict[str, Any]]:
        """Scores as dicts (tracewire.model.score.FIELDS: id, name, value, label, comment, trace_id,
        span_id, session_id, source, metadata, time), oldest first. `trace_ids`: the scores of these
        traces and of their spans; `session_id`: the session's own scores; `name`, `span_id`: only
        those. No filter: every score in the store."""
        if trace_ids is not None:
            ids = list(trace_ids)
            # a chunk of ids at a time: SQLite bounds the variables of one statement
            found = [r for i in range(0, len(ids), 500)
                     for r in self._scores(ids[i:i + 500], session_id, name, span_id)]
            return sorted(found, key=lambda r: (r["time"], r["id"]))
        return self._scores(None, session_id, name, span_id)

    def _scores(self, trace_ids: list[str] | None, session_id: str | None, name: str | None,
                span_id: str | None) -> list[dict[str, Any]]:
        where: list[str] = []
        args: list[Any] = []
        if trace_ids is not None:
            where.append(f"trace_id IN ({','.join('?' * len(trace_ids))})")
            args += trace_ids
        for col, val in (("session_id", session_id), ("name", name), ("span_id", span_id)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = "SELECT body FROM scores" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY time, id"
        try:
            rows = self._conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:  # a store no score was ever written to has no table
            if "no such table" in str(exc):
                return []
            raise
        return [score_fields(_json.loads(body)) for (body,) in rows]

    def score_lines(self, trace_id: str | None = None) -> list[str]:
        """The stored score records as JSON lines, oldest first (a trace's, with its spans'; else all)."""
        sql = "SELECT body FROM scores" + (" WHERE trace_id = ?" if trace_id else "") + " ORDER BY time, id"
        try:
            return [body for (body,) in self._conn.execute(sql, (trace_id,) if trace_id else ())]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise

    def experiments_db(self) -> str | None:
        """The experiment runs are in this same file, in tables of their own (`tracewire.experiments.store`)."""
        return self.path

    def close(self) -> None:
        self._conn.close()
