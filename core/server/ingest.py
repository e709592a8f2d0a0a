"""Ingestion steps that need no web framework: inflate with a cap, parse, validate each event.

Order of checks (cheap first, nothing inflated or parsed before the signature is verified) lives
in `app.py`; this module holds the pieces so they are testable on their own.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from .store import EventRow
from .wire import Limits


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
    d = zlib.decompressobj(16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS)
    out = bytearray()
    data = body
    try:
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


@dataclass
class Outcome:
    """Per-event result in request order; `row` set when the event is valid and is a candidate."""

    id: Any
    status: str  # accepted | duplicate | rejected
    reason: str | None = None
    row: EventRow | None = None

    def result(self) -> dict[str, Any]:
        if self.status == "rejected":
            return {"id": self.id, "status": "rejected", "reason": self.reason, "retryable": False}
        return {"id": self.id, "status": self.status}


_KEY_FIELDS = ("id", "type", "trace_id", "span_id")
_OPTIONAL_KEY_FIELDS = ("parent_span_id", "session_id", "user_id")
_MAX_KEY_CHARS = 256  # ids are indexed: keep them to sane sizes (btree rows have a size cap)
_MAX_TIME = 2**63 - 1


def _bad_key(v: Any) -> bool:
    return not isinstance(v, str) or not v or len(v) > _MAX_KEY_CHARS or "\x00" in v


def check_event(e: Any, limits: Limits) -> Outcome:
    """Validate one envelope; a valid event comes back with the row to store (status 'accepted'
    until the store says it was a duplicate)."""
    if not isinstance(e, dict):
        return Outcome(None, "rejected", "not_an_object")
    eid = e.get("id")
    shown_id = eid if isinstance(eid, str) and len(eid) <= _MAX_KEY_CHARS else None
    if "schema" not in e:
        return Outcome(shown_id, "rejected", "missing_field:schema")
    if e["schema"] != 1 or isinstance(e["schema"], bool):
        return Outcome(shown_id, "rejected", "unsupported_schema")
    for f in (*_KEY_FIELDS, "time"):
        if e.get(f) is None:
            return Outcome(shown_id, "rejected", f"missing_field:{f}")
    for f in _KEY_FIELDS:
        if _bad_key(e[f]):
            return Outcome(shown_id, "rejected", f"invalid_field:{f}")
    for f in _OPTIONAL_KEY_FIELDS:
        if e.get(f) is not None and _bad_key(e[f]):
            return Outcome(shown_id, "rejected", f"invalid_field:{f}")
    t = e["time"]
    if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t <= _MAX_TIME:
        return Outcome(shown_id, "rejected", "invalid_field:time")
    text = [e.get(f) for f in ("kind", "phase", "name")]
    if any(v is not None and (not isinstance(v, str) or "\x00" in v) for v in text):
        return Outcome(shown_id, "rejected", "invalid_field:kind/phase/name")
    try:
        body = orjson.dumps(e)
    except (TypeError, orjson.JSONEncodeError):
        return Outcome(shown_id, "rejected", "invalid_value")
    if len(body) > limits.max_event_bytes:
        return Outcome(shown_id, "rejected", "event_too_large")
    row = EventRow(str(eid), e["trace_id"], e["span_id"], e.get("parent_span_id"), e["type"], text[0], text[1], text[2],
                   e.get("session_id"), e.get("user_id"), t, body.decode("utf-8"))
    return Outcome(eid, "accepted", row=row)


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
