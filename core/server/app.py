"""The collector's HTTP API (FastAPI): ingestion, read API, health and metrics.

Blocking work runs off the event loop: ingestion (database, inflating, parsing) on threads of its
own, reads in the shared pool, and the store checks behind `/healthz` and `/metrics` on a thread
each (`health.Probe`), so health answers in milliseconds while large batches are processed.
The documented shapes are in `openapi`, the trace read model in `reads`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import re
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from tracewire import wire
from tracewire.read.fold import SpanView, flatten, fold, span_key, summarize, tree
from tracewire.read.query import TraceQuery, totals
from tracewire.server.backends import open_store
from tracewire.server.health import HEALTH_MAX_AGE_S, HEALTH_STALL_S, HEALTH_TIMEOUT_S, Probe
from tracewire.server.ingest import Rejected, WireError, check_item, check_loss, inflate, parse_batch
from tracewire.server.keys import FileKeyStore
from tracewire.server.metrics import Metrics
from tracewire.server.openapi import (
    ERRORS,
    INGEST_OPENAPI,
    TRACE_DESCRIPTION,
    IngestResponse,
    ScoreList,
    SessionList,
    SessionTraces,
    TraceEvents,
    TraceIdMatches,
    TraceList,
)
from tracewire.server.reads import (
    DEFAULT_SPAN_PAGE,
    MAX_PROBLEMS_SHOWN,
    MAX_SPAN_PAGE,
    PlanCache,
    TracePlan,
    bulk_objects,
    page_spans,
    parse_rows,
)
from tracewire.server.store import (
    MAX_SCORES_READ,
    EventRow,
    KeyRecord,
    KeyStore,
    ScoreRow,
    Store,
    StoreUnavailable,
    TraceFilter,
)
from tracewire.server.store_sql import FOLDED_SORTS, SORT_SCAN, SQL_SORTS
from tracewire.server.ui_routes import mount_viewer

DEFAULT_DB = "sqlite:///.tracewire/collector.db"
CONFIG_ENV = "TRACEWIRE_SERVE_CONFIG"  # how `serve --workers N` hands the config to each worker
INGEST_THREADS = 4


@dataclass(frozen=True)
class ServerConfig:
    db: str = DEFAULT_DB
    keys_file: str | None = None
    limits: wire.Limits = field(default_factory=wire.Limits)
    rate_limit: float = 0.0  # requests per second per key (burst = 2 s worth); 0 = no limit
    pool_size: int = 8  # PostgreSQL connections per collector process

    def __post_init__(self) -> None:
        if not 0 <= self.rate_limit < float("inf"):
            raise ValueError(f"rate_limit (--rate-limit) must be a number >= 0, not {self.rate_limit!r}")

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "limits": asdict(self.limits)})

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        doc = json.loads(text)
        return cls(**{**doc, "limits": wire.Limits(**doc.get("limits", {}))})


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer twk_<key_id>_<secret>`")
Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


_ENCODINGS = ("", "identity", "gzip", "x-gzip", "deflate")
_TIMESTAMP = re.compile(r"-?[0-9]{1,18}")
def _bearer_token(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


class _Timing:
    """Pure ASGI middleware timing /v1/ requests (BaseHTTPMiddleware costs more than the work it times)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.metrics.observe(time.perf_counter() - t0)


def _json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json_response({"error": {"code": code, "message": message}}, status, headers)


class _RateLimiter:
    """A token bucket per key id, kept in the store: every collector process on the same database (workers,
    replicas behind a load balancer) draws from one bucket, so a key gets its limit once, not once per process."""

    def __init__(self, rate: float, store: Store) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self.store = store

    def allow(self, key_id: str) -> float:
        """0 when allowed, else seconds until a request would be."""
        return self.store.take_token(key_id, self.rate, self.burst) if self.rate > 0 else 0.0


