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

from . import _json
from .event import CONTENT_FIELDS, Event
from .jsonsafe import Sanitizer
from .redact import Redactor

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
            and not self._redactor.may_hold_secret(text)
            and not self._redactor.text_may_name_secret_key(text)
        ):
            return _json.RawJSON(text)
        if type(value) is _json.Snapshot:
            value = _json.loads(value.text)
        return self._sanitizer.value(value, mask=mask)


class CapEventSize:
    """Cuts the largest content fields until the event fits `max_event_bytes`."""

    def __init__(self, max_event_bytes: int) -> None:
        self._max = max_event_bytes

    def __call__(self, event: Event) -> Event:
        size = _content_size(event)
        if size <= self._max:
            return event
        budget = self._max - 2048  # envelope headroom
        fields = sorted(
            (f for f in (*CONTENT_FIELDS, "attributes") if event.get(f) is not None),
            key=lambda f: _size(event[f]),
            reverse=True,
        )
        for field in fields:
            if size <= budget:
                break
            field_size = _size(event[field])
            keep = max(0, budget - (size - field_size))
            text = event[field].text if type(event[field]) is _json.RawJSON else _json.dumps_strict(event[field])
            event[field] = {"$truncated": text[: keep // 2], "original_bytes": field_size}
            size = size - field_size + min(field_size, keep // 2 + 64)
        return event


def _size(value: Any) -> int:
    return len(value) if type(value) is _json.RawJSON else len(_json.dumps_strict(value))


def _content_size(event: Event) -> int:
    return sum(_size(event[f]) for f in (*CONTENT_FIELDS, "attributes") if event.get(f) is not None)


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
