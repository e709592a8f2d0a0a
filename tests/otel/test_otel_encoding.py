"""The otlp sink's encoder keeps whole fields of repeated attributes, span names and lengths
ready-made: a request made from those decodes exactly as the opentelemetry encoder's does, however
the values that hit them and the values that miss them interleave."""

from __future__ import annotations

from opentelemetry import trace as otel_trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import Event

from tests.otel.test_otel_wire import RESOURCE, SCOPE, assert_same, plain, span
from tracewire.sinks.otlp_wire import Frame, encode_plain


def test_equal_values_of_other_types_are_not_taken_for_each_other() -> None:
    """1, True and 1.0 are equal keys to a dict, and three different OTLP values."""
    assert_same([
        span(attributes={"n": 1, "s": "x", "f": 1.0}),
        span(attributes={"n": True, "s": "x", "f": 1}),
        span(attributes={"n": 1.0, "s": 1, "f": True}),
        span(attributes={"n": 1, "s": "x", "f": 1.0}),
    ])


def test_cached_and_fresh_fields_interleave_in_order() -> None:
    """Lists (unhashable), values the encoder refuses and long text between short repeated
    ones, in every position, twice (the second time from the cache)."""
    attrs = {"a": "short", "list": ["p", "q"], "big": 2**70, "b": "short2", "long": "é" * 3000,
             "huge": "z" * 70_000, "c": 7, "bad": object(), "d": "end"}
    assert_same([span(attributes=attrs), span(attributes=attrs),
                 span(attributes={"bad": object(), "a": "short"}), span(attributes={"a": "short", "big": 2**70})])


def test_span_names_kinds_statuses_and_events_from_the_cache() -> None:
    parent = otel_trace.SpanContext(0x0123456789ABCDEF0123456789ABCDEF, 0xFFFFFFFFFFFFFFFF, False,
                                    otel_trace.TraceFlags(otel_trace.TraceFlags.SAMPLED))
    statuses = [otel_trace.Status(otel_trace.StatusCode.OK), otel_trace.Status(otel_trace.StatusCode.UNSET),
                otel_trace.Status(otel_trace.StatusCode.ERROR), otel_trace.Status(otel_trace.StatusCode.ERROR, "boom")]
    spans = [span("chat m", {"k": "v"}, kind=kind, status=status, parent=p, start_time=start,
                  events=[Event("e", {"k": "v", "n": 2}, 5)] if p else [])
             for kind in (otel_trace.SpanKind.CLIENT, otel_trace.SpanKind.INTERNAL)
             for status in statuses for p in (None, parent) for start in (1, 0)]
    assert_same(spans + spans)


def test_a_request_longer_than_the_length_table() -> None:
    """Lengths past the table's (4 KiB) and past two varint bytes, at every level."""
    spans = [span(f"s{i}", {"text": "x" * 5000 * i}) for i in range(1, 5)]
    assert_same(spans)
    request = ExportTraceServiceRequest.FromString(encode_plain(Frame(RESOURCE, SCOPE), [plain(s) for s in spans]))
    assert [len(s.attributes[0].value.string_value) for s in request.resource_spans[0].scope_spans[0].spans] == [
        5000, 10000, 15000, 20000]
