"""What the SQLite and PostgreSQL stores run alike: schema migrations, trace listing, loss reports
and API keys. The statements are written once with `?` for a parameter and sent with the backend's
placeholder (`PARAM`: "?" for sqlite3, "%s" for psycopg); each backend supplies how a read and a
write transaction run, and keeps what it does differently (ingestion, bulk reads, health checks).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

import orjson

from tracewire.model.score import row as score_fields
from tracewire.read.index import MAX_FACET_VALUE, document, facets, searchable
from tracewire.read.query import IdLookup, TraceQuery
from tracewire.server.store import (
    MAX_SCORES_READ,
    KeyRecord,
    ScoreRow,
    TraceFilter,
    key_from_row,
    parse_bodies,
)

T = TypeVar("T")
# A migration: SQL statements separated by ";", or a function run on the connection (what SQL alone
# cannot say, such as creating a partition per day found in the data).
Migration = str | Callable[[Any], None]

# Migration 1, the tables both backends hold; the column types and the events key come from the dialect.
_SCHEMA_V1 = """
    CREATE TABLE events (
        seq {seq},
        project {text} NOT NULL,
        id {text} NOT NULL,
        trace_id {text} NOT NULL,
        time {int} NOT NULL,
        body {text} NOT NULL{events_key}
    );{events_index}
    CREATE INDEX events_trace ON events (project, trace_id);
    CREATE TABLE traces (
        project {text} NOT NULL,
        trace_id {text} NOT NULL,
        start_ns {int} NOT NULL,
        end_ns {int} NOT NULL,
        session_id {text},
        user_id {text},
        events {int} NOT NULL DEFAULT 0,
        PRIMARY KEY (project, trace_id)
    );
    CREATE INDEX traces_start ON traces (project, start_ns);
    CREATE INDEX traces_session ON traces (project, session_id);
    CREATE TABLE api_keys (
        key_id {text} PRIMARY KEY,
        project {text} NOT NULL,
        key_hash {text} NOT NULL,
        signing_secret {text} NOT NULL,
        created_at {real} NOT NULL,
        revoked_at {real}
    );
    CREATE TABLE client_loss (
        key_id {text} NOT NULL,
        project {text} NOT NULL,
        reason {text} NOT NULL,
        count {int} NOT NULL,
        PRIMARY KEY (key_id, reason)
    );
"""


# Migration 4, search: `event_text` (the backend's full-text table, `text_table`) holds the searchable
# strings of a trace's events (read.index.document), one a line, a row per trace and ingest batch (see
# search_rows; on PostgreSQL they later gain a time: tracewire.server.partitions); `trace_facets` their frameworks and `key=value` metadata. Both are filled in the ingest
# transaction. Events stored before this migration (seq <= upto)
# are indexed afterwards by a background back-fill, `done` being how far it got.
_SEARCH_SCHEMA = """{text_table};
    CREATE TABLE trace_facets (
        project {text} NOT NULL,
        trace_id {text} NOT NULL,
        facet {text} NOT NULL,
        value {text} NOT NULL,
        PRIMARY KEY (project, facet, value, trace_id)
    );
    CREATE TABLE search_backfill (upto {int} NOT NULL, done {int} NOT NULL);
    INSERT INTO search_backfill (upto, done) SELECT coalesce(max(seq), 0), 0 FROM events