class Collector:
    """Everything a request handler needs; the FastAPI routes are thin wrappers around it."""

    def __init__(self, config: ServerConfig, store: Store | None = None) -> None:
        self.config = config
        self.limits = config.limits
        self.store = store or open_store(config.db, **({"max_size": config.pool_size}
                                                        if config.db.startswith("postgres") else {}))
        self.keys: KeyStore = FileKeyStore(config.keys_file) if config.keys_file else self.store
        self.metrics = Metrics()
        self.rate = _RateLimiter(config.rate_limit, self.store)
        self._last_loss: dict[str, dict[str, int]] = {}
        # A key lookup in SQLite or a keys file takes microseconds: do it on the event loop, not via a thread hop.
        # Not so with a rate limit: taking a token is a database write, which may wait for the writer.
        self.local_keys = config.rate_limit <= 0 and (
            bool(config.keys_file) or getattr(self.store, "backend", "") == "sqlite")
        # Ingestion gets a few threads of its own: a burst of large batches queues here instead of filling the
        # shared thread pool reads use, and few CPU-bound threads leave the event loop its share of the GIL.
        # (Measured: 4 ingest as fast as 8 or 40 on SQLite, which has one writer, and on PostgreSQL.)
        threads = min(INGEST_THREADS, config.pool_size) if getattr(self.store, "backend", "") == "postgresql" \
            else INGEST_THREADS
        self.ingest_pool = ThreadPoolExecutor(threads, thread_name_prefix="tracewire-ingest")
        self.ping_probe = Probe(self.store.ping, "tracewire-health")
        self._plans = PlanCache()
        self.loss_probe = Probe(self.store.reported_loss, "tracewire-metrics")

    @property
    def scores_store(self) -> Store:
        return self.store

    # -- auth ------------------------------------------------------------------------------------
    def authenticate(self, api_key: str | None, scope: str = "read") -> KeyRecord:
        """The key's record if it is valid, active and carries `scope` (401 / 403 / 429 otherwise)."""
        if not api_key:
            raise WireError(401, "missing_key", "Authorization: Bearer <api key> is required")
        key_id = wire.parse_key_id(api_key)
        rec = self.keys.get_key(key_id) if key_id else None
        if rec is None or not hmac.compare_digest(rec.key_hash, wire.hash_key(api_key)):
            raise WireError(401, "invalid_key", "unknown API key")
        if rec.revoked_at is not None:
            raise WireError(401, "revoked_key", "this API key has been revoked")
        if scope not in rec.scopes:
            raise WireError(403, "insufficient_scope",
                            f"this API key lacks the {scope!r} scope (it has: {', '.join(rec.scopes)}); "
                            f"create one with `tracewire keys create --project P --scope {scope}`")
        wait = self.rate.allow(rec.key_id)
        if wait:
            raise WireError(429, "rate_limited", "too many requests for this key",
                            {"Retry-After": str(max(1, int(wait + 0.999)))})
        return rec

    # -- ingestion -----------------------------------------------------------------------------------
    def ingest(self, rec: KeyRecord, timestamp: str, signature: str, body: bytes, encoding: str,
               batch_id: str | None) -> dict[str, Any]:
        if not wire.verify(rec.signing_secret, timestamp, body, signature):
            raise WireError(401, "bad_signature", "X-Tracewire-Signature does not match the body")
        raw = inflate(body, encoding, self.limits.max_inflated_bytes)
        events, client = parse_batch(raw, self.limits)
        max_bytes = self.limits.max_event_bytes
        results: list[dict[str, Any]] = []
        rows: list[EventRow] = []
        scores: list[ScoreRow] = []
        first: set[str] = set()
        rejected: list[str] = []
        for c in [check_item(e, max_bytes) for e in events]:
            if isinstance(c, Rejected):
                results.append({"id": c.id, "status": "rejected", "reason": c.reason, "retryable": False})
                rejected.append(c.reason)
            elif isinstance(c, ScoreRow):  # upserted by id: a score sent again is the same score, or its update
                scores.append(c)
                results.append({"id": c.id, "status": "accepted"})
            elif c.id in first:  # the same event twice in one batch: stored once
                results.append({"id": c.id, "status": "duplicate"})
            else:
                first.add(c.id)
                rows.append(c)
                results.append({"id": c.id, "status": "accepted"})
        duplicates = self.store.insert_events(rec.project, rows) if rows else set()
        if scores:
            self.scores_store.upsert_scores(rec.project, scores)
        if duplicates:
            for r in results:
                if r["status"] == "accepted" and r["id"] in duplicates:
                    r["status"] = "duplicate"
        self._note_loss(rec, check_loss(client))
        accepted = len(rows) + len(scores) - len(duplicates)
        duplicate = len(results) - accepted - len(rejected)
        self.metrics.events(accepted, duplicate, rejected)
        return {"batch_id": batch_id, "accepted": accepted, "duplicate": duplicate, "rejected": len(rejected),
                "results": results}

    def _note_loss(self, rec: KeyRecord, loss: dict[str, int] | None) -> None:
        if loss is None or self._last_loss.get(rec.key_id) == loss:
            return
        self.store.record_loss(rec.key_id, rec.project, loss)
        self._last_loss[rec.key_id] = loss
        self.loss_probe.invalidate()  # /metrics shows the new report on its next scrape

    # -- reading ---------------------------------------------------------------------------------------
    def list_traces(self, project: str, flt: TraceFilter, limit: int, offset: int,
                    match: TraceQuery | None = None) -> dict[str, Any]:
        """Summaries in the query's order (newest first by default). The store matches the time range,
        session, user, phrase, framework and metadata and orders by start or latency; status, name, tags
        and model are matched by folding each trace, and the tokens and cost orders sort the folded
        summaries of at most SORT_SCAN matching traces (the newest)."""
        q = match or TraceQuery()
        if q.sort in SQL_SORTS and not q.folded:
            ids = self.store.query_trace_ids(project, flt, q, limit + 1, offset)
            more = len(ids) > limit
            summaries = self._summaries(project, ids[:limit])
        else:  # filter (and sort) while paging through traces
            want = SORT_SCAN if q.sort not in SQL_SORTS else offset + limit + 1
            matches: list[dict[str, Any]] = []
            scanned, chunk = 0, 200
            while len(matches) < want:
                ids = self.store.query_trace_ids(project, flt, q, chunk, scanned)
                scanned += len(ids)
                matches += [s for s in self._summaries(project, ids) if q.matches(s)]
                if len(ids) < chunk:
                    break
            if q.sort not in SQL_SORTS:
                matches = matches[:SORT_SCAN]
                matches.sort(key=FOLDED_SORTS[q.sort], reverse=q.descending)
            more = len(matches) > offset + limit
            summaries = matches[offset:offset + limit]
        for s in summaries:
            s["short_id"] = self.store.short_trace_id(project, s["trace_id"])
        return {"traces": summaries, "next_offset": offset + limit if more else None}

    def trace_ids_matching(self, project: str, given: str) -> dict[str, Any]:
        """The traces a whole id or an id prefix names: a few of them (id, short id, root name) and the count."""
        ids, count = self.store.match_trace_ids(project, given)
        found = {s["trace_id"]: s for s in self._summaries(project, ids)}
        return {"prefix": given, "count": count, "traces": [
            {"trace_id": t, "short_id": self.store.short_trace_id(project, t), "name": found.get(t, {}).get("name")}
            for t in ids]}

    def _summaries(self, project: str, ids: list[str]) -> list[dict[str, Any]]:
        by_trace = self.store.rows_of(project, ids)
        out = []
        with bulk_objects():
            for t in ids:
                if by_trace.get(t):
                    problems: list[dict[str, Any]] = []
                    events = [doc for _, _, doc in parse_rows(by_trace[t], problems)]
                    out.append(asdict(summarize(t, events, problems)))
        return out

    def trace(self, project: str, trace_id: str, limit: int = DEFAULT_SPAN_PAGE, start: int = 0) -> dict[str, Any] | None:
        """One page of a trace: `limit` spans in display order from position `start`, with their events."""
        if "\x00" in trace_id:  # cannot be stored (ids are validated), and PostgreSQL text refuses NUL
            return None
        version = self.store.trace_version(project, trace_id)
        plan = self._plans.get(project, trace_id, version)
        if plan is not None:  # a later page of a large trace: fetch and fold only this page's events
            spans = plan.spans[start:start + limit]
            wanted = [eid for sid, _, _ in spans for eid in plan.events.get(sid, ())]
            rows = self.store.rows_by_id(project, wanted + (plan.loose if start == 0 else []))
            page_problems: list[dict[str, Any]] = []
            with bulk_objects():
                parsed = parse_rows(rows, page_problems)
                folded = {s.span_id: s for s in fold((doc for _, _, doc in parsed), page_problems)}
            page = []
            for sid, depth, cycle in spans:
                s = folded.get(sid)
                if s is not None:  # (absent only if the trace changed under this read)
                    s.depth, s.cycle = depth, cycle
                    page.append(s)
            return self._trace_page(trace_id, start, page, parsed, len(plan.spans), plan.problems)
        rows = self.store.rows_of(project, [trace_id])[trace_id]
        if not rows:
            return None
        problems: list[dict[str, Any]] = []
        with bulk_objects():
            parsed = parse_rows(rows, problems)
            order = flatten(tree((doc for _, _, doc in parsed), problems))
        if len(order) > limit and version is not None:  # more pages will be asked for: keep the plan
            self._plans.put(project, trace_id, version, TracePlan.of(order, parsed, problems))
        return self._trace_page(trace_id, start, order[start:start + limit], parsed, len(order), problems)

    @staticmethod
    def _trace_page(trace_id: str, start: int, page: list[SpanView], parsed: list[tuple[str, str, dict[str, Any]]],
                    total: int, problems: list[dict[str, Any]]) -> dict[str, Any]:
        keys = {s.span_id for s in page}
        # Events that belong to no span (no usable span_id or id) go with the first page, so every
        # readable stored event is shown somewhere.
        events = [orjson.Fragment(body) for _, body, doc in parsed
                  if (k := span_key(doc)) in keys or (k is None and start == 0)]
        end = start + len(page)
        return {"trace_id": trace_id, "events": events, "spans": page_spans(page), "span_count": total,
                "next_cursor": str(end) if end < total else None,
                "problems": problems[:MAX_PROBLEMS_SHOWN], "problem_count": len(problems)}

    def session(self, project: str, session_id: str) -> dict[str, Any] | None:
        if "\x00" in session_id:
            return None
        ids = self.store.trace_ids(project, TraceFilter(session_id=session_id), 1000, 0)
        return {"session_id": session_id, "traces": self._summaries(project, ids)} if ids else None

    def sessions(self, project: str, user_id: str | None, start: int | None, end: int | None,
                 limit: int) -> dict[str, Any]:
        """Sessions most recently active first, each with the roll-up of its traces."""
        out = []
        for sid in self.store.session_ids(project, user_id, start, end, limit):
            ids = self.store.trace_ids(project, TraceFilter(session_id=sid), 1000, 0)
            out.append({"session_id": sid, **asdict(totals(self._summaries(project, ids)))})
        return {"sessions": out}

    def metrics_text(self) -> str:
        try:
            loss = self.store.reported_loss()
        except StoreUnavailable:
            loss = []
        return self.metrics.render(loss)

    async def metrics_text_async(self) -> str:
        """The exposition, never waiting long on the store: client-reported loss is at most HEALTH_MAX_AGE_S old
        (read afresh after this process stored a new report), or when the store is slow, the latest figure read."""
        got = await self.loss_probe.get(HEALTH_TIMEOUT_S)
        return self.metrics.render(got[1] if got and got[0] else [])

    def close(self) -> None:
        self.ingest_pool.shutdown(wait=True)
        self.ping_probe.close()
        self.loss_probe.close()
        self.store.close()


