"""What the queue holds for one event, and the envelope the worker builds from it.

On the caller's thread an event is kept compact: a spec (a span event: the span, its phase, time,
seq, attributes, error; a point: its own fields) and its content as JSON text, or pickled when it
is not plain data. The worker makes the envelope dict from the spec once, when it prepares it.
"""

from __future__ import annotations

import pickle
from typing import Any

from tracewire.model import codec
from tracewire.model.codec import Snapshot
from tracewire.model.event import SCHEMA, Event, point_kind
from tracewire.model.ids import new_event_id, new_span_id


class Queued:
    """One event between the caller and the pipeline."""

    __slots__ = ("event", "blob", "input_json", "output_json", "metadata_json", "size", "line", "spooled")

    # Three text slots, not a tuple: one object less per event for the garbage collector.
    def __init__(
        self, event: Any, blob: bytes | None, size: int, input_json: str | None = None,
        output_json: str | None = None, metadata_json: str | None = None,
    ) -> None:
        self.event = event  # the spec, until the worker replaces it with the envelope
        self.blob = blob  # input, output, metadata pickled, when they are not plain JSON
        self.input_json = input_json
        self.output_json = output_json
        self.metadata_json = metadata_json
        self.size = size  # bytes it counts against queue_max_bytes
        self.line: str | None = None  # set once prepared and serialized (durable / spill path)
        self.spooled = False  # already committed to the spooling sinks


def envelope(spec: tuple[Any, ...]) -> Event:
    """The envelope of a span event `(span, phase, time, seq, attributes, error)` or of a point
    `(None, type, time, seq, attributes, error, trace_id, parent_id, session_id, user_id, name,
    framework, tags)`."""
    if spec[0] is None:
        _, etype, now, seq, attrs, error, trace_id, parent_id, session_id, user_id, name, fw, tags = spec
        return {
            "id": new_event_id(now), "schema": SCHEMA, "type": etype, "kind": point_kind(etype),
            "phase": "point", "trace_id": trace_id, "span_id": new_span_id(), "parent_span_id": parent_id,
            "session_id": session_id, "user_id": user_id, "name": name, "framework": fw, "time": now,
            "seq": seq, "attributes": attrs or {}, "error": error, "tags": tags, "metadata": None,
        }
    span, phase, now, seq, attrs, error = spec
    return {
        "id": new_event_id(now), "schema": SCHEMA, "type": f"{span.kind}.{phase}", "kind": span.kind,
        "phase": phase, "trace_id": span.trace_id, "span_id": span.span_id,
        "parent_span_id": span.parent_span_id, "session_id": span.session_id, "user_id": span.user_id,
        "name": span.name, "framework": span.framework, "time": now, "seq": seq,
        "attributes": attrs or {}, "error": error, "tags": span.tags, "metadata": None,
    }


def unsnap(value: Any) -> Any:
    """Content an adapter serialized itself, back to data (for the pickle and sanitizer paths)."""
    return codec.loads(value.text) if type(value) is Snapshot else value


def restore_content(item: Queued, ev: Event) -> Exception | None:
    """Put the item's content into its envelope; the error when it could not be restored."""
    ti, to, tm = item.input_json, item.output_json, item.metadata_json
    if ti is not None or to is not None or tm is not None:
        ev["input"] = None if ti is None else Snapshot(ti)
        ev["output"] = None if to is None else Snapshot(to)
        ev["metadata"] = None if tm is None else Snapshot(tm)
    elif item.blob is not None:
        try:
            ev["input"], ev["output"], ev["metadata"] = pickle.loads(item.blob)
        except Exception as exc:  # noqa: BLE001
            ev["input"] = ev["output"] = "<content unavailable: snapshot could not be restored>"
            ev["metadata"] = None  # an object or nothing, as the envelope says
            return exc
    for key in ("input", "output"):
        if key in ev and ev[key] is None:
            del ev[key]
    return None
