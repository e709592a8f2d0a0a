"""What a reader asks of a store, whichever store it is: which traces (a `TraceQuery`), the totals of a
listing, a session's roll-up, and ids given as prefixes or shown as short ids (git style)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Runs one statement with its parameters and returns the rows: how a store lends its connection.
Run = Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]]

MIN_PREFIX = 4  # the shortest id prefix a command takes
SHORT_ID = 8  # the shortest id a listing shows
AMBIGUOUS_SHOWN = 5


class IdNotFound(LookupError):
    """No trace id starts with the prefix."""

    def __init__(self, prefix: str) -> None:
        super().__init__(f"no trace matches {prefix!r}")
        self.prefix = prefix


class AmbiguousId(LookupError):
    """More than one trace id starts with the prefix: `count` of them; `ids` holds the first few."""

    def __init__(self, prefix: str, count: int, shown: Sequence[str], ids: Sequence[str] = ()) -> None:
        super().__init__(f"ambiguous id {prefix!r}: {count} traces match ({', '.join(shown)})")
        self.prefix = prefix
        self.count = count
        self.ids = list(ids)


def check_prefix(prefix: str) -> str:
    """The prefix lower-cased; ValueError when it is too short or not hex (ids are hex)."""
    p = prefix.strip().lower()
    if len(p) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in p):
        raise ValueError(f"{prefix!r} is not a trace id: give at least {MIN_PREFIX} hex characters")
    return p


def prefix_upper_bound(prefix: str) -> str | None:
    """The least hex string of the prefix's length above every id that starts with it (for an indexed
    range scan; no collation puts another string between), or None past "ffff…"."""
    n = int(prefix, 16) + 1
    return None if n >> (4 * len(prefix)) else f"{n:0{len(prefix)}x}"


def short_id(trace_id: str, before: str | None, after: str | None, minimum: int = SHORT_ID) -> str:
    """The shortest prefix of `trace_id` (at least `minimum` long) that no other id shares: only its
    neighbours in sorted order can share a longer prefix than any other id does."""
    need = minimum
    for other in (before, after):
        if other:
            common = 0
            for a, b in zip(trace_id, other, strict=False):
                if a != b:
                    break
                common += 1
            need = max(need, common + 1)
    return trace_id[:need]


@dataclass(frozen=True)
class IdLookup:
    """Id look-ups by range scans of a trace_id index, the same SQL for the local event table and the
    collector's trace index. `scope` is a leading condition (e.g. "project = ? AND ") whose parameters
    every call passes first; statements use `?` (a store swaps in its own placeholder)."""

    table: str
    scope: str = ""

    def _where(self, upper: str | None) -> str:
        return f"WHERE {self.scope}trace_id >= ?" + (" AND trace_id < ?" if upper is not None else "")

    def resolve(self, run: Run, scope_args: Sequence[Any], given: str) -> tuple[list[str], int]:
        """([the id], 1) when `given` is a whole stored id; else up to AMBIGUOUS_SHOWN+1 ids starting with
        the prefix and how many there are. ValueError when it is not a usable prefix."""
        if run(f"SELECT trace_id FROM {self.table} WHERE {self.scope}trace_id = ? LIMIT 1", [*scope_args, given]):
            return [given], 1
        p = check_prefix(given)
        upper = prefix_upper_bound(p)
        bounds = [p] if upper is None else [p, upper]
        ids = [str(r[0]) for r in run(
            f"SELECT DISTINCT trace_id FROM {self.table} {self._where(upper)} AND trace_id LIKE ? "
            f"ORDER BY trace_id LIMIT ?", [*scope_args, *bounds, p + "%", AMBIGUOUS_SHOWN + 1])]
        if len(ids) <= 1:
            return ids, len(ids)
        count = run(f"SELECT COUNT(DISTINCT trace_id) FROM {self.table} {self._where(upper)} AND trace_id LIKE ?",
                    [*scope_args, *bounds, p + "%"])[0][0]
        return ids, int(count)

    def short_id(self, run: Run, scope_args: Sequence[Any], trace_id: str) -> str:
        """The shortest prefix (at least SHORT_ID long) that no other stored id shares: two index probes."""
        before = run(f"SELECT MAX(trace_id) FROM {self.table} WHERE {self.scope}trace_id < ?", [*scope_args, trace_id])
        after = run(f"SELECT MIN(trace_id) FROM {self.table} WHERE {self.scope}trace_id > ?", [*scope_args, trace_id])
        return short_id(trace_id, before[0][0] if before else None, after[0][0] if after else None)


def raise_unless_one(given: str, ids: Sequence[str], count: int, describe: Callable[[str], str]) -> str:
    """The one id, else IdNotFound or AmbiguousId (its candidates shown by `describe`)."""
    if not ids:
        raise IdNotFound(given)
    if len(ids) > 1:
        shown = ids[:AMBIGUOUS_SHOWN]
        raise AmbiguousId(given, count, [describe(t) for t in shown], shown)
    return ids[0]


SORTS = ("start", "latency", "tokens", "cost")  # what a listing can be ordered by


@dataclass(frozen=True)
class TraceQuery:
    """Which traces to list, in which order. A store with a read model (tracewire.read.index) answers
    every field from its indexes. Without one, fields the event table indexes (session, user, time) are
    matched in SQL and tags, status, name and model by folding a trace's events (`matches`); search,
    framework, metadata and the other orders need the read model (`needs_index`)."""

    session_id: str | None = None
    user_id: str | None = None
    tags: tuple[str, ...] = ()  # every one must be on the trace
    status: str | None = None  # ok | error | open
    name: str | None = None  # substring of the root span's name, any case
    model: str | None = None  # one of its LLM calls used this model (substring, any case)
    since: int | None = None  # trace start >= (unix ns)
    until: int | None = None  # trace start <= (unix ns)
    text: str | None = None  # a phrase its events' inputs or outputs contain (any case)
    framework: str | None = None  # one of its events was recorded by this framework
    meta: tuple[tuple[str, str], ...] = ()  # (key, value) pairs of its metadata: every one must match
    sort: str = "start"  # one of SORTS
    descending: bool = True

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {self.sort!r}")

    @property
    def folded(self) -> bool:
        """Whether `matches` has anything to check (the SQL alone cannot decide)."""
        return bool(self.tags or self.status or self.name or self.model)

    @property
    def needs_index(self) -> bool:
        """Whether only a read model can answer it (a full-text search, facets a summary lacks, an order)."""
        return bool(self.text or self.framework or self.meta or self.sort != "start" or not self.descending)

    def matches(self, summary: Mapping[str, Any]) -> bool:
        if self.status and summary.get("status") != self.status:
            return False
        if self.name and self.name.lower() not in str(summary.get("name") or "").lower():
            return False
        if self.tags and not set(self.tags) <= set(summary.get("tags") or ()):
            return False
        if self.model:
            wanted = self.model.lower()
            return any(wanted in str(m).lower() for m in summary.get("models") or ())
        return True


@dataclass
class Totals:
    traces: int = 0
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    errors: int = 0  # traces whose status is error
    first_ns: int | None = None
    last_ns: int | None = None
    users: list[str] = field(default_factory=list)


def totals(summaries: Iterable[Mapping[str, Any]]) -> Totals:
    """What a listing adds up to (also a session's roll-up)."""
    t = Totals()
    for s in summaries:
        t.traces += 1
        t.llm_calls += int(s.get("llm_calls") or 0)
        t.input_tokens += int(s.get("input_tokens") or 0)
        t.output_tokens += int(s.get("output_tokens") or 0)
        t.cost_usd += float(s.get("cost_usd") or 0.0)
        t.errors += s.get("status") == "error"
        start = s.get("start_ns")
        if start is not None:
            end = start + int((s.get("duration_ms") or 0) * 1e6)
            t.first_ns = start if t.first_ns is None else min(t.first_ns, start)
            t.last_ns = end if t.last_ns is None else max(t.last_ns, end)
        user = s.get("user_id")
        if user and user not in t.users:
            t.users.append(user)
    t.cost_usd = round(t.cost_usd, 8)
    return t
