"""Read a collector's read API: what `tracewire traces/show --server URL` use (plain `requests`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import requests

from tracewire.read.query import Totals, TraceQuery, raise_unless_one


class RemoteError(Exception):
    """The collector refused or failed a read: status and protocol error code included."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"collector answered {status} {code}: {message}")
        self.status = status
        self.code = code


def _default_verify() -> bool | str:
    """Like the SDK's settings: TRACEWIRE_CA_FILE (a PEM bundle to trust), else TRACEWIRE_VERIFY_TLS."""
    ca_file = os.environ.get("TRACEWIRE_CA_FILE")
    if ca_file:
        return ca_file
    return os.environ.get("TRACEWIRE_VERIFY_TLS", "true").strip().lower() not in ("0", "false", "no", "off")


TRACE_PAGE = 10_000  # spans a page: the collector's maximum
MAX_TRACE_PAGE = 1000  # the read API's largest `limit` for GET /v1/traces
MAX_SCORE_TRACES = 500  # the most trace ids GET /v1/scores takes
MAX_SCORES_READ = 10_000  # the read API's largest `limit` for GET /v1/scores


class RemoteStore:
    """Needs a key with the `read` scope (`tracewire keys create --project P --scope read`)."""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 10.0,
                 verify: bool | str | None = None) -> None:
        key = api_key or os.environ.get("TRACEWIRE_API_KEY")
        if not key:
            raise ValueError("reading from a collector needs an API key: --api-key or TRACEWIRE_API_KEY")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {key}"
        # Passed with every request: a Session's own `verify` loses to REQUESTS_CA_BUNDLE in the environment.
        self._verify = _default_verify() if verify is None else verify

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        r = self._session.get(self.url + path, params=params, timeout=self.timeout, verify=self._verify)
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            try:
                err = r.json()["error"]
                code, message = str(err["code"]), str(err["message"])
            except (ValueError, KeyError, TypeError):
                code, message = "http_error", r.text[:200]
            raise RemoteError(r.status_code, code, message)
        doc: dict[str, Any] = r.json()
        return doc

    def list_traces(self, limit: int = 20, offset: int = 0, **filters: Any) -> list[dict[str, Any]]:
        """Trace summaries (tracewire.read.fold.TraceSummary fields), newest first. Filters: start, end (ns),
        session_id, user_id, status (ok|error|open), name (substring)."""
        params = {"limit": limit, "offset": offset, **{k: v for k, v in filters.items() if v is not None}}
        doc = self._get("/v1/traces", params)
        return list(doc["traces"]) if doc else []

    def query_traces(self, query: TraceQuery, limit: int = 20) -> list[dict[str, Any]]:
        """`list_traces` for a TraceQuery (the read API takes every one of its filters)."""
        return self.list_traces(limit=limit, start=query.since, end=query.until, session_id=query.session_id,
                                user_id=query.user_id, status=query.status, name=query.name, model=query.model,
                                tag=list(query.tags) or None)

    def resolve(self, given: str) -> str:
        """The one trace id `given` names: whole, or a unique prefix. IdNotFound, AmbiguousId, ValueError."""
        doc = self._get("/v1/trace-ids", {"prefix": given}) or {"traces": [], "count": 0}
        found = {t["trace_id"]: t for t in doc["traces"]}
        return raise_unless_one(given, list(found), int(doc["count"]),
                                lambda t: f'{found[t]["short_id"]} {found[t]["name"]}')

    def trace_ids(self, page: int = MAX_TRACE_PAGE) -> list[str]:
        """Every trace id of the key's project, newest first: page after page of `list_traces`
        (the read API gives at most MAX_TRACE_PAGE a page); a trace that shifts into a later page
        while this reads is listed once."""
        seen: dict[str, None] = {}
        offset = 0
        while True:
            got = [t["trace_id"] for t in self.list_traces(limit=page, offset=offset)]
            seen.update(dict.fromkeys(got))
            if len(got) < page:
                return list(seen)
            offset += page

    def trace_events(self, trace_id: str, max_pages: int = 1000) -> list[dict[str, Any]]:
        """The trace's raw events, every page of them (empty when the project has no such trace)."""
        path = f"/v1/traces/{requests.utils.quote(trace_id, safe='')}"
        events: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": TRACE_PAGE}
        for _ in range(max_pages):
            doc = self._get(path, params)
            if not doc:
                break
            events.extend(doc["events"])
            if not doc.get("next_cursor"):
                break
            params = {"limit": TRACE_PAGE, "cursor": doc["next_cursor"]}
        return events

    def sessions(self, limit: int = 20, user_id: str | None = None, since: int | None = None,
                 until: int | None = None) -> list[tuple[str, Totals]]:
        """Sessions most recently active first, each with the roll-up of its traces (as LocalStore.sessions)."""
        params = {"limit": limit, "user_id": user_id, "start": since, "end": until}
        doc = self._get("/v1/sessions", {k: v for k, v in params.items() if v is not None}) or {"sessions": []}
        return [(s.pop("session_id"), Totals(**s)) for s in doc["sessions"]]

    def session_traces(self, session_id: str) -> list[dict[str, Any]]:
        doc = self._get(f"/v1/sessions/{requests.utils.quote(session_id, safe='')}")
        return list(doc["traces"]) if doc else []

    def scores(self, *, trace_ids: Sequence[str] | None = None, session_id: str | None = None,
               name: str | None = None) -> list[dict[str, Any]]:
        """Scores oldest first, as LocalStore.scores: of these traces (and their spans), of a session, by
        name (the read API's most, MAX_SCORES_READ, in one answer)."""
        if trace_ids is not None and not trace_ids:
            return []
        ids = list(trace_ids or ())
        found: list[dict[str, Any]] = []
        # the read API takes at most MAX_SCORE_TRACES trace ids a request
        for i in range(0, max(len(ids), 1), MAX_SCORE_TRACES):
            params = {"trace_id": ids[i:i + MAX_SCORE_TRACES] or None, "session_id": session_id, "name": name,
                      "limit": MAX_SCORES_READ}
            doc = self._get("/v1/scores", {k: v for k, v in params.items() if v is not None}) or {"scores": []}
            found += doc["scores"]
        return sorted(found, key=lambda r: (r["time"], r["id"])) if len(ids) > MAX_SCORE_TRACES else found

    def last_trace_id(self) -> str | None:
        traces = self.list_traces(limit=1)
        return str(traces[0]["trace_id"]) if traces else None

    def close(self) -> None:
        self._session.close()
