"""The trace list's filters as its query string carries them, and the read layer's `TraceQuery` they ask."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tracewire.read.query import TraceQuery

STATUSES = ("ok", "error")  # "open" is left out: no index finds unfinished traces, each would be folded


@dataclass(frozen=True)
class Filters:
    """The list's query string: every filter is optional; `name` is a substring of the root span's name."""

    session: str = ""
    user: str = ""
    status: str = ""  # "" (any), "ok" or "error"
    name: str = ""

    @classmethod
    def from_query(cls, query: dict[str, list[str]]) -> Filters:
        def one(key: str) -> str:
            return (query.get(key) or [""])[0].strip()

        status = one("status")
        return cls(one("session"), one("user"), status if status in STATUSES else "", one("name"))

    def as_query(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}

    def trace_query(self) -> TraceQuery:
        return TraceQuery(session_id=self.session or None, user_id=self.user or None,
                          status=self.status or None, name=self.name or None)
