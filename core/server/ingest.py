"""Ingestion steps that need no web framework: inflate with a cap, parse, validate each event.

Order of checks (cheap first, nothing inflated or parsed before the signature is verified) lives
in `app.py`; this module holds the pieces so they are testable on their own.
"""

from __future__ import annotations

import zlib
from typing import Any, NamedTuple

import orjson

from tracewire.model.score import SCORE_SCHEMA, SCORE_TYPE, check_record
from tracewire.server.store import EventRow, ScoreRow
from tracewire.wire import Limits


class WireError(Exception):
    """A whole-request refusal: HTTP status, protocol error code, human message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


_INFLATE_CHUNK = 64 * 1024


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """Decode `Content-Encoding` with at most `limit` output bytes ever held: a gzip bomb is refused
    after inflating limit+1 bytes, never more."""
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        if len(body) > limit:
            raise WireError(413, "body_too_large", f"body is larger than {limit} bytes")
        return body
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise WireError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported (use gzip)")
    wbits = zlib.MAX_WBITS if enc == "deflate" else 16 + zlib.MAX_WBITS
    out = bytearray()
    data = body
    try:
        while True:  # one pass per gzip member (a gzip file may hold several)
            d = zlib.decompressobj(wbits)
            while True:
                chunk = d.decompress(data, min(_INFLATE_CHUNK, limit + 1 - len(out)))
                out += chunk
                if len(out) > limit:
                    raise WireError(413, "body_too_large", f"inflated body is larger than {limit} bytes")
                data = d.unconsumed_tail
                if d.eof or (not data and not chunk):
                    break
            if not d.eof:
                raise WireError(400, "malformed_json", "compressed body is truncated")
            data = d.unused_data
            if not data or enc == "deflate":
                break
    except zlib.error as exc:
        raise WireError(400, "malformed_json", f"compressed body cannot be inflated: {exc}") from None
    return bytes(out)


def parse_batch(raw: bytes, limits: Limits) -> tuple[list[Any], dict[str, Any] | None]:
    """The batch's `events` list and optional `client` object, or a 400/413 WireError."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WireError(400, "malformed_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise WireError(400, "bad_batch", 'body must be a JSON object with an "events" list')
    if "schema" in doc and doc["schema"] != 1:
        raise WireError(400, "unsupported_schema", f"batch schema {doc['schema']!r} is not supported (1 is)")
    events = doc["events"]
    if len(events) > limits.max_events:
        raise WireError(413, "too_many_events", f"{len(events)} events in one batch; the limit is {limits.max_events}")
    client = doc.get("client")
    return events, client if isinstance(client, dict) else None


class Rejected(NamedTuple):
    id: str | None
    reason: str


_MAX_KEY_CHARS = 256  # ids are indexed: keep them to sane sizes (btree rows have a size cap)
_MAX_TIME = 2**63 - 1


def check_event(e: Any, max_event_bytes: int) -> EventRow | Rejected:
    """The row to store for a valid envelope, else why it is rejected. The fast path covers well-formed
    events in one expression; anything else gets the field-by-field check with a precise reason."""
    if type(e) is dict:
        eid, tid, sid, typ, t = e.get("id"), e.get("trace_id"), e.get("span_id"), e.get("type"), e.get("time")
        ses, usr = e.get("session_id"), e.get("user_id")
        if (type(eid) is str and type(tid) is str and type(sid) is str and type(typ) is str and type(t) is int
                and type(e.get("schema")) is int and e["schema"] == 1
                and 0 < len(eid) <= _MAX_KEY_CHARS and 0 < len(tid) <= _MAX_KEY_CHARS
                and 0 < len(sid) <= _MAX_KEY_CHARS and 0 < len(typ) <= _MAX_KEY_CHARS and 0 <= t <= _MAX_TIME
                and (ses is None or (type(ses) is str and 0 < len(ses) <= _MAX_KEY_CHARS))
                and (usr is None or (type(usr) is str and 0 < len(usr) <= _MAX_KEY_CHARS))
                and _optional_field_problem(e) is None):
            try:
                body = orjson.dumps(e)
            except (TypeError, orjson.JSONEncodeError):
                return Rejected(eid, "invalid_value")
            if len(body) <= max_event_bytes and b"\\u0000" not in body:  # NUL anywhere: look closer
                return EventRow(eid, tid, t, ses, usr, body.decode("utf-8"))
    return _check_slowly(e, max_event_bytes)


def _bad_key(v: Any) -> bool:
    return not isinstance(v, str) or not v or len(v) > _MAX_KEY_CHARS or "\x00" in v


