"""OTLP's protobuf wire format for a batch of spans, written directly: an ExportTraceServiceRequest
as bytes, from the spans the otlp sink builds (`PlainSpan` tuples), without ReadableSpans.

The opentelemetry-sdk encoder makes two protobuf objects per attribute through two Python calls
and then serializes them; writing the bytes costs a fraction of that, and attributes are most of
a GenAI span. Decoded, the bytes equal what `encode_spans` makes of the same spans (the otel tests
check this), so a receiver cannot tell the two apart.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from itertools import compress
from operator import not_
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind

log = logging.getLogger("tracewire")

_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_double = struct.Struct("<d").pack
_SMALL = [bytes((i,)) for i in range(128)]
# The varint of every length up to 4 KiB, by index (~150 KB): a length is one list index, not a
# call; past it, `_varint`.
_LEN_TABLE = 4096
_V = _SMALL + [bytes(((n & 127) | 128, n >> 7)) for n in range(128, _LEN_TABLE)]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# proto SpanKind = the API's SpanKind + 1 (0 is SPAN_KIND_UNSPECIFIED)
_KIND = {kind: _SMALL[kind.value + 1] for kind in SpanKind}
_HAS_IS_REMOTE = 0x100  # SpanFlags: the parent's is_remote is known (false: the sink's parents are local)
_MAX_KEYS = 4096  # attribute keys kept encoded (a bounded vocabulary in practice; past it, encoded each time)
_keys: dict[str, bytes] = {}
# Whole KeyValue fields of short string and int values, by field tag and (key, value): most
# attributes of a GenAI span repeat from span to span (kind, operation, provider, model, framework,
# tool name, mime type, step). Emptied when full, so that what repeats now is what it holds.
# Strings are looked up straight from the attribute dict's items, in C: an item (key, value) equals a
# cached (key, str) only when its value is that string. Ints have a table of their own, asked only
# for int values: 1 == 1.0 == True, and each is encoded differently.
_MAX_PAIRS, _PAIR_VALUE_MAX = 4096, 64  # value: UTF-8 bytes
_pairs: dict[bytes, dict[tuple[str, Any], bytes]] = {}
_int_pairs: dict[bytes, dict[tuple[str, Any], bytes]] = {}
_STATUS_EMPTY = b"\x7a\x00"
_SPAN_FLAGS = b"\x85\x01" + _fixed32(_HAS_IS_REMOTE)  # the sink's parents are never remote

# A span as the otlp sink builds it: (name, trace id, span id, parent span id or None, client
# kind?, start ns, end ns, attributes, events as (name, attributes, time ns), status code (0
# unset, 1 ok, 2 error), status description). Plain tuples: no object per span but the tuple.
PlainEvent = tuple[str, Mapping[str, Any], int]
PlainSpan = tuple[str, int, int, "int | None", bool, "int | None", "int | None", Mapping[str, Any],
                  Sequence[PlainEvent], int, str]


def _varint(n: int) -> bytes:
    if n < _LEN_TABLE:
        return _V[n]
    out = bytearray()
    while n > 127:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or a message)."""
    n = len(payload)
    return tag + (_V[n] if n < _LEN_TABLE else _varint(n)) + payload


def _value(value: Any) -> bytes:
    """An AnyValue's fields, as the SDK encoder maps Python values (TypeError for others)."""
    t = type(value)
    if t is str:
        return _len(b"\x0a", value.encode())
    if t is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if t is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"{value} is out of int64 range")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if t is float:
        return b"\x21" + _double(value)
    if value is None:
        return b""
    if isinstance(value, str):
        return _len(b"\x0a", str(value).encode())
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, (int, float)):
        return _value(int(value) if isinstance(value, int) else float(value))
    if isinstance(value, bytes):
        return _len(b"\x3a", bytes(value))
    if isinstance(value, Sequence):
        return _len(b"\x2a", b"".join([_len(b"\x0a", _value(v)) for v in value]))
    if isinstance(value, Mapping):  # a bad value inside fails the whole attribute, as in the SDK
        return _len(b"\x32", b"".join([_len(b"\x0a", _key(str(k)) + _varint(len(f)) + f)
                                        for k, f in [(k, _value(v)) for k, v in value.items()]]))
    raise TypeError(f"invalid type {type(value).__name__} of an attribute value")