async def _read_body(request: Request, limit: int) -> bytes:
    """The body as sent, refused past `limit` bytes. An oversize body is drained (up to a bound) before
    answering so the client reads the 413 instead of a connection reset."""
    declared = request.headers.get("content-length", "")
    buf = bytearray()
    too_big = declared.isdigit() and int(declared) > limit
    drained = 0
    async for chunk in request.stream():
        if too_big:
            drained += len(chunk)
            if drained > 8 * limit:
                break
            continue
        buf += chunk
        if len(buf) > limit:
            too_big, drained, buf = True, len(buf), bytearray()
    if too_big:
        raise WireError(413, "body_too_large", f"body is larger than {limit} bytes")
    return bytes(buf)


def create_app(config: ServerConfig | None = None, store: Store | None = None) -> FastAPI:
    cfg = config or ServerConfig()
    col = Collector(cfg, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        col.close()

    app = FastAPI(title="tracewire collector", version="1", lifespan=lifespan,
                  description="Authenticated, idempotent ingestion of tracewire schema-1 events; read API.")
    app.state.collector = col

    @app.exception_handler(WireError)
    async def wire_error(request: Request, exc: WireError) -> Response:
        col.metrics.request_rejected(exc.code)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return _error(exc.status, exc.code, exc.message, {**headers, **exc.headers})

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: StoreUnavailable) -> Response:
        col.metrics.request_rejected("unavailable")
        return _error(503, "unavailable", "storage is unavailable; retry later", {"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        col.metrics.request_rejected("bad_request")
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(400, "bad_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    app.add_middleware(_Timing, metrics=col.metrics)

    async def auth(api_key: str | None, scope: str = "read") -> KeyRecord:
        """Every endpoint but ingestion reads or administers: `read` unless told otherwise."""
        if col.local_keys:
            return col.authenticate(api_key, scope)
        return await run_in_threadpool(col.authenticate, api_key, scope)

    @app.post("/v1/events", response_model=None, responses={200: {"model": IngestResponse}, **ERRORS},
              summary="Ingest a signed batch of events", openapi_extra=INGEST_OPENAPI)
    async def post_events(request: Request) -> Response:
        # Headers are read by hand (documented in INGEST_OPENAPI): this is the hot path, and
        # FastAPI's per-parameter validation would cost more than the checks themselves.
        h = request.headers
        rec = await auth(_bearer_token(h.get("authorization")), "ingest")
        ts, signature = (h.get(wire.H_TIMESTAMP) or "").strip(), h.get(wire.H_SIGNATURE) or ""
        if not ts or not signature:
            raise WireError(401, "missing_signature", "X-Tracewire-Timestamp and X-Tracewire-Signature are required")
        if not _TIMESTAMP.fullmatch(ts):
            raise WireError(401, "stale_timestamp", "X-Tracewire-Timestamp must be integer unix seconds")
        if abs(time.time() - int(ts)) > cfg.limits.signature_window_s:
            raise WireError(401, "stale_timestamp",
                            f"timestamp is more than {cfg.limits.signature_window_s} s from the server's clock")
        encoding = h.get("content-encoding") or ""
        if encoding.strip().lower() not in _ENCODINGS:
            raise WireError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported (use gzip)")
        body = await _read_body(request, cfg.limits.max_body_bytes)
        result = await asyncio.wrap_future(col.ingest_pool.submit(
            col.ingest, rec, ts, signature, body, encoding, h.get(wire.H_BATCH_ID)))
        return _json_response(result)

    @app.get("/v1/traces", response_model=None, responses={200: {"model": TraceList}, **ERRORS},
             summary="List the project's traces (newest first unless sorted)")
    async def get_traces(
        creds: Creds,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        start: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="trace start >= (unix ns)")] = None,
        end: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="trace start <= (unix ns)")] = None,
        session_id: Annotated[str | None, Query(max_length=256)] = None,
        user_id: Annotated[str | None, Query(max_length=256)] = None,
        status: Literal["ok", "error", "open"] | None = None,
        name: Annotated[str | None, Query(max_length=256, description="substring of the root span's name (case-insensitive)")] = None,
        tag: Annotated[list[str] | None, Query(description="a tag the trace carries (repeat it: all must match)")] = None,
        model: Annotated[str | None, Query(max_length=256, description="substring of a model its LLM calls used (case-insensitive)")] = None,
        q: Annotated[str | None, Query(max_length=1000, description="a phrase one of its events' inputs or outputs contains (case-insensitive)")] = None,
        framework: Annotated[str | None, Query(max_length=256, description="one of its events was recorded by this framework")] = None,
        meta: Annotated[list[str] | None, Query(description="key=value of its metadata (repeat it: all must match)")] = None,
        sort: Literal["start", "latency", "tokens", "cost"] = "start",
        dir: Literal["asc", "desc"] = "desc",
    ) -> Response:
        rec = await auth(creds.credentials if creds else None)
        if any("\x00" in v for v in (session_id, user_id, name, model, q, framework, *(tag or ()), *(meta or ()))
               if v):
            raise WireError(400, "bad_request", "query values cannot contain NUL")
        pairs = []
        for m in meta or ():
            key, eq, value = m.partition("=")
            if not eq or not key.strip():
                raise WireError(400, "bad_request", f"meta {m[:100]!r} is not key=value")
            pairs.append((key.strip(), value.strip()))
        flt = TraceFilter(start, end, session_id, user_id)
        match = TraceQuery(tags=tuple(tag or ()), status=status, name=name, model=model, text=q, framework=framework,
                           meta=tuple(pairs), sort=sort, descending=dir == "desc")
        return _json_response(await run_in_threadpool(col.list_traces, rec.project, flt, limit, offset, match))

    @app.get("/v1/trace-ids", response_model=None, responses={200: {"model": TraceIdMatches}, **ERRORS},
             summary="The traces a whole id or an id prefix (4+ hex characters) names: a few, and how many")
    async def get_trace_ids(
        creds: Creds,
        prefix: Annotated[str, Query(min_length=1, max_length=256, description="a trace id or its first characters")],
    ) -> Response:
        rec = await auth(creds.credentials if creds else None)
        if "\x00" in prefix:
            raise WireError(400, "bad_request", "query values cannot contain NUL")
        try:
            doc = await run_in_threadpool(col.trace_ids_matching, rec.project, prefix)
        except ValueError as exc:
            raise WireError(400, "bad_request", str(exc)) from None
        return _json_response(doc)

    @app.get("/v1/traces/{trace_id}", response_model=None, responses={200: {"model": TraceEvents}, **ERRORS},
             summary="A page of a trace's spans and their raw events (404 for unknown or another project's)",
             description=TRACE_DESCRIPTION)
    async def get_trace(
        trace_id: str,
        creds: Creds,
        limit: Annotated[int, Query(ge=1, le=MAX_SPAN_PAGE, description="spans per page")] = DEFAULT_SPAN_PAGE,
        cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]{1,19}$",
                                            description="`next_cursor` of the previous page (opaque)")] = None,
    ) -> Response:
        rec = await auth(creds.credentials if creds else None)
        doc = await run_in_threadpool(col.trace, rec.project, trace_id, limit, int(cursor or 0))
        if doc is None:
            raise WireError(404, "not_found", "no such trace in this project")
        # the trace's scores and its spans' (every page carries them all: a score may arrive at any time)
        doc["scores"] = await run_in_threadpool(col.scores_store.scores, rec.project, trace_ids=[trace_id])
        return _json_response(doc)

    @app.get("/v1/sessions", response_model=None, responses={200: {"model": SessionList}, **ERRORS},
             summary="The project's sessions, most recently active first, each with its traces' totals")
    async def get_sessions(
        creds: Creds,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
        user_id: Annotated[str | None, Query(max_length=256)] = None,
        start: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="active at or after (unix ns)")] = None,
        end: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="active at or before (unix ns)")] = None,
    ) -> Response:
        rec = await auth(creds.credentials if creds else None)
        if user_id and "\x00" in user_id:
            raise WireError(400, "bad_request", "query values cannot contain NUL")
        return _json_response(await run_in_threadpool(col.sessions, rec.project, user_id, start, end, limit))

    @app.get("/v1/sessions/{session_id}", response_model=None, responses={200: {"model": SessionTraces}, **ERRORS},
             summary="A session's trace summaries")
    async def get_session(session_id: str, creds: Creds) -> Response:
        rec = await auth(creds.credentials if creds else None)
        doc = await run_in_threadpool(col.session, rec.project, session_id)
        if doc is None:
            raise WireError(404, "not_found", "no such session in this project")
        doc["scores"] = await run_in_threadpool(col.scores_store.scores, rec.project, session_id=session_id)
        return _json_response(doc)

    # -- scores ----------------------------------------------------------------------------------------
    @app.get("/v1/scores", response_model=None, responses={200: {"model": ScoreList}, **ERRORS},
             summary="The project's scores, oldest first: of traces (and their spans), of a session, by name")
    async def get_scores(
        creds: Creds,
        trace_id: Annotated[list[str] | None, Query(description="a trace whose scores (its spans' too) to list; "
                                                                "repeat it for several")] = None,
        session_id: Annotated[str | None, Query(max_length=256, description="a session's own scores")] = None,
        name: Annotated[str | None, Query(max_length=256, description="only scores of this name")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_SCORES_READ)] = 1000,
    ) -> Response:
        rec = await auth(creds.credentials if creds else None)
        if trace_id is not None and (len(trace_id) > 500 or any(len(t) > 256 for t in trace_id)):
            raise WireError(400, "bad_request", "trace_id: at most 500 ids of at most 256 characters")
        if any("\x00" in v for v in (session_id, name, *(trace_id or ())) if v):
            raise WireError(400, "bad_request", "query values cannot contain NUL")
        found = await run_in_threadpool(col.scores_store.scores, rec.project, trace_ids=trace_id,
                                        session_id=session_id, name=name, limit=limit)
        return _json_response({"scores": found})

    @app.get("/livez", response_model=None, summary="Liveness: the process answers (no auth, no storage access)")
    async def livez() -> Response:
        return _json_response({"status": "ok"})

    @app.get("/healthz", response_model=None, summary="Readiness: storage answers (no auth)",
             description=f"200 `{{\"status\": \"ok\"}}` when the store answered a ping; 503 when it failed or has not "
                         f"answered for {HEALTH_STALL_S:.0f} s. Every call starts a ping on a thread of its own (never "
                         f"behind ingestion) and answers from the last result when that is under {HEALTH_MAX_AGE_S:.0f} s "
                         f"old, else waits up to {HEALTH_TIMEOUT_S} s for it. `/livez` touches no storage at all.")
    async def healthz() -> Response:
        got = await col.ping_probe.get(HEALTH_TIMEOUT_S)
        if got is None or not got[0]:
            return _json_response({"status": "unavailable"}, 503, {"Retry-After": "1"})
        return _json_response({"status": "ok"})

    @app.get("/metrics", response_model=None, summary="Prometheus text exposition (no auth)")
    async def metrics() -> Response:
        text = await col.metrics_text_async()
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    mount_viewer(app, col, auth)  # the web viewer at /ui/, signed in with a read key
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for `serve --workers N`: each worker process builds its app from the env."""
    return create_app(ServerConfig.from_json(os.environ[CONFIG_ENV]))
