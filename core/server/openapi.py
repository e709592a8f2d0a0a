"""The collector API's documented shapes: response models, the ingest request schema and the trace
endpoint's description. For the OpenAPI spec (and the fuzz tests that generate requests from it);
responses are built directly, for speed, not through these models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from tracewire import wire
from tracewire.read.fold import TraceSummary
from tracewire.server.reads import DEFAULT_SPAN_PAGE, MAX_NESTING, MAX_PROBLEMS_SHOWN, MAX_SPAN_PAGE


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


class TraceIdMatch(BaseModel):
    trace_id: str
    short_id: str
    name: str | None


class TraceIdMatches(BaseModel):
    prefix: str
    count: int
    traces: list[TraceIdMatch]  # at most 6: enough to tell the count is more than one


class TraceProblem(BaseModel):
    event_id: str | None
    reason: str


# -- scores ---------------------------------------------------------------------------------------------
class ScoreRecord(BaseModel):
    """A score (docs/scores.md): one of trace_id (with span_id for a span) or session_id is its target."""

    id: str
    name: str
    value: bool | int | float | None
    label: str | None
    comment: str | None
    trace_id: str | None
    span_id: str | None
    session_id: str | None
    source: str
    metadata: dict[str, Any] | None
    time: int


class ScoreList(BaseModel):
    scores: list[ScoreRecord]


class TraceEvents(BaseModel):
    trace_id: str
    events: list[dict[str, Any]]
    spans: list[dict[str, Any]]
    span_count: int
    next_cursor: str | None
    problems: list[TraceProblem]
    problem_count: int
    scores: list[ScoreRecord] = []  # the trace's and its spans'


class SessionTraces(BaseModel):
    session_id: str
    traces: list[TraceSummary]
    scores: list[ScoreRecord] = []  # the session's own


class SessionTotals(BaseModel):
    session_id: str
    traces: int
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    errors: int
    first_ns: int | None
    last_ns: int | None
    users: list[str]


class SessionList(BaseModel):
    sessions: list[SessionTotals]


ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (400, 401, 403, 404, 413, 415, 429, 503)
}
# A score record rides in the same `events` list (docs/scores.md, "Wire"): schema 2, type "score".
# A collector that knows only schema 1 rejects it per item (`unsupported_schema`), never stores it as an event.
SCORE_RECORD_SCHEMA = {
    "type": "object",
    "required": ["id", "schema", "type", "name", "time"],
    "properties": {
        "id": {"type": "string"}, "schema": {"type": "integer", "enum": [2]}, "type": {"type": "string", "enum": ["score"]},
        "name": {"type": "string"}, "value": {"type": ["number", "boolean", "null"]},
        "label": {"type": ["string", "null"]}, "comment": {"type": ["string", "null"]},
        "trace_id": {"type": ["string", "null"]}, "span_id": {"type": ["string", "null"]},
        "session_id": {"type": ["string", "null"]}, "source": {"type": ["string", "null"]},
        "metadata": {"type": ["object", "null"]}, "time": {"type": "integer", "minimum": 0},
    },
}
BATCH_SCHEMA = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {"type": "array", "items": {"anyOf": [{
            "type": "object",
            "required": ["id", "schema", "type", "trace_id", "span_id", "time"],
            "properties": {
                "id": {"type": "string"}, "schema": {"type": "integer", "enum": [1]}, "type": {"type": "string"},
                "kind": {"type": ["string", "null"]}, "phase": {"type": ["string", "null"]}, "trace_id": {"type": "string"},
                "span_id": {"type": "string"}, "parent_span_id": {"type": ["string", "null"]},
                "session_id": {"type": ["string", "null"]}, "user_id": {"type": ["string", "null"]},
                "name": {"type": ["string", "null"]}, "framework": {"type": ["string", "null"]},
                "time": {"type": "integer", "minimum": 0}, "seq": {"type": ["integer", "null"]},
                "attributes": {"type": ["object", "null"]}, "metadata": {"type": ["object", "null"]},
                "tags": {"type": ["array", "null"], "items": {"type": "string"}},
                "error": {"type": ["object", "null"], "properties": {
                    k: {"type": ["string", "null"]} for k in ("type", "message", "stacktrace")}},
                "input": {}, "output": {},
            },
        }, SCORE_RECORD_SCHEMA]}},
        "client": {"type": "object", "properties": {
            "sdk": {"type": "string"}, "version": {"type": "string"},
            "loss": {"type": "object", "additionalProperties": {"type": "integer"}},
        }},
    },
}


INGEST_OPENAPI: dict[str, Any] = {
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
    "requestBody": {"required": True, "content": {"application/json": {"schema": BATCH_SCHEMA}}},
}

TRACE_DESCRIPTION = f"""
A trace's spans, folded from its events, with the raw events of those spans.

**Paging.** Spans come in display order (depth first, children by start time), `limit` per page
(default {DEFAULT_SPAN_PAGE}, at most {MAX_SPAN_PAGE}). When more remain, `next_cursor` is set: pass it as
`cursor` for the next page; it is null on the last page. `span_count` is the trace's total. `events` holds
the events of this page's spans (events that belong to no span come with the first page).

**Shape.** `spans` is a forest: a span sits in its parent's `children` when both are on this page,
otherwise (parent on an earlier page, unknown parent, or nesting deeper than {MAX_NESTING}) at the top level.
Every span carries `parent_span_id` and `depth` (0 for a root), so the tree can be rebuilt from a flat walk.
A span whose parent chain loops back to itself is shown at the top level with `"cycle": true`.

**Problems.** Stored events that cannot be read, or fields of the wrong type, never fail the request:
they are listed in `problems` (`event_id`, `reason`; first {MAX_PROBLEMS_SHOWN}, `problem_count` in all) and
the affected span lists them in its own `problems`.
"""