"""


def migrations(*, seq: str, text: str, integer: str, real: str, text_table: str, retention: Migration,
               events_key: str = "", events_index: str = "") -> tuple[Migration, ...]:
    """The schema's migrations, in order, in a backend's types; (project, id) is unique either as the
    events table's key (`events_key`) or by an index of its own (`events_index`); `text_table` creates
    the backend's full-text table; `retention` is what the backend's retention needs (migration 5).
    Never edit an applied migration: add one."""
    return (
        _SCHEMA_V1.format(seq=seq, text=text, int=integer, real=real, events_key=events_key,
                          events_index=events_index),
        # Key scopes; keys that existed before get 'ingest' only (see store.LEGACY_SCOPES).
        f"ALTER TABLE api_keys ADD COLUMN scopes {text} NOT NULL DEFAULT 'ingest'",
        scores_migration(text=text, integer=integer),
        _SEARCH_SCHEMA.format(text_table=text_table, text=text, int=integer),
        retention,
        # Shared rate limits: a token bucket per key that every collector process draws from (take_token).
        f"CREATE TABLE rate_buckets (key_id {text} PRIMARY KEY, tokens {real} NOT NULL, refilled_at {real} NOT NULL,"
        f" rate {real} NOT NULL, granted {integer} NOT NULL)",
    )


# -- search ---------------------------------------------------------------------------------------------
# Characters of one indexed text: a tsvector must stay under 1 MB whatever the script. A longer string
# goes in as pieces that overlap by the longest phrase, so a phrase is always whole in one of them.
MAX_TEXT_CHUNK = 1 << 16
MAX_PHRASE = 1000  # characters of a search phrase (the read API's bound on `q`)
MAX_STRING = 1 << 20  # characters of one string that are searchable (as the local read model's trace text)
BACKFILL_BATCH = 500  # events a back-fill transaction indexes: ingest waits at most for one
_NO_FACETS = {"tags": (), "models": ()}  # facets() of one event: only its framework and metadata
_INSERT_FACET = ("INSERT INTO trace_facets (project, trace_id, facet, value) VALUES (?,?,?,?) "
                 "ON CONFLICT DO NOTHING")
_FACET_MATCH = "t.trace_id IN (SELECT trace_id FROM trace_facets WHERE project = ? AND facet = ? AND value = ?)"


# What indexes a batch of events: (project, trace id, text, time) rows and (project, trace id, facet, value)
# rows; a text's time is its trace's earliest event of the batch (the day partition it goes in).
SearchRows = tuple[list[tuple[str, str, str, int]], list[tuple[str, str, str, str]]]


def search_rows(project: str, rows: Iterable[tuple[str, str, int]]) -> SearchRows:
    """The (project, trace id, text, time) and (project, trace id, facet, value) rows that index these
    (trace id, body, time) events; facets in key order (a fixed lock order). A trace's distinct strings of
    these events go in as few texts as fit MAX_TEXT_CHUNK, one string (or piece) a line (so no phrase
    spans two strings, and a prompt repeated by every call of a conversation is indexed once a batch).
    Unreadable bodies index nothing."""
    lines: dict[str, dict[str, None]] = {}
    first: dict[str, int] = {}
    found: set[tuple[str, str, str, str]] = set()
    for trace_id, body, time in rows:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict):
            continue
        if "input" in doc or "output" in doc:
            # NUL cannot be stored in PostgreSQL text; no phrase holds one (the API refuses it).
            text = document([doc]).replace("\x00", " ")
            seen = lines.setdefault(trace_id, {})
            first[trace_id] = min(time, first.get(trace_id, time))
            for line in text.split("\n"):
                line = line[:MAX_STRING]
                step = MAX_TEXT_CHUNK - MAX_PHRASE
                for i in range(0, max(len(line) - MAX_PHRASE, 1), step):
                    seen.setdefault(line[i:i + MAX_TEXT_CHUNK], None)
        if "framework" in doc or "metadata" in doc:
            found.update((project, trace_id, f, v.replace("\x00", " ")) for f, v in facets(_NO_FACETS, [doc])[1])
    texts: list[tuple[str, str, str, int]] = []
    for trace_id, seen in lines.items():
        chunk: list[str] = []
        size = 0
        for line in seen:
            if chunk and size + len(line) > MAX_TEXT_CHUNK:
                texts.append((project, trace_id, "\n".join(chunk), first[trace_id]))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line) + 1
        if chunk and size > 1:
            texts.append((project, trace_id, "\n".join(chunk), first[trace_id]))
    return texts, sorted(found)


_KEY_COLUMNS = "key_id, project, key_hash, signing_secret, created_at, revoked_at, scopes"
# Listing filters: (column, operator, TraceFilter field).
_IDS = IdLookup("traces", "project = ? AND ")  # the same look-ups as the local store's, on the trace index
_TRACE_FILTERS = (("start_ns", ">=", "start"), ("start_ns", "<=", "end"), ("session_id", "=", "session_id"),
                  ("user_id", "=", "user_id"))
SQL_SORTS = ("start", "latency")  # the orders the trace index has columns for; the others are folded
_NEWEST = TraceQuery()
SORT_SCAN = 5_000  # the matching traces (the newest) that a tokens or cost order sorts, folded
FOLDED_SORTS: dict[str, Callable[[dict[str, Any]], tuple[Any, ...]]] = {
    "tokens": lambda s: (s["input_tokens"] + s["output_tokens"], s.get("start_ns") or 0, s["trace_id"]),
    "cost": lambda s: (s["cost_usd"], s.get("start_ns") or 0, s["trace_id"]),
}

# -- rate limits -----------------------------------------------------------------------------------------
# One statement takes a token: a new key's bucket starts full (burst) less this request's token; an
# existing one refills at `rate` per second of the database's clock (`{now}`: one clock for every
# replica, whatever their hosts' clocks say) up to the burst, then gives a token if it holds one.
# The row lock of the upsert orders concurrent requests, so N processes grant what one would.
# `excluded` carries this request's clock, rate and burst (tokens = burst - 1) into the update.
_REFILL = ("CASE WHEN excluded.refilled_at <= rate_buckets.refilled_at THEN rate_buckets.tokens"
           " WHEN rate_buckets.tokens + (excluded.refilled_at - rate_buckets.refilled_at) * excluded.rate"
           " >= excluded.tokens + 1 THEN excluded.tokens + 1"
           " ELSE rate_buckets.tokens + (excluded.refilled_at - rate_buckets.refilled_at) * excluded.rate END")
_TAKE_TOKEN = (
    "INSERT INTO rate_buckets (key_id, tokens, refilled_at, rate, granted) VALUES (?, ?, {now}, ?, 1)"
    f" ON CONFLICT (key_id) DO UPDATE SET tokens = CASE WHEN {_REFILL} >= 1 THEN {_REFILL} - 1 ELSE {_REFILL} END,"
    f" granted = CASE WHEN {_REFILL} >= 1 THEN 1 ELSE 0 END,"
    " refilled_at = CASE WHEN excluded.refilled_at > rate_buckets.refilled_at THEN excluded.refilled_at"
    " ELSE rate_buckets.refilled_at END, rate = excluded.rate"
    " RETURNING granted, tokens")


class SQLStore:
    """The shared half of a store. `conn` below is a sqlite3 or a psycopg connection: both have an
    execute() that returns a cursor, and cursor()."""

    PARAM: ClassVar[str] = "?"
    MIGRATIONS: ClassVar[tuple[Migration, ...]] = ()
    TEXT_TIME: ClassVar[bool] = False  # whether event_text has a time column (its day partition)
    CLOCK: ClassVar[str] = ""  # SQL for the database's clock in unix seconds (a float)

    # -- supplied by the backend ----------------------------------------------------------------
    def _read(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def _write(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def _sql(self, statement: str) -> str:
        return statement if self.PARAM == "?" else statement.replace("?", self.PARAM)

    # -- schema ---------------------------------------------------------------------------------
    def _apply_migrations(self, conn: Any) -> None:
        """Run the migrations this database has not had yet (the caller holds a write transaction)."""
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for version, script in enumerate(self.MIGRATIONS, start=1):
            if version in done:
                continue
            if callable(script):
                script(conn)
            else:
                for stmt in filter(str.strip, script.split(";")):  # sqlite3 runs one statement per call
                    conn.execute(stmt)
            conn.execute(self._sql("INSERT INTO schema_migrations (version) VALUES (?)"), (version,))

    # -- events ---------------------------------------------------------------------------------
    def trace_ids(self, project: str, flt: TraceFilter, limit: int, offset: int) -> list[str]:
        return self.query_trace_ids(project, flt, _NEWEST, limit, offset)

    def query_trace_ids(self, project: str, flt: TraceFilter, query: TraceQuery, limit: int,
                        offset: int) -> list[str]:
        """Trace ids matching `flt` and the query's phrase, framework and metadata, in the query's order
        when it is start or latency (the time from a trace's first event to its last), else newest first.
        Ties go by start, then trace id, the same way."""
        sql, args = self.trace_query(project, flt, query, limit, offset)
        return self._read(lambda c: [r[0] for r in c.execute(sql, args)])

    def trace_query(self, project: str, flt: TraceFilter, query: TraceQuery, limit: int,
                    offset: int) -> tuple[str, list[Any]]:
        """The statement and parameters query_trace_ids runs (the backend's placeholders)."""
        where: list[str] = ["t.project = ?"]
        args: list[Any] = [project]
        for col, op, name in _TRACE_FILTERS:
            val = getattr(flt, name)
            if val is not None:
                where.append(f"t.{col} {op} ?")
                args.append(val)
        needle = searchable(query.text or "")
        if needle:
            cond, more = self._text_match(needle)
            where.append(f"t.trace_id IN (SELECT trace_id FROM event_text WHERE {cond})")
            args += [*more, project, needle]
        for facet, value in ([("framework", query.framework)] if query.framework else []) + [
                ("meta", f"{k}={v}") for k, v in query.meta]:
            where.append(_FACET_MATCH)
            args += [project, facet, value[:MAX_FACET_VALUE]]
        way = "DESC" if query.descending or query.sort not in SQL_SORTS else "ASC"
        first = "" if query.sort != "latency" else f"(t.end_ns - t.start_ns) {way}, "
        sql = self._sql(f"SELECT t.trace_id FROM traces t WHERE {' AND '.join(where)}"
                        f" ORDER BY {first}t.start_ns {way}, t.trace_id {way} LIMIT ? OFFSET ?")
        return sql, [*args, limit, offset]

    def _text_match(self, needle: str) -> tuple[str, list[Any]]:
        """The backend's condition on event_text for a phrase, ending with "project = ? AND" the exact
        substring check (whose two parameters the caller adds), and its own leading parameters."""
        raise NotImplementedError

    def _index_events(self, conn: Any, rows: SearchRows) -> None:
        """Add `search_rows` of stored events to the search index, in the caller's write transaction (the
        ingest paths compute them before taking their locks)."""
        texts, found = rows
        with contextlib.closing(conn.cursor()) as cur:
            if texts and self.TEXT_TIME:
                cur.executemany(self._sql("INSERT INTO event_text (project, trace_id, text, time) VALUES (?,?,?,?)"),
                                texts)
            elif texts:
                cur.executemany(self._sql("INSERT INTO event_text (project, trace_id, text) VALUES (?,?,?)"),
                                [t[:3] for t in texts])
            if found:
                cur.executemany(self._sql(_INSERT_FACET), found)

    # -- the back-fill of events stored before search existed ---------------------------------------------
    def search_backfill_pending(self) -> bool:
        row = self._read(lambda c: c.execute("SELECT upto, done FROM search_backfill").fetchone())
        return bool(row and row[1] < row[0])

    def backfill_search(self, batch: int = BACKFILL_BATCH) -> bool:
        """Index the next `batch` events stored before migration 4; whether any are left after it."""
        select = self._sql("SELECT seq, project, trace_id, body, time FROM events WHERE seq > ? AND seq <= ? "
                           "ORDER BY seq LIMIT ?")
        update = self._sql("UPDATE search_backfill SET done = ?")

        def tx(conn: Any) -> bool:
            # PostgreSQL replicas back-fill in turn (the row lock); SQLite's writers are serial already
            lock = " FOR UPDATE" if self.PARAM == "%s" else ""
            upto, done = conn.execute("SELECT upto, done FROM search_backfill" + lock).fetchone()
            if done >= upto:
                return False
            rows = conn.execute(select, (done, upto, batch)).fetchall()
            by_project: dict[str, list[tuple[str, str, int]]] = {}
            for _, project, trace_id, body, time in rows:
                by_project.setdefault(project, []).append((trace_id, body, time))
            for project, events in sorted(by_project.items()):
                self._index_events(conn, search_rows(project, events))
            done = rows[-1][0] if len(rows) == batch else upto
            conn.execute(update, (done,))
            return bool(done < upto)

        return bool(self._write(tx))

    def _start_backfill(self) -> None:
        """Back-fill on a thread of its own when this database holds events stored before search existed."""
        self._backfill_stop = threading.Event()
        if not self.search_backfill_pending():
            return

        def loop() -> None:
            while not self._backfill_stop.is_set():
                try:
                    if not self.backfill_search():
                        return
                except Exception:  # busy or gone: try again shortly, until the store closes
                    self._backfill_stop.wait(1.0)

        self._backfill_thread = threading.Thread(target=loop, daemon=True, name="tracewire-search-backfill")
        self._backfill_thread.start()

    def _stop_backfill(self) -> None:
        stop = getattr(self, "_backfill_stop", None)
        if stop is not None:
            stop.set()
        thread = getattr(self, "_backfill_thread", None)
        if thread is not None:
            thread.join(10)

    def _rows(self, sql: str, args: Sequence[Any]) -> list[Any]:
        statement = self._sql(sql)
        return self._read(lambda c: c.execute(statement, tuple(args)).fetchall())

    def match_trace_ids(self, project: str, given: str) -> tuple[list[str], int]:
        """The trace `given` names whole, else the ids it is a prefix of (a few) and their count."""
        return _IDS.resolve(self._rows, (project,), given)

    def short_trace_id(self, project: str, trace_id: str) -> str:
        return _IDS.short_id(self._rows, (project,), trace_id)

    def session_ids(self, project: str, user_id: str | None, start: int | None, end: int | None,
                    limit: int) -> list[str]:
        """Sessions most recently active first; `start`/`end` bound their activity (last and first trace)."""
        where = "project = ? AND session_id IS NOT NULL"
        args: list[Any] = [project]
        if user_id is not None:
            where += " AND user_id = ?"
            args.append(user_id)
        having = [c for c, v in (("MAX(end_ns) >= ?", start), ("MIN(start_ns) <= ?", end)) if v is not None]
        args += [v for v in (start, end) if v is not None]
        sql = (f"SELECT session_id FROM traces WHERE {where} GROUP BY session_id"
               + (f" HAVING {' AND '.join(having)}" if having else "") + " ORDER BY MAX(end_ns) DESC LIMIT ?")
        return [r[0] for r in self._rows(sql, [*args, limit])]

    def trace_version(self, project: str, trace_id: str) -> tuple[int, int, int] | None:
        sql = self._sql("SELECT events, start_ns, end_ns FROM traces WHERE project = ? AND trace_id = ?")
        row = self._read(lambda c: c.execute(sql, (project, trace_id)).fetchone())
        return (int(row[0]), int(row[1]), int(row[2])) if row else None

    def events_of(self, project: str, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        return {t: parse_bodies(rows) for t, rows in self.rows_of(project, trace_ids).items()}

    def rows_of(self, project: str, trace_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {t: [] for t in trace_ids}
        if trace_ids:
            for trace_id, event_id, body in self._trace_rows(project, trace_ids):
                out[trace_id].append((event_id, body))
        return out

    def _trace_rows(self, project: str, trace_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """(trace id, event id, body) of the traces' events, in (time, id) order; trace_ids is not empty."""
        raise NotImplementedError

    def count_events(self, project: str | None = None) -> int:
        if project is None:
            return int(self._read(lambda c: c.execute("SELECT count(*) FROM events").fetchone()[0]))
        sql = self._sql("SELECT count(*) FROM events WHERE project = ?")
        return int(self._read(lambda c: c.execute(sql, (project,)).fetchone()[0]))

    # -- what clients report they lost ------------------------------------------------------------
    def record_loss(self, key_id: str, project: str, loss: dict[str, int]) -> None:
        """A client's cumulative loss counts replace what it reported before."""
        delete = self._sql("DELETE FROM client_loss WHERE key_id = ?")
        insert = self._sql("INSERT INTO client_loss (key_id, project, reason, count) VALUES (?,?,?,?)")

        def tx(conn: Any) -> None:
            conn.execute(delete, (key_id,))
            with contextlib.closing(conn.cursor()) as cur:
                cur.executemany(insert, [(key_id, project, r, n) for r, n in loss.items()])

        self._write(tx)

    def reported_loss(self) -> list[tuple[str, str, int]]:
        sql = "SELECT project, reason, sum(count) FROM client_loss GROUP BY project, reason ORDER BY project, reason"
        return self._read(lambda c: [(p, r, int(n)) for p, r, n in c.execute(sql).fetchall()])

    # -- rate limits --------------------------------------------------------------------------------
    def take_token(self, key_id: str, rate: float, burst: float) -> float:
        """Take a token from the key's bucket (refilled at `rate` per second up to `burst`): 0.0 when
        granted, else the seconds until one will be."""
        sql = self._sql(_TAKE_TOKEN.format(now=self.CLOCK))
        granted, tokens = self._write(lambda c: c.execute(sql, (key_id, burst - 1, rate)).fetchone())
        return 0.0 if granted else max(0.0, (1 - float(tokens)) / rate)

    # -- keys -------------------------------------------------------------------------------------
    def create_key(self, record: KeyRecord) -> None:
        sql = self._sql(f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?)")
        self._write(lambda c: c.execute(sql, (
            record.key_id, record.project, record.key_hash, record.signing_secret, record.created_at,
            record.revoked_at, ",".join(record.scopes))))

    def get_key(self, key_id: str) -> KeyRecord | None:
        sql = self._sql(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?")
        row = self._read(lambda c: c.execute(sql, (key_id,)).fetchone())
        return key_from_row(row) if row else None

    def list_keys(self) -> list[KeyRecord]:
        rows = self._read(lambda c: c.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at").fetchall())
        return [key_from_row(r) for r in rows]

    def revoke_key(self, key_id: str, when: float) -> bool:
        sql = self._sql("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL")
        return bool(self._write(lambda c: c.execute(sql, (when, key_id)).rowcount == 1))


# -- scores -------------------------------------------------------------------------------------------
# Score records (tracewire.model.score), one row per (project, score id): a later write of an id
# replaces the row when its own time is later (ties: the larger body), whatever order writes arrive in.
_SCORES_SCHEMA = """
    CREATE TABLE scores (
        project {text} NOT NULL,
        id {text} NOT NULL,
        name {text} NOT NULL,
        trace_id {text},
        span_id {text},
        session_id {text},
        time {int} NOT NULL,
        body {text} NOT NULL,
        PRIMARY KEY (project, id)
    );
    CREATE INDEX scores_trace ON scores (project, trace_id);
    CREATE INDEX scores_session ON scores (project, session_id);
    CREATE INDEX scores_name ON scores (project, name)
"""
SCORE_COLUMNS = "project, id, name, trace_id, span_id, session_id, time, body"
SCORE_NEWER = ("(excluded.time > scores.time OR (excluded.time = scores.time AND excluded.body > scores.body))")


def scores_migration(*, text: str, integer: str) -> str:
    """The migration that adds the scores table, in a backend's types."""
    return _SCORES_SCHEMA.format(text=text, int=integer)


def latest_scores(rows: Iterable[ScoreRow]) -> list[ScoreRow]:
    """One row per score id, the latest by (time, body) as the stores decide, in id order (a fixed lock
    order; and one statement may not update a row twice)."""
    best: dict[str, ScoreRow] = {}
    for r in rows:
        seen = best.get(r.id)
        if seen is None or (r.time, r.body) > (seen.time, seen.body):
            best[r.id] = r
    return [best[i] for i in sorted(best)]


class SQLScores:
    """The scores half of a store, on the same `_read` / `_write` / `_sql` as SQLStore."""

    PARAM: ClassVar[str] = "?"

    def _read(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def _write(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def _sql(self, statement: str) -> str:
        return statement if self.PARAM == "?" else statement.replace("?", self.PARAM)

    def upsert_scores(self, project: str, rows: Sequence[ScoreRow]) -> None:
        params = [(project, *r) for r in latest_scores(rows)]
        sql = self._sql(
            f"INSERT INTO scores ({SCORE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (project, id) DO UPDATE SET"
            " name = excluded.name, trace_id = excluded.trace_id, span_id = excluded.span_id,"
            f" session_id = excluded.session_id, time = excluded.time, body = excluded.body WHERE {SCORE_NEWER}")

        def tx(conn: Any) -> None:
            with contextlib.closing(conn.cursor()) as cur:
                cur.executemany(sql, params)

        if params:
            self._write(tx)

    def scores(self, project: str, *, trace_ids: Sequence[str] | None = None, session_id: str | None = None,
               name: str | None = None, limit: int = MAX_SCORES_READ) -> list[dict[str, Any]]:
        """Scores oldest first: of these traces (and their spans), of a session, by name; at most `limit`."""
        where = ["project = ?"]
        args: list[Any] = [project]
        if trace_ids is not None:
            if not trace_ids:
                return []
            where.append(f"trace_id IN ({','.join('?' * len(trace_ids))})")
            args += list(trace_ids)
        for col, val in (("session_id", session_id), ("name", name)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = self._sql(f"SELECT body FROM scores WHERE {' AND '.join(where)} ORDER BY time, id LIMIT ?")
        bodies = self._read(lambda c: c.execute(sql, (*args, limit)).fetchall())
        return [score_fields(doc) for doc in parse_bodies((b, b) for (b,) in bodies)]
