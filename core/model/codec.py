"""JSON encoding for events: orjson when installed (`tracewire[fast]`), the stdlib otherwise.

Content fields arrive as `RawJSON` (already serialized, already safe): they are spliced into
the envelope instead of being decoded and encoded again.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

try:
    import orjson as _orjson

    if not hasattr(_orjson, "Fragment"):  # orjson < 3.9.12 cannot splice pre-serialized JSON
        _orjson = None  # type: ignore[assignment]
except ImportError:  # pragma: no cover - exercised when the extra is absent
    _orjson = None  # type: ignore[assignment]


class RawJSON:
    """Serialized JSON text that is known to be safe."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __len__(self) -> int:
        return len(self.text)

    def __repr__(self) -> str:
        return f"RawJSON({self.text!r})"

    def decode(self) -> Any:
        return loads(self.text)


_RAW_FIELDS = ("input", "output", "metadata", "error", "attributes")


class Snapshot:
    """Content serialized on the caller's thread: immutable, but not yet scrubbed or capped."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_std_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

if _orjson is not None:
    _ORJSON_OPTS = _orjson.OPT_NON_STR_KEYS

    def dumps_strict(obj: Any) -> str:
        """Serialize plain JSON data; raises on anything that is not (the fast path's test)."""
        return _orjson.dumps(obj, option=_ORJSON_OPTS).decode("utf-8")

    def dumps_event(event: dict[str, Any]) -> str:
        out = None
        for k in _RAW_FIELDS:  # only these hold pre-serialized text
            v = event.get(k)
            if type(v) is RawJSON:
                if out is None:
                    out = dict(event)
                out[k] = _orjson.Fragment(v.text)
        return _orjson.dumps(event if out is None else out, option=_ORJSON_OPTS).decode("utf-8")

    def loads(text: str | bytes) -> Any:
        return _orjson.loads(text)

    # Serialized JSON for `dumps_event` to splice, when the text is known safe: orjson's own type,
    # spared the copy of the event that RawJSON fields cost (the worker's fast path).
    fragment: Callable[[str], Any] = _orjson.Fragment

    def snapshot(obj: Any) -> str:
        """Plain JSON data (and dataclasses, datetimes, UUIDs, enums) to text, at C speed; raises
        on anything else (pydantic models, cycles, huge ints), which then takes the pickle path."""
        return _orjson.dumps(obj, option=_ORJSON_OPTS).decode("utf-8")

    # `snapshot`'s JSON as bytes, in one C call (no Python frame): for a copy `loads` reads back
    snapshot_bytes: Callable[[Any], bytes] | None = functools.partial(_orjson.dumps, option=_ORJSON_OPTS)

    _SERIALIZE_OPTS = _ORJSON_OPTS | _orjson.OPT_PASSTHROUGH_DATACLASS

    def serialize_with(obj: Any, default: Callable[[Any], Any]) -> Snapshot:
        """An adapter's content snapshot in one C pass: `default` turns the framework objects orjson
        meets (dataclasses included) into plain data, and raises TypeError for anything it does
        not know; the adapter then hands the value over as is and the core takes its general path."""
        return Snapshot(_orjson.dumps(obj, default=default, option=_SERIALIZE_OPTS).decode("utf-8"))

else:  # pragma: no cover

    def dumps_strict(obj: Any) -> str:
        return _std_encoder.encode(obj)

    def dumps_event(event: dict[str, Any]) -> str:
        raw = [(k, v) for k, v in event.items() if type(v) is RawJSON]
        if not raw:
            return _std_encoder.encode(event)
        head = _std_encoder.encode({k: v for k, v in event.items() if type(v) is not RawJSON})
        tail = ",".join(f"{_std_encoder.encode(k)}:{v.text}" for k, v in raw)
        return f"{head[:-1]},{tail}}}" if head != "{}" else f"{{{tail}}}"

    def loads(text: str | bytes) -> Any:
        return json.loads(text)

    snapshot = None  # type: ignore[assignment]  # without orjson, snapshots are pickles
    snapshot_bytes = None
    serialize_with = None  # type: ignore[assignment]
    fragment = RawJSON


HAS_ORJSON = _orjson is not None