def _key(key: str) -> bytes:
    """A KeyValue's key field and the head of its value field."""
    encoded = _len(b"\x0a", key.encode()) + b"\x12"
    if len(_keys) < _MAX_KEYS:
        _keys[key] = encoded
    return encoded


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> list[bytes]:
    """Each attribute as a KeyValue field `tag`; one that cannot be encoded is left out and
    logged, as the SDK encoder does. The hot path of the encoder: the fields cached whole are
    found by one C-level pass over the items; only the others take Python steps (inlined)."""
    if not attributes:
        return []
    pairs = _pairs.get(tag)
    if pairs is None:
        pairs = _pairs[tag] = {}
        _int_pairs[tag] = {}
    items = list(attributes.items())
    try:
        out: list[Any] = list(map(pairs.get, items))
    except TypeError:  # an unhashable value (a list): each item on its own
        out = [pairs.get(item) if type(item[1]) is str else None for item in items]
    # the misses' indexes, found in C (a truth test, not a comparison with None)
    missed = list(compress(range(len(out)), map(not_, out)))
    if not missed:
        return out
    ints = _int_pairs[tag]
    V, keys = _V, _keys
    dropped = False
    for i in missed:
        key, value = item = items[i]
        t = type(value)
        try:
            if t is str:  # mostly content: the field's heads computed, its bytes joined once
                b = value.encode()
                n = len(b)
                size = V[n] if n < _LEN_TABLE else _varint(n)
                vf = n + 1 + len(size)
                vf_size = V[vf] if vf < _LEN_TABLE else _varint(vf)
                head = keys.get(key) or _key(key)
                kv = len(head) + len(vf_size) + vf
                field = out[i] = b"".join((tag, V[kv] if kv < _LEN_TABLE else _varint(kv), head, vf_size, b"\x0a", size, b))
                if n <= _PAIR_VALUE_MAX:
                    if len(pairs) >= _MAX_PAIRS:
                        pairs.clear()
                    pairs[item] = field
                continue
            if t is int:
                known = ints.get(item)
                if known is not None:
                    out[i] = known
                    continue
            value_field = _value(value)
            n = len(value_field)
            kv_field = (keys.get(key) or _key(key)) + (V[n] if n < _LEN_TABLE else _varint(n)) + value_field
            n = len(kv_field)
            field = out[i] = tag + (V[n] if n < _LEN_TABLE else _varint(n)) + kv_field
        except Exception as exc:  # noqa: BLE001 - one bad value does not lose the span
            log.debug("otlp: attribute %r not encoded: %s", key, exc)
            out[i] = b""
            dropped = True
            continue
        if t is int:
            if len(ints) >= _MAX_PAIRS:
                ints.clear()
            ints[item] = field
    return [f for f in out if f] if dropped else out


_IDS = struct.Struct(">2sQQ2sQ").pack  # trace id (16 bytes: two halves) and span id fields
_IDS_PARENT = struct.Struct(">2sQQ2sQ2sQ").pack  # and the parent span id field
_TIMES = struct.Struct("<cQcQ").pack  # start and end time fields
_LOW64 = 0xFFFFFFFFFFFFFFFF
_CLIENT_KIND, _INTERNAL_KIND = b"\x30" + _KIND[SpanKind.CLIENT], b"\x30" + _KIND[SpanKind.INTERNAL]
# A span's name and kind fields, by (name, client?): span names are a small vocabulary
# (`chat {model}`, `execute_tool {tool}`, node names); emptied when full, as the pairs are.
_names: dict[tuple[str, bool], bytes] = {}
_TAIL_OK = _len(b"\x7a", b"\x18\x01") + _SPAN_FLAGS  # status OK, then the flags
_TAIL_UNSET = _STATUS_EMPTY + _SPAN_FLAGS


