"""The collector's storage interface, shared by the SQLite and PostgreSQL backends.

Events are stored raw (the envelope's JSON text) with the columns reads filter on, keyed by
(project, event id): the store's unique key is what makes ingestion idempotent whatever the
interleaving of concurrent requests. A small `traces` table indexes each trace's time range,
session and user so listing does not scan events; spans are folded from raw events on read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from tracewire.model import codec as _json
from tracewire.read.query import TraceQuery
from tracewire.sinks.retention import Pruned


class StoreUnavailable(Exception):
    """The database cannot be reached or is busy: the request answers 503 and the client retries."""


class EventRow(NamedTuple):
    """A valid event as stored: the raw envelope plus the columns reads look up by."""

    id: str
    trace_id: str
    time: int
    session_id: str | None
    user_id: str | None
    body: str


class ScoreRow(NamedTuple):
    """A valid score record as stored: the raw record plus the columns reads look up by."""

    id: str
    name: str
    trace_id: str | None
    span_id: str | None
    session_id: str | None
    time: int
    body: str


MAX_SCORES_READ = 10_000  # the most scores one read returns


# What a key may do: `ingest` = POST /v1/events, `read` = the read API, `admin` = admin endpoints.
SCOPES: tuple[str, ...] = ("ingest", "read", "admin")
# Keys minted before scopes existed get only this: the SDK's key never gains read access by an upgrade.
LEGACY_SCOPES: tuple[str, ...] = ("ingest",)


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Sorted, deduplicated, validated scopes (ValueError names the bad one)."""
    out = {str(s).strip().lower() for s in scopes}
    bad = sorted(out - set(SCOPES))
    if bad:
        raise ValueError(f"unknown scope {bad[0]!r}: use {', '.join(SCOPES)}")
    if not out:
        raise ValueError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    return tuple(sorted(out))


def scopes_from_text(text: str | None) -> tuple[str, ...]:
    """The stored column (comma-separated) as a tuple; unknown words are ignored, never granted."""
    found = tuple(sorted({s for s in (text or "").split(",") if s in SCOPES}))
    return found or LEGACY_SCOPES


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    project: str
    key_hash: str
    signing_secret: str
    created_at: float
    revoked_at: float | None = None
    scopes: tuple[str, ...] = LEGACY_SCOPES

    def public(self) -> dict[str, Any]:
        """What `keys list` shows: never the hash or the signing secret."""
        return {"key_id": self.key_id, "project": self.project, "created_at": self.created_at,
                "revoked_at": self.revoked_at, "scopes": list(self.scopes)}


def key_from_row(row: Sequence[Any]) -> KeyRecord:
    """A key row as the stores select it: key_id, project, key_hash, signing_secret, created_at,
    revoked_at, scopes (comma-separated)."""
    return KeyRecord(row[0], row[1], row[2], row[3], row[4], row[5], scopes_from_text(row[6]))


@dataclass(frozen=True)
class TraceFilter:
    start: int | None = None  # trace start_ns >= start
    end: int | None = None  # trace start_ns <= end
    session_id: str | None = None
    user_id: str | None = None


class TraceRollup(NamedTuple):
    """Per-trace index update from one batch's accepted events."""

    trace_id: str
    start_ns: int
    end_ns: int
    session_id: str | None
    user_id: str | None
    events: int


class KeyStore(Protocol):
    def create_key(self, record: KeyRecord) -> None: ...
    def get_key(self, key_id: str) -> KeyRecord | None: ...
    def list_keys(self) -> list[KeyRecord]: ...
    def revoke_key(self, key_id: str, when: float) -> bool: ...


