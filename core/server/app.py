"""The collector's HTTP API (FastAPI): ingestion, read API, health and metrics.

Blocking work (database, inflating, parsing) runs in the thread pool so the event loop keeps
answering `/healthz` while a large batch is processed.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..fold import SpanView, TraceSummary, summarize, tree
from . import wire
from .ingest import Rejected, WireError, check_event, check_loss, inflate, parse_batch
from .keys import FileKeyStore
from .metrics import Metrics
from .store import EventRow, KeyRecord, KeyStore, Store, StoreUnavailable, TraceFilter, open_store

DEFAULT_DB = "sqlite:///.tracewire/collector.db"
CONFIG_ENV = "TRACEWIRE_SERVE_CONFIG"  # how `serve --workers N` hands the config to each worker


@dataclass(frozen=True)
class ServerConfig:
    db: str = DEFAULT_DB
    keys_file: str | None = None
    limits: wire.Limits = field(default_factory=wire.Limits)
    rate_limit: float = 0.0  # requests per second per key (burst = 2 s worth); 0 = no limit
    pool_size: int = 8  # PostgreSQL connections per collector process

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "limits": asdict(self.limits)})

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        doc = json.loads(text)
        return cls(**{**doc, "limits": wire.Limits(**doc.get("limits", {}))})


# -- OpenAPI shapes (documentation and fuzzing; responses are built directly for speed) -----------
class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class EventResult(BaseModel):
    id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = None
    retryable: bool | None = None


class IngestResponse(BaseModel):
    batch_id: str | None
    accepted: int
    duplicate: int
    rejected: int
    results: list[EventResult]


class TraceList(BaseModel):
    traces: list[TraceSummary]
    next_offset: int | None


class TraceEvents(BaseModel):
    trace_id: str
    events: list[dict[str, Any]]
    spans: list[dict[str, Any]]


class SessionTraces(BaseModel):
    session_id: str
    traces: list[TraceSummary]


_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (400, 401, 403, 404, 413, 415, 429, 503)
}
_BATCH_SCHEMA = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "schema", "type", "trace_id", "span_id", "time"],
            "properties": {
                "id": {"type": "string"}, "schema": {"type": "integer", "enum": [1]}, "type": {"type": "string"},
                "kind": {"type": "string"}, "phase": {"type": "string"}, "trace_id": {"type": "string"},
                "span_id": {"type": "string"}, "parent_span_id": {"type": ["string", "null"]},
                "session_id": {"type": ["string", "null"]}, "user_id": {"type": ["string", "null"]},
                "name": {"type": "string"}, "time": {"type": "integer"}, "attributes": {"type": "object"},
            },
        }},
        "client": {"type": "object", "properties": {
            "sdk": {"type": "string"}, "version": {"type": "string"},
            "loss": {"type": "object", "additionalProperties": {"type": "integer"}},
        }},
    },
}
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer twk_<key_id>_<secret>`")
Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


_ENCODINGS = ("", "identity", "gzip", "x-gzip", "deflate")
_TIMESTAMP = re.compile(r"-?[0-9]{1,18}")
_INGEST_OPENAPI: dict[str, Any] = {
    "security": [{"HTTPBearer": []}],
    "parameters": [
        {"name": wire.H_TIMESTAMP, "in": "header", "required": True, "schema": {"type": "string"},
         "description": "Unix seconds (integer); within 300 s of the server's clock"},
        {"name": wire.H_SIGNATURE, "in": "header", "required": True, "schema": {"type": "string"},
         "description": "v1=<hex HMAC-SHA256(signing secret, timestamp + '.' + body as sent)>"},
        {"name": wire.H_BATCH_ID, "in": "header", "required": False, "schema": {"type": "string"},
         "description": "Stable across retries of one batch (a UUID)"},
        {"name": wire.H_ATTEMPT, "in": "header", "required": False, "schema": {"type": "string"},
         "description": "1, 2, ..."},
        {"name": "content-encoding", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "gzip, or absent"},
    ],
    "requestBody": {"required": True, "content": {"application/json": {"schema": _BATCH_SCHEMA}}},
}


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
    """Token bucket per key id (per collector process)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key_id: str) -> float:
        """0 when allowed, else seconds until a request would be."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1 - tokens) / self.rate


class Collector:
    """Everything a request handler needs; the FastAPI routes are thin wrappers around it."""

    def __init__(self, config: ServerConfig, store: Store | None = None) -> None:
        self.config = config
        self.limits = config.limits
        self.store = store or open_store(config.db, **({"max_size": config.pool_size}
                                                        if config.db.startswith("postgres") else {}))
        self.keys: KeyStore = FileKeyStore(config.keys_file) if config.keys_file else self.store
        self.metrics = Metrics()
        self.rate = _RateLimiter(config.rate_limit)
        self._last_loss: dict[str, dict[str, int]] = {}
        # A key lookup in SQLite or a keys file takes microseconds: do it on the event loop, not via a thread hop.
        self.local_keys = bool(config.keys_file) or getattr(self.store, "backend", "") == "sqlite"

    # -- auth ------------------------------------------------------------------------------------
    def authenticate(self, api_key: str | None) -> KeyRecord:
        if not api_key:
            raise WireError(401, "missing_key", "Authorization: Bearer <api key> is required")
        key_id = wire.parse_key_id(api_key)
        rec = self.keys.get_key(key_id) if key_id else None
        if rec is None or not hmac.compare_digest(rec.key_hash, wire.hash_key(api_key)):
            raise WireError(401, "invalid_key", "unknown API key")
        if rec.revoked_at is not None:
            raise WireError(401, "revoked_key", "this API key has been revoked")
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
        first: set[str] = set()
        rejected: list[str] = []
        for c in [check_event(e, max_bytes) for e in events]:
            if isinstance(c, Rejected):
                results.append({"id": c.id, "status": "rejected", "reason": c.reason, "retryable": False})
                rejected.append(c.reason)
            elif c.id in first:  # the same event twice in one batch: stored once
                results.append({"id": c.id, "status": "duplicate"})
            else:
                first.add(c.id)
                rows.append(c)
                results.append({"id": c.id, "status": "accepted"})
        duplicates = self.store.insert_events(rec.project, rows) if rows else set()
        if duplicates:
            for r in results:
                if r["status"] == "accepted" and r["id"] in duplicates:
                    r["status"] = "duplicate"
        self._note_loss(rec, check_loss(client))
        accepted = len(rows) - len(duplicates)
        duplicate = len(results) - accepted - len(rejected)
        self.metrics.events(accepted, duplicate, rejected)
        return {"batch_id": batch_id, "accepted": accepted, "duplicate": duplicate, "rejected": len(rejected),
                "results": results}

    def _note_loss(self, rec: KeyRecord, loss: dict[str, int] | None) -> None:
        if loss is None or self._last_loss.get(rec.key_id) == loss:
            return
        self.store.record_loss(rec.key_id, rec.project, loss)
        self._last_loss[rec.key_id] = loss

    # -- reading ---------------------------------------------------------------------------------------
    def list_traces(self, project: str, flt: TraceFilter, limit: int, offset: int, status: str | None,
                    name: str | None) -> dict[str, Any]:
        if status is None and name is None:
            ids = self.store.trace_ids(project, flt, limit + 1, offset)
            more = len(ids) > limit
            summaries = self._summaries(project, ids[:limit])
        else:  # status and root name come from folding events: filter while paging through traces
            wanted = (name or "").lower()
            matches: list[dict[str, Any]] = []
            scanned, chunk = 0, 200
            while len(matches) < offset + limit + 1:
                ids = self.store.trace_ids(project, flt, chunk, scanned)
                scanned += len(ids)
                matches += [s for s in self._summaries(project, ids)
                            if (status is None or s["status"] == status) and wanted in s["name"].lower()]
                if len(ids) < chunk:
                    break
            more = len(matches) > offset + limit
            summaries = matches[offset:offset + limit]
        return {"traces": summaries, "next_offset": offset + limit if more else None}

    def _summaries(self, project: str, ids: list[str]) -> list[dict[str, Any]]:
        by_trace = self.store.events_of(project, ids)
        return [asdict(summarize(t, by_trace[t])) for t in ids if by_trace.get(t)]

    def trace(self, project: str, trace_id: str) -> dict[str, Any] | None:
        if "\x00" in trace_id:  # cannot be stored (ids are validated), and PostgreSQL text refuses NUL
            return None
        events = self.store.events_of(project, [trace_id])[trace_id]
        if not events:
            return None
        return {"trace_id": trace_id, "events": events, "spans": [_span_dict(s) for s in tree(events)]}

    def session(self, project: str, session_id: str) -> dict[str, Any] | None:
        if "\x00" in session_id:
            return None
        ids = self.store.trace_ids(project, TraceFilter(session_id=session_id), 1000, 0)
        return {"session_id": session_id, "traces": self._summaries(project, ids)} if ids else None

    def metrics_text(self) -> str:
        try:
            loss = self.store.reported_loss()
        except StoreUnavailable:
            loss = []
        return self.metrics.render(loss)


_SPAN_FIELDS = [f.name for f in fields(SpanView) if f.name != "children"]


def _span_dict(s: SpanView) -> dict[str, Any]:
    d = {f: getattr(s, f) for f in _SPAN_FIELDS}
    d["duration_ms"] = s.duration_ms
    d["children"] = [_span_dict(c) for c in s.children]
    return d


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
        col.store.close()

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

    async def auth(api_key: str | None) -> KeyRecord:
        if col.local_keys:
            return col.authenticate(api_key)
        return await run_in_threadpool(col.authenticate, api_key)

    @app.post("/v1/events", response_model=None, responses={200: {"model": IngestResponse}, **_ERRORS},
              summary="Ingest a signed batch of events", openapi_extra=_INGEST_OPENAPI)
    async def post_events(request: Request) -> Response:
        # Headers are read by hand (documented in _INGEST_OPENAPI): this is the hot path, and
        # FastAPI's per-parameter validation would cost more than the checks themselves.
        h = request.headers
        rec = await auth(_bearer_token(h.get("authorization")))
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
        result = await run_in_threadpool(col.ingest, rec, ts, signature, body, encoding, h.get(wire.H_BATCH_ID))
        return _json_response(result)

    @app.get("/v1/traces", response_model=None, responses={200: {"model": TraceList}, **_ERRORS},
             summary="List the project's traces, newest first")
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
    ) -> Response:
        rec = await auth(creds.credentials if creds else None)
        if any("\x00" in v for v in (session_id, user_id, name) if v):
            raise WireError(400, "bad_request", "query values cannot contain NUL")
        flt = TraceFilter(start, end, session_id, user_id)
        return _json_response(await run_in_threadpool(col.list_traces, rec.project, flt, limit, offset, status, name))

    @app.get("/v1/traces/{trace_id}", response_model=None, responses={200: {"model": TraceEvents}, **_ERRORS},
             summary="A trace's raw events and its folded span tree (404 for unknown or another project's)")
    async def get_trace(trace_id: str, creds: Creds) -> Response:
        rec = await auth(creds.credentials if creds else None)
        doc = await run_in_threadpool(col.trace, rec.project, trace_id)
        if doc is None:
            raise WireError(404, "not_found", "no such trace in this project")
        return _json_response(doc)

    @app.get("/v1/sessions/{session_id}", response_model=None, responses={200: {"model": SessionTraces}, **_ERRORS},
             summary="A session's trace summaries")
    async def get_session(session_id: str, creds: Creds) -> Response:
        rec = await auth(creds.credentials if creds else None)
        doc = await run_in_threadpool(col.session, rec.project, session_id)
        if doc is None:
            raise WireError(404, "not_found", "no such session in this project")
        return _json_response(doc)

    @app.get("/healthz", response_model=None, summary="Liveness and storage check (no auth)")
    async def healthz() -> Response:
        try:
            await run_in_threadpool(col.store.ping)
        except StoreUnavailable:
            return _json_response({"status": "unavailable"}, 503, {"Retry-After": "1"})
        return _json_response({"status": "ok"})

    @app.get("/metrics", response_model=None, summary="Prometheus text exposition (no auth)")
    async def metrics() -> Response:
        text = await run_in_threadpool(col.metrics_text)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for `serve --workers N`: each worker process builds its app from the env."""
    return create_app(ServerConfig.from_json(os.environ[CONFIG_ENV]))
