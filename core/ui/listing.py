"""The trace list's filters and order as its query string carries them (bookmarkable), and the read
layer's `TraceQuery` they ask."""

from __future__ import annotations

from dataclasses import dataclass, fields

from tracewire.read import formats as fmt
from tracewire.read.query import SORTS, TraceQuery

STATUSES = ("ok", "error")  # "open" is left out of the form: a trace still running shows as open in the list
DIRECTIONS = ("desc", "asc")
# Query string name of each field ("from" and "to" are Python keywords).
_PARAM = {"since": "from", "until": "to"}


@dataclass(frozen=True)
class Filters:
    """The list's query string: every filter is optional. `q` is a phrase the traces' inputs or outputs
    contain; `name` a substring of the root span's name; `meta` a `key=value` of their metadata; `since`
    and `until` (`from`, `to`) ISO times or ages (`1h`, `7d`); `sort` start|latency|tokens|cost."""

    q: str = ""
    name: str = ""
    status: str = ""  # "" (any), "ok" or "error"
    session: str = ""
    user: str = ""
    tag: str = ""
    model: str = ""
    framework: str = ""
    meta: str = ""
    since: str = ""
    until: str = ""
    sort: str = ""  # "" is "start"
    dir: str = ""  # "" is "desc"

    @classmethod
    def from_query(cls, query: dict[str, list[str]]) -> Filters:
        """Unknown values of the closed choices (status, sort, dir) are dropped, not raised."""
        def one(key: str) -> str:
            return (query.get(_PARAM.get(key, key)) or [""])[0].strip()

        values = {f.name: one(f.name) for f in fields(cls)}
        for key, allowed in (("status", STATUSES), ("sort", SORTS), ("dir", DIRECTIONS)):
            if values[key] not in allowed:
                values[key] = ""
        return cls(**values)

    def as_query(self) -> dict[str, str]:
        """The query string's non-empty parameters, by their names in the URL."""
        return {_PARAM.get(f.name, f.name): getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def filtering(self) -> bool:
        """Whether any filter (not just an order) is set."""
        return any(v for k, v in self.as_query().items() if k not in ("sort", "dir"))

    def trace_query(self, now_ns: int | None = None) -> tuple[TraceQuery, list[str]]:
        """The query, and what could not be used (a bad time, a `meta` without `=`), said on the page."""
        problems: list[str] = []
        bounds: dict[str, int | None] = {"since": None, "until": None}
        for key in bounds:
            text = getattr(self, key)
            if text:
                try:
                    bounds[key] = fmt.parse_when(text, now_ns)
                except ValueError as exc:
                    problems.append(f"{_PARAM[key]}: {exc}")
        meta: tuple[tuple[str, str], ...] = ()
        if self.meta:
            key, eq, value = self.meta.partition("=")
            if eq and key.strip():
                meta = ((key.strip(), value.strip()),)
            else:
                problems.append(f"meta: {self.meta!r} is not key=value")
        q = TraceQuery(session_id=self.session or None, user_id=self.user or None, status=self.status or None,
                       name=self.name or None, tags=(self.tag,) if self.tag else (), model=self.model or None,
                       framework=self.framework or None, meta=meta, text=self.q or None,
                       since=bounds["since"], until=bounds["until"], sort=self.sort or "start",
                       descending=self.dir != "asc")
        return q, problems
