"""The local store's read model: one summary row per trace, its tags, models, frameworks and metadata as
facets, and a full-text index of its events' inputs and outputs, in tables of the same SQLite file.

The SDK's writer never touches these tables. A reader (`tracewire ui`, in a background thread and before
each listing) catches up from a watermark: the events past it name the traces to summarize again, each
fold is done outside any write transaction, and only the upserts take SQLite's write lock, briefly (WAL
lets them run beside the writer). A store from an earlier release gains the tables the first time a
reader opens it, and they back-fill from event 1; a change of what they hold bumps VERSION, which
rebuilds them the same way.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from tracewire.model import codec as _json
from tracewire.read.fold import summarize
from tracewire.read.query import TraceQuery
from tracewire.sinks.retention import PRUNED_TABLE
from tracewire.sinks.sqlite_table import connect

VERSION = 1  # of what the tables below hold: a store indexed by another version is re-indexed from scratch
SUMMARIES = "trace_summaries"
TABLES_SQL = """
CREATE TABLE IF NOT EXISTS read_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS trace_summaries (
    trace_id TEXT NOT NULL UNIQUE,
    start_ns INTEGER,
    end_ns INTEGER,
    duration_ms REAL,
    name TEXT NOT NULL,
    name_fold TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    failed TEXT,
    errors INTEGER NOT NULL,
    session_id TEXT,
    user_id TEXT,
    tags TEXT NOT NULL,
    models TEXT NOT NULL,
    frameworks TEXT NOT NULL,
    llm_calls INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    spans INTEGER NOT NULL,
    events INTEGER NOT NULL,
    problems INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS trace_summaries_start ON trace_summaries(start_ns, trace_id);
CREATE INDEX IF NOT EXISTS trace_summaries_status ON trace_summaries(status, start_ns);
CREATE INDEX IF NOT EXISTS trace_summaries_session ON trace_summaries(session_id, start_ns);
CREATE INDEX IF NOT EXISTS trace_summaries_user ON trace_summaries(user_id, start_ns);
CREATE INDEX IF NOT EXISTS trace_summaries_latency ON trace_summaries(duration_ms, start_ns, trace_id);
CREATE INDEX IF NOT EXISTS trace_summaries_tokens ON trace_summaries(tokens, start_ns, trace_id);
CREATE INDEX IF NOT EXISTS trace_summaries_cost ON trace_summaries(cost_usd, start_ns, trace_id);
CREATE TABLE IF NOT EXISTS trace_facets (
    trace_id TEXT NOT NULL,
    facet TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (trace_id, facet, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trace_facets_value ON trace_facets(facet, value);
CREATE TABLE IF NOT EXISTS facet_values (facet TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (facet, value))
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trace_summaries_name ON trace_summaries(name_fold, start_ns);
CREATE VIRTUAL TABLE IF NOT EXISTS trace_text USING fts5(text, tokenize = 'unicode61 remove_diacritics 0');
"""
# trace_text holds one document per trace (rowid = its summary's rowid): the distinct strings of its
# events' inputs and outputs, case-folded, one per line; FTS5 finds candidates, `instr` keeps the ones
# that hold the phrase as typed (no phrase then spans two strings, or differs in punctuation).
_DROP_SQL = ("DROP TABLE IF EXISTS trace_summaries; DROP TABLE IF EXISTS trace_facets; DROP TABLE IF EXISTS facet_values; "
             "DROP TABLE IF EXISTS trace_text; DELETE FROM read_state;")
SORTS = {"start": "start_ns", "latency": "duration_ms", "tokens": "tokens", "cost": "cost_usd"}
BATCH_EVENTS = 500  # events past the watermark per write transaction: the writer waits at most for one
MAX_TEXT = 1 << 20  # characters of a trace's searchable text; past it the rest is not searchable
MAX_META = 64  # metadata pairs of a trace kept as facets
MAX_FACET_VALUE = 200
MAX_VOCABULARY = 200  # distinct values a substring filter (name, model) is turned into before it tests each row
_JSON_COLUMNS = ("tags", "models", "frameworks")


def searchable(text: str) -> str:
    """Text as the index holds it and a search phrase is matched: case-folded, runs of space as one."""
    return " ".join(text.casefold().split())  # the same whitespace as \s+, several times faster


def _strings(value: Any, out: dict[str, None]) -> None:
    """The string leaves of a JSON value (not its keys), in order, each once; iterative (any depth)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            s = searchable(v)
            if s:
                out.setdefault(s, None)
        elif isinstance(v, dict):
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, list):
            stack.extend(reversed(v))


def document(events: Iterable[Mapping[str, Any]]) -> str:
    """A trace's searchable text: the distinct strings of its events' inputs and outputs, one per line."""
    seen: dict[str, None] = {}
    for e in events:
        for key in ("input", "output"):
            if key in e:
                _strings(e[key], seen)
    return "\n".join(seen)[:MAX_TEXT]


def _scalar(v: Any) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (str, int, float)):
        return str(v)[:MAX_FACET_VALUE]
    return None


def facets(summary: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[tuple[str, str]]]:
    """(frameworks, [(facet, value)]) of a trace: its tags, models, frameworks and `key=value` metadata
    (merged over its events in time order, later values over earlier)."""
    frameworks: dict[str, None] = {}
    meta: dict[str, str] = {}
    for e in sorted(events, key=lambda e: (e.get("time") or 0, e.get("seq") or 0)):
        fw = e.get("framework")
        if isinstance(fw, str) and fw:
            frameworks.setdefault(fw, None)
        md = e.get("metadata")
        if isinstance(md, dict):
            for k, v in md.items():
                s = _scalar(v)
                if isinstance(k, str) and s is not None and (k in meta or len(meta) < MAX_META):
                    meta[k] = s
    pairs = {("tag", str(t)[:MAX_FACET_VALUE]) for t in summary["tags"]}
    pairs |= {("model", str(m)[:MAX_FACET_VALUE]) for m in summary["models"]}
    pairs |= {("framework", f[:MAX_FACET_VALUE]) for f in frameworks}
    pairs |= {("meta", f"{k}={v}"[:MAX_FACET_VALUE]) for k, v in meta.items()}
    return list(frameworks), sorted(pairs)


def _parse(body: str) -> dict[str, Any] | None:
    try:
        doc = _json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


class TraceIndex:
    """Keeps the read model of one store file current. Thread-safe; several processes may run one each
    on the same file (a transaction commits only from the watermark it started at)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect(self.path)
            ensure_tables(conn)
            self._conn = conn
        return self._conn

    def catch_up(self, max_events: int = BATCH_EVENTS, deadline_s: float | None = None,
                 wait_s: float | None = None) -> int | None:
        """Index up to `max_events` events past the watermark (in transactions of BATCH_EVENTS), or until
        `deadline_s` seconds have passed; returns how many events are still to index. Returns None when
        another thread of this process is indexing and did not finish within `wait_s` seconds (it will
        get there); None waits as long as it takes."""
        t_end = None if deadline_s is None else time.monotonic() + deadline_s
        if not self._lock.acquire(timeout=-1 if wait_s is None else wait_s):
            return None
        try:
            conn = self._open()
            done = 0
            while True:
                n = self._batch(conn, min(BATCH_EVENTS, max_events - done))
                done += n
                if n == 0 or done >= max_events or (t_end is not None and time.monotonic() >= t_end):
                    break
            forget_pruned(conn)  # after indexing: a trace the size cap deleted meanwhile stays deleted
            return pending(conn)
        finally:
            self._lock.release()

    def lag(self) -> int:
        """Events still to index (creating the tables first in a store that has none)."""
        with self._lock:
            return pending(self._open())

    def _batch(self, conn: sqlite3.Connection, limit: int) -> int:
        """One step: fold the traces of the next `limit` events, then write them in one short transaction."""
        if limit <= 0:
            return 0
        mark = watermark(conn)
        rows = conn.execute("SELECT seq_no, trace_id FROM events WHERE seq_no > ? ORDER BY seq_no LIMIT ?",
                            (mark, limit)).fetchall()
        if not rows:
            return 0
        trace_ids = list(dict.fromkeys(t for _, t in rows if t is not None))
        built = [self._build(conn, t) for t in trace_ids]
        conn.execute("BEGIN IMMEDIATE")
        try:
            if watermark(conn) != mark:  # another reader indexed these meanwhile
                conn.execute("ROLLBACK")
                return len(rows)
            for row in built:
                if row is not None:
                    _store(conn, *row)
            conn.execute("INSERT OR REPLACE INTO read_state (name, value) VALUES ('watermark', ?)", (rows[-1][0],))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(rows)

    @staticmethod
    def _build(conn: sqlite3.Connection, trace_id: str) -> tuple[dict[str, Any], list[tuple[str, str]], str] | None:
        bodies = conn.execute("SELECT body FROM events WHERE trace_id = ? ORDER BY time, seq_no", (trace_id,)).fetchall()
        problems: list[dict[str, Any]] = []
        events = []
        for (body,) in bodies:
            doc = _parse(body)
            if doc is None:
                problems.append({"event_id": None, "reason": "unreadable_body"})
            else:
                events.append(doc)
        if not bodies:
            return None
        row = asdict(summarize(trace_id, events, problems))
        row["frameworks"], pairs = facets(row, events)
        row["events"] = len(bodies)
        return row, pairs, document(events)

    # -- running beside a viewer ---------------------------------------------------------------------
    def start(self, idle_s: float = 0.5) -> None:
        """Catch up in a daemon thread, then keep up (polling every `idle_s` seconds) until `stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(idle_s,), name="tracewire-index", daemon=True)
            self._thread.start()

    def _run(self, idle_s: float) -> None:
        while not self._stop.is_set():
            left = 0
            if os.path.exists(self.path):
                try:
                    left = self.catch_up(BATCH_EVENTS) or 0
                except (sqlite3.Error, OSError):  # busy, or not ours to write: the listing reads the events
                    left = 0
            if not left:
                self._stop.wait(idle_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def ensure_tables(conn: sqlite3.Connection) -> None:
    """Create the read model's tables in a store that lacks them (or holds another VERSION's: rebuilt)."""
    conn.execute("CREATE TABLE IF NOT EXISTS read_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    if _version(conn) == VERSION and has_tables(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _version(conn) != VERSION or not has_tables(conn):  # another process may have just made them
            for stmt in filter(str.strip, (_DROP_SQL + TABLES_SQL).split(";")):
                conn.execute(stmt)
            conn.execute("INSERT INTO read_state (name, value) VALUES ('version', ?), ('watermark', 0)", (VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _version(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT value FROM read_state WHERE name = 'version'").fetchone()
    return None if row is None else int(row[0])


def has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'trace_text'").fetchone() is not None


def watermark(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM read_state WHERE name = 'watermark'").fetchone()
    return int(row[0]) if row else 0


def pending(conn: sqlite3.Connection) -> int:
    """Events the read model has not taken in yet (an index range count: cheap)."""
    return int(conn.execute("SELECT COUNT(*) FROM events WHERE seq_no > ?", (watermark(conn),)).fetchone()[0])


def lag(conn: sqlite3.Connection) -> int | None:
    """Events the read model has not taken in yet, or None when the store has none (of this VERSION)."""
    try:
        if _version(conn) != VERSION:
            return None
    except sqlite3.OperationalError:  # no read_state table: never indexed
        return None
    return pending(conn)


def forget(conn: sqlite3.Connection, trace_ids: Sequence[str]) -> None:
    """Delete the read-model rows of these traces (summary, facets, text), in the caller's transaction, when
    pruning deletes their events. The watermark stays: it counts events by seq_no, which deleting leaves alone."""
    if not trace_ids or not has_tables(conn):
        return
    marks = ", ".join("?" * len(trace_ids))
    conn.execute(f"DELETE FROM trace_text WHERE rowid IN (SELECT rowid FROM trace_summaries WHERE trace_id IN ({marks}))",
                 list(trace_ids))
    conn.execute(f"DELETE FROM trace_facets WHERE trace_id IN ({marks})", list(trace_ids))
    conn.execute(f"DELETE FROM trace_summaries WHERE trace_id IN ({marks})", list(trace_ids))


def forget_pruned(conn: sqlite3.Connection, batch: int = 200) -> int:
    """Forget the traces the `sqlite` sink deleted under `max_store_bytes` (it cannot reach these tables and
    leaves their ids in retention.PRUNED_TABLE), a short transaction per `batch`; returns how many."""
    done = 0
    while conn.execute(f"SELECT 1 FROM sqlite_master WHERE name = '{PRUNED_TABLE}'").fetchone() is not None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = [t for (t,) in conn.execute(f"SELECT trace_id FROM {PRUNED_TABLE} LIMIT ?", (batch,))]
            forget(conn, ids)
            conn.executemany(f"DELETE FROM {PRUNED_TABLE} WHERE trace_id = ?", [(t,) for t in ids])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        done += len(ids)
        if len(ids) < batch:
            break
    return done


_COLUMNS = ("trace_id", "start_ns", "end_ns", "duration_ms", "name", "name_fold", "kind", "status", "failed", "errors",
            "session_id", "user_id", "tags", "models", "frameworks", "llm_calls", "input_tokens", "output_tokens",
            "tokens", "cost_usd", "spans", "events", "problems")
_UPSERT = (f"INSERT INTO trace_summaries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
           "ON CONFLICT (trace_id) DO UPDATE SET "
           + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:]) + " RETURNING rowid")


def _store(conn: sqlite3.Connection, row: dict[str, Any], pairs: list[tuple[str, str]], text: str) -> None:
    end = None if row["start_ns"] is None or row["duration_ms"] is None else row["start_ns"] + int(row["duration_ms"] * 1e6)
    values = {**row, "end_ns": end, "name_fold": row["name"].casefold(),
              "tokens": row["input_tokens"] + row["output_tokens"],
              **{c: _json.dumps_strict(row[c]) for c in _JSON_COLUMNS}}
    rowid = conn.execute(_UPSERT, [values[c] for c in _COLUMNS]).fetchone()[0]
    conn.execute("DELETE FROM trace_facets WHERE trace_id = ?", (row["trace_id"],))
    conn.executemany("INSERT INTO trace_facets (trace_id, facet, value) VALUES (?, ?, ?)",
                     [(row["trace_id"], f, v) for f, v in pairs])
    # the vocabularies substring filters are resolved against (a value no longer used matches nothing)
    conn.executemany("INSERT OR IGNORE INTO facet_values (facet, value) VALUES (?, ?)",
                     [("model", v) for f, v in pairs if f == "model"] + [("name", values["name_fold"])])
    conn.execute("DELETE FROM trace_text WHERE rowid = ?", (rowid,))
    if text:
        conn.execute("INSERT INTO trace_text (rowid, text) VALUES (?, ?)", (rowid, text))


# -- reading it -------------------------------------------------------------------------------------------
def fts_phrase(needle: str) -> str | None:
    """An FTS5 phrase query for the text, or None when it has no word characters to look up."""
    return f'"{needle.replace(chr(34), chr(34) * 2)}"' if any(c.isalnum() for c in needle) else None


@dataclass
class _Cond:
    """A selective condition of a listing, in the two forms the planner is given: `drive` lets SQLite
    start from the condition's own index (best when few traces match), `test` only checks each row of
    an ordered index scan (best when many match: the page fills after a short scan). `count` is how
    many traces match, from an index."""

    count: int
    drive: str
    test: str
    args: list[Any]


def _facet(conn: sqlite3.Connection, facet: str, values: Sequence[str]) -> _Cond:
    marks = ", ".join("?" * len(values))
    count = conn.execute(f"SELECT COUNT(*) FROM trace_facets WHERE facet = ? AND value IN ({marks})",
                         [facet, *values]).fetchone()[0]
    return _Cond(count, f"s.trace_id IN (SELECT trace_id FROM trace_facets WHERE facet = ? AND value IN ({marks}))",
                 f"EXISTS (SELECT 1 FROM trace_facets f WHERE f.trace_id = s.trace_id AND f.facet = ? "
                 f"AND f.value IN ({marks}))", [facet, *values])


def _column(conn: sqlite3.Connection, column: str, values: Sequence[str]) -> _Cond:
    marks = ", ".join("?" * len(values))
    count = conn.execute(f"SELECT COUNT(*) FROM trace_summaries WHERE {column} IN ({marks})", list(values)).fetchone()[0]
    return _Cond(count, f"s.{column} IN ({marks})", f"+s.{column} IN ({marks})", list(values))


def _vocabulary(conn: sqlite3.Connection, facet: str, needle: str, fold: str = "") -> list[str] | None:
    """The distinct values of a facet that contain `needle` (a substring filter made exact), or None when
    there are too many to list (the filter then tests every row)."""
    found = [r[0] for r in conn.execute(
        f"SELECT value FROM facet_values WHERE facet = ? AND instr({fold}(value), ?) > 0 LIMIT ?",
        (facet, needle, MAX_VOCABULARY + 1))]
    return None if len(found) > MAX_VOCABULARY else found


def _conditions(conn: sqlite3.Connection, q: TraceQuery) -> tuple[list[_Cond], list[str], list[Any]] | None:
    """(selective conditions, other conditions, their parameters), or None when nothing can match."""
    conds: list[_Cond] = []
    where: list[str] = []
    args: list[Any] = []
    for col, val in (("session_id", q.session_id), ("user_id", q.user_id), ("status", q.status)):
        if val:
            conds.append(_column(conn, col, [val]))
    for tag in q.tags:
        conds.append(_facet(conn, "tag", [tag]))
    if q.framework:
        conds.append(_facet(conn, "framework", [q.framework]))
    for key, value in q.meta:
        conds.append(_facet(conn, "meta", [f"{key}={value}"[:MAX_FACET_VALUE]]))
    if q.model:
        models = _vocabulary(conn, "model", q.model.lower(), "lower")
        if models == []:
            return None
        if models is None:
            where.append("s.trace_id IN (SELECT trace_id FROM trace_facets WHERE facet = 'model' "
                         "AND instr(lower(value), ?) > 0)")
            args.append(q.model.lower())
        else:
            conds.append(_facet(conn, "model", models))
    if q.name:
        names = _vocabulary(conn, "name", q.name.casefold())
        if names == []:
            return None
        if names is None:
            where.append("instr(s.name_fold, ?) > 0")
            args.append(q.name.casefold())
        else:
            conds.append(_column(conn, "name_fold", names))
    if q.text:
        needle = searchable(q.text)
        phrase = fts_phrase(needle)
        if phrase is not None:
            count = conn.execute("SELECT COUNT(*) FROM trace_text WHERE trace_text MATCH ?", (phrase,)).fetchone()[0]
            sub = "s.rowid IN (SELECT rowid FROM trace_text WHERE trace_text MATCH ?)"
            conds.append(_Cond(count, sub, "+" + sub, [phrase]))
        where.append("instr((SELECT t.text FROM trace_text t WHERE t.rowid = s.rowid), ?) > 0")
        args.append(needle)
    if q.since is not None:
        where.append("s.start_ns >= ?")
        args.append(q.since)
    if q.until is not None:
        where.append("s.start_ns <= ?")
        args.append(q.until)
    return conds, where, args


def _plan(conds: list[_Cond], total: int, need: int) -> _Cond | None:
    """The condition to start from, or None to scan the order's index and test each row. Scanning reads
    about need / (the product of the conditions' shares) rows (taking them as independent); starting
    from the rarest condition reads its matches and sorts them."""
    if not conds or total <= 0:
        return None
    rarest = min(conds, key=lambda c: c.count)
    share = 1.0
    for c in conds:
        share *= c.count / total
    scan_rows = total if share <= 0 else min(total, need / share)
    return rarest if rarest.count < scan_rows else None


def page(conn: sqlite3.Connection, q: TraceQuery, limit: int, offset: int,
         after: tuple[int, str] | None = None) -> list[dict[str, Any]]:
    """One page of the summaries `q` asks for, in its order; `after` (start, trace id) keeps only the
    traces that started after it."""
    if limit <= 0:
        return []
    found = _conditions(conn, q)
    if found is None:
        return []
    conds, where, args = found
    if any(c.count == 0 for c in conds):
        return []
    total = conn.execute("SELECT COUNT(*) FROM trace_summaries").fetchone()[0]
    drive = _plan(conds, total, offset + limit)
    terms: list[str] = []
    params: list[Any] = []
    for c in conds:
        terms.append(c.drive if c is drive else c.test)
        params += c.args
    if after is not None:
        terms.append("(s.start_ns > ? OR (s.start_ns = ? AND s.trace_id > ?))")
        params += [after[0], after[0], after[1]]
    column = SORTS[q.sort]
    way = "DESC" if q.descending else "ASC"
    order = f"s.{column} {way}" + ("" if column == "start_ns" else f", s.start_ns {way}") + f", s.trace_id {way}"
    terms += where
    sql = (f"SELECT {', '.join('s.' + c for c in _COLUMNS)} FROM {SUMMARIES} s"
           + (f" WHERE {' AND '.join(terms)}" if terms else "") + f" ORDER BY {order} LIMIT ? OFFSET ?")
    return [row_summary(r) for r in conn.execute(sql, [*params, *args, limit, offset])]


def row_summary(row: Sequence[Any]) -> dict[str, Any]:
    """A selected row as the listing's summary (TraceSummary's fields, plus frameworks and events)."""
    d = dict(zip(_COLUMNS, row, strict=True))
    for c in _JSON_COLUMNS:
        d[c] = _json.loads(d[c])
    for c in ("name_fold", "end_ns", "tokens"):
        del d[c]
    return d


def newer(conn: sqlite3.Connection, q: TraceQuery, after_ns: int, after_id: str, limit: int) -> list[dict[str, Any]]:
    """Summaries matching `q` that started after (after_ns, after_id), newest first: what a live list adds."""
    return page(conn, replace(q, sort="start", descending=True), limit, 0, (after_ns, after_id))