def _span_into(out: list[bytes], span: PlainSpan) -> int:
    """Appends a PlainSpan's Span message to `out` as pieces, its fields in the SDK encoder's
    order; returns its length."""
    name, trace_id, span_id, parent_id, client, start, end, attributes, events, code, description = span
    if parent_id is None:
        ids = _IDS(b"\x0a\x10", trace_id >> 64, trace_id & _LOW64, b"\x12\x08", span_id)
    else:
        ids = _IDS_PARENT(b"\x0a\x10", trace_id >> 64, trace_id & _LOW64, b"\x12\x08", span_id, b"\x22\x08", parent_id)
    named = _names.get((name, client))
    if named is None:
        if len(_names) >= _MAX_PAIRS:
            _names.clear()
        named = _names[name, client] = _len(b"\x2a", name.encode()) + (_CLIENT_KIND if client else _INTERNAL_KIND)
    if start and end:
        times = _TIMES(b"\x39", start, b"\x41", end)
    else:
        times = (b"\x39" + _fixed64(start) if start else b"") + (b"\x41" + _fixed64(end) if end else b"")
    at = len(out)
    out += (ids, named, times)
    out += _attributes(b"\x4a", attributes)
    for event_name, event_attributes, time_ns in events:
        body = [b"\x09" + _fixed64(time_ns), _len(b"\x12", event_name.encode())]
        body += _attributes(b"\x1a", event_attributes)
        out.append(_len(b"\x5a", b"".join(body)))
    if description:
        out.append(_len(b"\x7a", _len(b"\x12", description.encode()) + (b"\x18" + _SMALL[code] if code else b"")) + _SPAN_FLAGS)
    else:
        out.append(_TAIL_OK if code == 1 else _TAIL_UNSET if not code
                   else _len(b"\x7a", b"\x18" + _SMALL[code]) + _SPAN_FLAGS)
    return sum(map(len, out[at:]))


class Frame:
    """What is the same in every request of a sink: its resource and instrumentation scope,
    encoded once."""

    __slots__ = ("resource_head", "resource_tail", "scope_head", "scope_tail")

    def __init__(self, resource: Resource, scope: InstrumentationScope | None) -> None:
        self.resource_head = _resource_head(resource)
        self.resource_tail = _resource_tail(resource)
        self.scope_head, self.scope_tail = _scope_frame(scope)


def encode_plain(frame: Frame, spans: Sequence[PlainSpan]) -> bytes:
    """An ExportTraceServiceRequest of PlainSpans, all of the frame's resource and scope."""
    # One join of every piece at the end: each span's head goes in the slot kept for it once the
    # span's length is known, and the enclosing messages' lengths are sums.
    out: list[bytes] = [b"", b"", frame.scope_head]
    body = 0
    for span in spans:
        at = len(out)
        out.append(b"")
        n = _span_into(out, span)
        head = out[at] = b"\x12" + (_V[n] if n < _LEN_TABLE else _varint(n))
        body += len(head) + n
    out.append(frame.scope_tail)
    out.append(frame.resource_tail)
    n = len(frame.scope_head) + body + len(frame.scope_tail)
    out[1] = frame.resource_head + b"\x12" + _varint(n)
    n = len(out[1]) + n + len(frame.resource_tail)
    out[0] = b"\x0a" + _varint(n)
    return b"".join(out)


def _resource_head(resource: Resource) -> bytes:
    return _len(b"\x0a", b"".join(_attributes(b"\x0a", resource.attributes)))


def _resource_tail(resource: Resource) -> bytes:
    return _len(b"\x1a", resource.schema_url.encode()) if resource.schema_url else b""


def _scope_frame(scope: InstrumentationScope | None) -> tuple[bytes, bytes]:
    """A ScopeSpans' scope field and its schema_url field (what goes before and after its spans)."""
    if scope is None:
        return b"\x0a\x00", b""  # no scope: an empty one, as the SDK encoder writes it
    fields = [_len(b"\x0a", scope.name.encode())]
    if scope.version:
        fields.append(_len(b"\x12", scope.version.encode()))
    fields += _attributes(b"\x1a", scope.attributes)
    tail = _len(b"\x1a", scope.schema_url.encode()) if scope.schema_url else b""
    return _len(b"\x0a", b"".join(fields)), tail