# The envelope's other fields: each may be missing or null (the SDK sends null for no metadata, tags or
# error); when present it must have the schema's type, or reads could not fold the trace.
_OPTIONAL_STR = ("kind", "phase", "name", "framework")
_ERROR_KEYS = ("type", "message", "stacktrace")


def _optional_field_problem(e: dict[str, Any]) -> str | None:
    """The first optional envelope field whose type is wrong, else None (booleans are not integers)."""
    for f in _OPTIONAL_STR:
        v = e.get(f)
        if v is not None and type(v) is not str:
            return f
    p = e.get("parent_span_id")
    if p is not None and _bad_key(p):
        return "parent_span_id"
    v = e.get("seq")
    if v is not None and type(v) is not int:
        return "seq"
    for f in ("attributes", "metadata"):
        v = e.get(f)
        if v is not None and type(v) is not dict:
            return f
    tags = e.get("tags")
    if tags is not None and (type(tags) is not list or any(type(t) is not str for t in tags)):
        return "tags"
    err = e.get("error")
    if err is not None and (type(err) is not dict
                            or any((v := err.get(k)) is not None and type(v) is not str for k in _ERROR_KEYS)):
        return "error"
    return None


def _check_slowly(e: Any, max_event_bytes: int) -> EventRow | Rejected:
    if not isinstance(e, dict):
        return Rejected(None, "not_an_object")
    eid = e.get("id")
    shown_id = eid if isinstance(eid, str) and len(eid) <= _MAX_KEY_CHARS else None
    if "schema" not in e:
        return Rejected(shown_id, "missing_field:schema")
    if e["schema"] != 1 or type(e["schema"]) is not int:
        return Rejected(shown_id, "unsupported_schema")
    for f in ("id", "type", "trace_id", "span_id", "time"):
        if e.get(f) is None:
            return Rejected(shown_id, f"missing_field:{f}")
    for f in ("id", "type", "trace_id", "span_id"):
        if _bad_key(e[f]):
            return Rejected(shown_id, f"invalid_field:{f}")
    for f in ("session_id", "user_id"):
        if e.get(f) is not None and _bad_key(e[f]):
            return Rejected(shown_id, f"invalid_field:{f}")
    t = e["time"]
    if type(t) is not int or not 0 <= t <= _MAX_TIME:
        return Rejected(shown_id, "invalid_field:time")
    bad = _optional_field_problem(e)
    if bad is not None:
        return Rejected(shown_id, f"invalid_field:{bad}")
    try:
        body = orjson.dumps(e)
    except (TypeError, orjson.JSONEncodeError):
        return Rejected(shown_id, "invalid_value")
    if len(body) > max_event_bytes:
        return Rejected(shown_id, "event_too_large")
    return EventRow(str(eid), e["trace_id"], t, e.get("session_id"), e.get("user_id"), body.decode("utf-8"))


def check_loss(client: dict[str, Any] | None) -> dict[str, int] | None:
    """The SDK's cumulative loss counters, if well-formed (a malformed report is ignored, not fatal)."""
    loss = client.get("loss") if client else None
    if not isinstance(loss, dict) or len(loss) > 64:
        return None
    out = {}
    for reason, n in loss.items():
        if (not isinstance(n, int) or isinstance(n, bool) or n < 0 or n > _MAX_TIME or len(reason) > 64
                or "\x00" in reason):
            return None
        out[reason] = n
    return out


# -- scores -------------------------------------------------------------------------------------------
def check_score(e: dict[str, Any], max_event_bytes: int) -> ScoreRow | Rejected:
    """The row to store for a valid score record (`"type": "score"`, `"schema": 2`), else why not."""
    eid = e.get("id")
    shown_id = eid if isinstance(eid, str) and len(eid) <= _MAX_KEY_CHARS else None
    problem = check_record(e)
    if problem is not None:
        return Rejected(shown_id, problem)
    try:
        body = orjson.dumps(e)
    except (TypeError, orjson.JSONEncodeError):
        return Rejected(shown_id, "invalid_value")
    if len(body) > max_event_bytes:
        return Rejected(shown_id, "event_too_large")
    return ScoreRow(e["id"], e["name"], e.get("trace_id"), e.get("span_id"), e.get("session_id"), e["time"],
                    body.decode("utf-8"))


def check_item(e: Any, max_event_bytes: int) -> EventRow | ScoreRow | Rejected:
    """An item of a batch's `events` list: a schema-1 event, or a score record (schema 2)."""
    if type(e) is dict and e.get("type") == SCORE_TYPE and type(e.get("schema")) is int and e["schema"] == SCORE_SCHEMA:
        return check_score(e, max_event_bytes)
    return check_event(e, max_event_bytes)  # any other schema-2 record is refused there: unsupported_schema
