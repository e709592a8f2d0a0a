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
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind

log = logging.getLogger("tracewire")

_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_double = struct.Struct("<d").pack
_SMALL = [bytes((i,)) for i in range(128)]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# proto SpanKind = the API's SpanKind + 1 (0 is SPAN_KIND_UNSPECIFIED)
_KIND = {kind: _SMALL[kind.value + 1] for kind in SpanKind}
_HAS_IS_REMOTE = 0x100  # SpanFlags: the parent's is_remote is known (false: the sink's parents are local)
_MAX_KEYS = 4096  # attribute keys kept encoded (a bounded vocabulary in practice; past it, encoded each time)
_keys: dict[str, bytes] = {}
# Whole KeyValue fields of short string values, by field tag: most attributes of a GenAI span repeat
# from span to span (kind, operation, provider, model, framework, tool name, mime type). Emptied
# when full, so that what repeats now is what it holds.
_MAX_PAIRS, _PAIR_VALUE_MAX = 4096, 64
_pairs: dict[bytes, dict[tuple[str, str], bytes]] = {}
_STATUS_EMPTY = b"\x7a\x00"
_SPAN_FLAGS = b"\x85\x01" + _fixed32(_HAS_IS_REMOTE)  # the sink's parents are never remote

# A span as the otlp sink builds it: (name, trace id, span id, parent span id or None, client
# kind?, start ns, end ns, attributes, events as (name, attributes, time ns), status code (0
# unset, 1 ok, 2 error), status description). Plain tuples: no object per span but the tuple.
PlainEvent = tuple[str, Mapping[str, Any], int]
PlainSpan = tuple[str, int, int, "int | None", bool, "int | None", "int | None", Mapping[str, Any],
                  Sequence[PlainEvent], int, str]


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL[n]
    if n < 16384:  # content strings and most spans: two bytes
        return bytes(((n & 127) | 128, n >> 7))
    out = bytearray()
    while n > 127:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or a message)."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 128 else _varint(n)) + payload


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
    logged, as the SDK encoder does. The hot loop of the encoder: lengths are inlined."""
    out: list[bytes] = []
    if not attributes:
        return out
    keys, small = _keys, _SMALL
    pairs = _pairs.get(tag)
    if pairs is None:
        pairs = _pairs[tag] = {}
    append = out.append
    for key, value in attributes.items():
        try:
            if type(value) is str:  # most values
                if len(value) <= _PAIR_VALUE_MAX:
                    known = pairs.get((key, value))
                    if known is not None:
                        append(known)
                        continue
                b = value.encode()
                n = len(b)
                value_field = b"\x0a" + (small[n] if n < 128 else _varint(n)) + b
            else:
                value_field = _value(value)
            n = len(value_field)
            kv = (keys.get(key) or _key(key)) + (small[n] if n < 128 else _varint(n)) + value_field
            n = len(kv)
            field = tag + (small[n] if n < 128 else _varint(n)) + kv
            if type(value) is str and len(value) <= _PAIR_VALUE_MAX:
                if len(pairs) >= _MAX_PAIRS:
                    pairs.clear()
                pairs[key, value] = field
            append(field)
        except Exception as exc:  # noqa: BLE001 - one bad value does not lose the span
            log.debug("otlp: attribute %r not encoded: %s", key, exc)
    return out


_CLIENT_KIND, _INTERNAL_KIND = b"\x30" + _KIND[SpanKind.CLIENT], b"\x30" + _KIND[SpanKind.INTERNAL]


def _plain_span(span: PlainSpan) -> bytes:
    """A PlainSpan's Span message, its fields in the SDK encoder's order."""
    name, trace_id, span_id, parent_id, client, start, end, attributes, events, code, description = span
    parts = [b"\x0a\x10" + trace_id.to_bytes(16, "big"), b"\x12\x08" + span_id.to_bytes(8, "big")]
    if parent_id is not None:
        parts.append(b"\x22\x08" + parent_id.to_bytes(8, "big"))
    parts.append(_len(b"\x2a", name.encode()))
    parts.append(_CLIENT_KIND if client else _INTERNAL_KIND)
    if start:
        parts.append(b"\x39" + _fixed64(start))
    if end:
        parts.append(b"\x41" + _fixed64(end))
    parts += _attributes(b"\x4a", attributes)
    for event_name, event_attributes, time_ns in events:
        body = [b"\x09" + _fixed64(time_ns), _len(b"\x12", event_name.encode())]
        body += _attributes(b"\x1a", event_attributes)
        parts.append(_len(b"\x5a", b"".join(body)))
    if code or description:
        status = _len(b"\x12", description.encode()) if description else b""
        parts.append(_len(b"\x7a", status + (b"\x18" + _SMALL[code] if code else b"")))
    else:
        parts.append(_STATUS_EMPTY)
    parts.append(_SPAN_FLAGS)
    return b"".join(parts)


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
    body = b"".join([_len(b"\x12", _plain_span(span)) for span in spans])
    scope_spans = _len(b"\x12", frame.scope_head + body + frame.scope_tail)
    return _len(b"\x0a", frame.resource_head + scope_spans + frame.resource_tail)


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