class Store(KeyStore, Protocol):
    def insert_events(self, project: str, rows: Sequence[EventRow]) -> set[str]:
        """Store the rows not already stored for `project` (ids are unique within `rows`) and return
        the ids that were already there (duplicates). Race-free: the (project, id) unique key decides."""
        ...

    def trace_ids(self, project: str, flt: TraceFilter, limit: int, offset: int) -> list[str]:
        """Trace ids newest first (by trace start)."""
        ...

    def events_of(self, project: str, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Each trace's events in time order; a stored body that is not a JSON object is left out."""
        ...

    def rows_of(self, project: str, trace_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Each trace's stored (event id, body text) pairs in time order, unparsed: reads check them."""
        ...

    def rows_by_id(self, project: str, event_ids: Sequence[str]) -> list[tuple[str, str]]:
        """The stored (event id, body text) pairs of these events, in time order."""
        ...

    def match_trace_ids(self, project: str, given: str) -> tuple[list[str], int]:
        """([given], 1) when it is a stored trace id; else up to 6 ids it is a prefix of, and how many
        there are (ValueError: not a prefix of 4+ hex characters)."""
        ...

    def session_ids(self, project: str, user_id: str | None, start: int | None, end: int | None,
                    limit: int) -> list[str]:
        """Session ids, most recently active first (optionally one user's, active within start..end ns)."""
        ...

    def short_trace_id(self, project: str, trace_id: str) -> str:
        """The shortest prefix (8+ characters) of the id that no other trace id of the project shares."""
        ...

    def trace_version(self, project: str, trace_id: str) -> tuple[int, int, int] | None:
        """(events, start_ns, end_ns) from the trace index: it changes whenever the trace gains events."""
        ...

    def upsert_scores(self, project: str, rows: Sequence[ScoreRow]) -> None:
        """Store each score, or update the stored one of its id when this write is newer (by time, then body)."""
        ...

    def scores(self, project: str, *, trace_ids: Sequence[str] | None = None, session_id: str | None = None,
               name: str | None = None, limit: int = MAX_SCORES_READ) -> list[dict[str, Any]]:
        """Scores oldest first: of these traces (and their spans), of a session, by name; at most `limit`."""
        ...

    def query_trace_ids(self, project: str, flt: TraceFilter, query: TraceQuery, limit: int,
                        offset: int) -> list[str]:
        """Trace ids matching the filter and the query's search/facets, in its order (start or latency)."""
        ...

    def search_backfill_pending(self) -> bool:
        """Whether traces stored before the search index existed are still being indexed."""
        ...

    def prune_before(self, cutoff_ns: int, *, dry_run: bool = False) -> Pruned | None:
        """Delete (dry: count) what is older than `cutoff_ns`, in bounded transactions (see
        tracewire.server.retention); None when another collector is pruning the same database."""
        ...

    def take_token(self, key_id: str, rate: float, burst: float) -> float:
        """Take one request's token from the key's rate-limit bucket (refilled at `rate` per second up to
        `burst`), kept in the database so every collector process sharing it draws from the same bucket:
        0.0 when granted, else the seconds until a token will be there."""
        ...

    def count_events(self, project: str | None = None) -> int: ...
    def record_loss(self, key_id: str, project: str, loss: dict[str, int]) -> None: ...
    def reported_loss(self) -> list[tuple[str, str, int]]: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


def rollup(rows: Iterable[EventRow]) -> list[TraceRollup]:
    """Fold accepted rows into one index update per trace, sorted by trace id (a fixed lock order)."""
    acc: dict[str, list[Any]] = {}
    for r in rows:
        a = acc.get(r.trace_id)
        if a is None:
            acc[r.trace_id] = [r.time, r.time, r.session_id, r.user_id, 1]
        else:
            a[0] = min(a[0], r.time)
            a[1] = max(a[1], r.time)
            a[2] = a[2] or r.session_id
            a[3] = a[3] or r.user_id
            a[4] += 1
    return [TraceRollup(t, *acc[t]) for t in sorted(acc)]


def parse_bodies(rows: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The stored bodies that are JSON objects (anything else was never valid: reads skip it)."""
    out: list[dict[str, Any]] = []
    for _, body in rows:
        try:
            doc = _json.loads(body)
        except (ValueError, RecursionError):
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


def sqlite_path(url: str) -> str:
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///"):]
    if url.startswith("sqlite://"):
        raise ValueError(f"bad SQLite URL {url!r}: use sqlite:///relative/path or sqlite:////absolute/path")
    if "://" in url:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")
    return url
