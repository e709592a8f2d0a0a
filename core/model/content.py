"""Content held for `Client.defer`red work: fixed when a hook fires, converted on the worker.

A hook on the user's hot path cannot afford to convert and serialize what it records, but what
it records must not change afterwards: a node that appends to its state, a caller that reuses a
dict. `hold` copies the plain containers (dict, list, tuple) right away and keeps every other
object by reference, for the worker to convert later. The objects kept are the framework's own
values — messages, documents, results — which the frameworks treat as immutable once they are
handed to a callback. Long lists of plain data are serialized at C speed instead of copied.
"""

from __future__ import annotations

from typing import Any, Protocol

from tracewire.model import codec as _json
from tracewire.model.codec import Snapshot

# A list or tuple this long is tried as plain JSON first (one C pass) before being copied.
_SERIALIZE_FROM = 32
_MAX_DEPTH = 16
_PLAIN = frozenset({str, int, float, bool, type(None)})
_COPIED = frozenset({dict, list, tuple})
# What held content counts against `queue_max_bytes`: the copies are shallow and the objects held
# are alive in the framework anyway, so a flat estimate per value, or a string's own length.
HELD_BYTES = 256


def hold(value: Any, depth: int = 0) -> Any:
    """`value` with its containers copied as they are now; other objects are kept as they are."""
    t = type(value)
    if t in _PLAIN or depth > _MAX_DEPTH:
        return value
    if t is list or t is tuple:
        if len(value) >= _SERIALIZE_FROM and _json.snapshot is not None:
            try:
                return Snapshot(_json.snapshot(value))
            except Exception:  # noqa: BLE001 - holds objects JSON cannot take: copy it
                pass
        # Copied in C, then fixed up in place: loops, not comprehensions (each is one more
        # Python call, and a hook's cost follows its calls)
        held = list(value)
        depth += 1
        for i, v in enumerate(held):
            if type(v) in _COPIED or isinstance(v, dict):
                held[i] = hold(v, depth)
        return held if t is list else tuple(held)
    if isinstance(value, dict):  # OrderedDict, LangChain's AddableDict too: recorded as a plain mapping
        out = dict(value)
        depth += 1
        for k, v in out.items():  # replacing values, not keys: iteration stays valid
            if type(v) not in _PLAIN and (type(v) in _COPIED or isinstance(v, dict)):
                out[k] = hold(v, depth)
        return out
    return value


# Held values that count by their length; every other held value counts HELD_BYTES.
SIZED = frozenset({str, Snapshot})


def held_size(value: Any) -> int:
    """Bytes to count for held content in the queue (see HELD_BYTES)."""
    t = type(value)
    if t is str:
        return len(value)
    if t is Snapshot:
        return len(value.text)
    return 0 if value is None else HELD_BYTES


class _Sanitizer(Protocol):
    def value(self, value: Any, mask: bool = ...) -> Any: ...


def freeze(value: Any, sanitizer: _Sanitizer) -> Any:
    """`Client.frozen`: its JSON text (a str) when it is plain data, else a JSON-safe copy in a
    1-tuple; neither is tracked by the garbage collector while it waits."""
    if type(value) is Snapshot:
        return value.text
    if _json.snapshot is not None:
        try:
            return _json.snapshot(value)
        except Exception:  # noqa: BLE001 - not plain data: copy it safely instead
            pass
    return (sanitizer.value(value, mask=False),)


def thaw(frozen: Any) -> Any:
    """`Client.frozen` content back to what `start_span` and `Span.end` take."""
    t = type(frozen)
    return Snapshot(frozen) if t is str else frozen[0] if t is tuple else frozen
