"""The processor pipeline: small `event -> event | None` callables, run in order.

Two stages, by where they must run:
- on the caller's thread (the hot path), only what needs the caller's context: enrichment from
  context (session, parent span) and trace sampling, both done while the event is built, plus a
  snapshot of content (a C-speed pickle) so later mutation cannot rewrite what happened;
- on the worker thread, before any sink, spool or wire sees the event: JSON-safety, secret
  scrubbing, the user's mask, size caps, then the user's own processors (`init(processors=[...])`).

Keeping the expensive content work off the caller's thread is what holds `record()` to a few
microseconds; nothing is written anywhere before it has run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tracewire.model import codec as _json
from tracewire.model.event import CONTENT_FIELDS, Event
from tracewire.pipeline.redact import WITHHELD, Redactor
from tracewire.pipeline.sanitize import Sanitizer, truncate

Processor = Callable[[Event], "Event | None"]
log = logging.getLogger("tracewire")


class SanitizeContent:
    """JSON-safety + scrub + mask + per-string cap for content fields and attributes.

    Fast path: content that serializes as plain JSON, holds no secret hint and no long string
    is kept as its serialized text. Anything else takes the full walk.
    """

    def __init__(self, sanitizer: Sanitizer, redactor: Redactor, max_string: int, masking: bool) -> None:
        self._sanitizer = sanitizer
        self._redactor = redactor
        self._max = max_string
        self._masking = masking

    def __call__(self, event: Event) -> Event:
        for field in CONTENT_FIELDS:
            value = event.get(field)
            if value is not None and type(value) is not _json.RawJSON:
                event[field] = self._content(value, mask=True)
        attrs = event.get("attributes")
        if attrs:
            event["attributes"] = self._content(attrs, mask=False)
        scrub_envelope(event, self._redactor, self._max)
        comment = event.get("comment")
        if type(comment) is str:  # a score's comment: free text that may quote secrets, as content
            event["comment"] = self._sanitizer.text(comment)
        return event

    def _content(self, value: Any, mask: bool) -> Any:
        masking = mask and self._masking
        text: str | None = None
        if type(value) is _json.Snapshot:  # serialized on the caller's thread: plain JSON already
            text = value.text
            if masking:
                return self._sanitizer.value(_json.loads(text), mask=True)
        elif not masking:
            try:
                text = _json.dumps_strict(value)
            except Exception:  # noqa: BLE001 - not plain JSON: take the walk
                text = None
        if (
            text is not None
            and len(text) <= self._max
            and not self._redactor.may_need_scrubbing(text)
        ):
            return _json.RawJSON(text)
        if type(value) is _json.Snapshot:
            value = _json.loads(value.text)
        return self._sanitizer.value(value, mask=mask)


class CapEventSize:
    """Cuts the largest content fields until the event's serialized UTF-8 fits `max_event_bytes`.
    A cut field becomes `{"$truncated": <start of its JSON text>, "original_bytes": n}`."""

    def __init__(self, max_event_bytes: int) -> None:
        self._max = max_event_bytes

    def __call__(self, event: Event) -> Event:
        size = _content_size(event)
        if size <= self._max - _ENVELOPE_ROOM:
            return event
        envelope = utf8_len(_json.dumps_strict({k: v for k, v in event.items() if k not in _CUTTABLE}))
        budget = self._max - envelope - 64
        fields = sorted((f for f in _CUTTABLE if event.get(f) is not None), key=lambda f: _size(event[f]), reverse=True)
        for field in fields:
            if size <= budget:
                break
            field_size = _size(event[field])
            keep = max(0, budget - (size - field_size) - 64)
            text = event[field].text if type(event[field]) is _json.RawJSON else _json.dumps_strict(event[field])
            cut = cut_utf8(text, keep)
            stub = {"$truncated": cut, "original_bytes": field_size}
            while _size(stub) > keep + 64 and cut:  # escaping grew it: cut again
                cut = cut_utf8(cut, utf8_len(cut) // 2)
                stub["$truncated"] = cut
            event[field] = stub
            size = size - field_size + _size(stub)
        return event


_CUTTABLE = (*CONTENT_FIELDS, "attributes")
_ENVELOPE_ROOM = 2048  # below this much under the cap, nothing needs measuring


def utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def cut_utf8(text: str, limit: int) -> str:
    """The longest start of `text` whose UTF-8 takes at most `limit` bytes (no split character)."""
    if utf8_len(text) <= limit:
        return text
    return text.encode("utf-8", "surrogatepass")[:limit].decode("utf-8", "ignore")


def _size(value: Any) -> int:
    return utf8_len(value.text if type(value) is _json.RawJSON else _json.dumps_strict(value))


def _content_size(event: Event) -> int:
    return sum(_size(event[f]) for f in _CUTTABLE if event.get(f) is not None)


# Envelope fields a caller or framework names (and a score's label): scrubbed and capped like content.
ENVELOPE_TEXT = ("type", "kind", "phase", "name", "session_id", "user_id", "framework", "label")


def scrub_envelope(event: Event, redactor: Redactor, max_string: int) -> None:
    for field in ENVELOPE_TEXT:
        v = event.get(field)
        if isinstance(v, str):
            event[field] = _scrub_one(v, redactor, max_string)
    tags = event.get("tags")
    if tags:
        event["tags"] = tuple(_scrub_one(t, redactor, max_string) if isinstance(t, str) else t for t in tags)


def _scrub_one(text: str, redactor: Redactor, max_string: int) -> str:
    try:
        text = redactor.scrub_text(str.__str__(text))
        return truncate(text, max_string)
    except Exception:  # noqa: BLE001 - privacy fails closed
        return WITHHELD


def withhold(event: Event, redactor: Redactor, max_string: int, reason: str) -> Event:
    """What a privacy stage that failed leaves of an event: its envelope, scrubbed, and none of
    its content. Built from scratch so nothing of the half-processed event can slip through."""
    out: Event = {k: event.get(k) for k in _ENVELOPE_KEYS if k in event}
    scrub_envelope(out, redactor, max_string)
    out["tags"] = list(out.get("tags") or ())  # as `DecodeRaw` gives user processors
    out["attributes"] = {"tracewire.withheld": reason}
    error = event.get("error")
    if error is not None:
        out["error"] = {"type": "Withheld", "message": WITHHELD, "stacktrace": None}
    return out


_ENVELOPE_KEYS = (
    "id", "schema", "type", "kind", "phase", "trace_id", "span_id", "parent_span_id", "session_id",
    "user_id", "name", "framework", "time", "seq", "tags",
)


class DecodeRaw:
    """Gives user processors plain data instead of the fast path's serialized text."""

    def __call__(self, event: Event) -> Event:
        for k, v in event.items():
            if type(v) is _json.RawJSON:
                event[k] = v.decode()
        event["tags"] = list(event.get("tags") or ())  # a tuple on the hot path; editable here
        return event


def default_processors(
    redactor: Redactor, sanitizer: Sanitizer, max_string: int, max_event_bytes: int, masking: bool
) -> list[Processor]:
    return [SanitizeContent(sanitizer, redactor, max_string, masking), CapEventSize(max_event_bytes)]
