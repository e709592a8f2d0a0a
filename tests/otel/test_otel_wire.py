"""The otlp sink's own request encoding (tracewire.sinks.otlp_wire) decodes to exactly what the
opentelemetry exporters' encoder makes of the same spans."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tracewire.sinks.otlp_wire import encode_request

_SAMPLED = otel_trace.TraceFlags(otel_trace.TraceFlags.SAMPLED)
RESOURCE = Resource({"service.name": "svc", "deployment.environment": "test"})
SCOPE = InstrumentationScope("tracewire", "0.1.0")


def span(name: str = "chat gpt-4o", attributes: dict[str, Any] | None = None, **kw: Any) -> ReadableSpan:
    args: dict[str, Any] = {
        "context": otel_trace.SpanContext(0x0123456789ABCDEF0123456789ABCDEF, 0x1122334455667788, False, _SAMPLED),
        "resource": RESOURCE, "instrumentation_scope": SCOPE, "start_time": 1_700_000_000_000_000_000,
        "end_time": 1_700_000_000_500_000_000, "attributes": attributes or {}, **kw,
    }
    return ReadableSpan(name=name, **args)


def assert_same(spans: list[ReadableSpan]) -> None:
    ours = ExportTraceServiceRequest.FromString(encode_request(spans))
    assert ours == encode_spans(spans)


def test_spans_as_the_sink_makes_them() -> None:
    parent = otel_trace.SpanContext(0x0123456789ABCDEF0123456789ABCDEF, 0x99, False, _SAMPLED)
    assert_same([
        span(attributes={"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 40, "tracewire.cost_usd": 0.0012,
                         "tracewire.streaming": False, "gen_ai.response.finish_reasons": ["stop", "length"],
                         "input.value": "héllo ✓ 𝄞", "tracewire.unfinished": True},
             parent=parent, kind=otel_trace.SpanKind.CLIENT, status=otel_trace.Status(otel_trace.StatusCode.OK)),
        span("tool", {"gen_ai.tool.name": "get_weather"}, kind=otel_trace.SpanKind.INTERNAL,
             status=otel_trace.Status(otel_trace.StatusCode.ERROR, "ValueError: no city"),
             events=[Event("exception", {"exception.type": "ValueError", "exception.message": "no city"}, 1_700_000_000_400_000_000),
                     Event("gen_ai.evaluation.result", {"gen_ai.evaluation.score.value": 1.0}, 1_700_000_000_450_000_000)]),
        span("root", {}, status=otel_trace.Status(otel_trace.StatusCode.UNSET)),
    ])


def test_remote_parent_links_scopes_and_resources() -> None:
    remote = otel_trace.SpanContext(0xABC, 0xDEF, True, _SAMPLED)
    link = otel_trace.Link(otel_trace.SpanContext(0xABC, 0x123, True, _SAMPLED), {"link.kind": "follows"})
    other = Resource({"service.name": "other"}, schema_url="https://opentelemetry.io/schemas/1.21.0")
    assert_same([
        span(parent=remote, links=[link]),
        span("b", resource=other, instrumentation_scope=InstrumentationScope("x", None, "https://example.test/s")),
        span("c", instrumentation_scope=None),
        span("d"),
    ])


def test_values_the_sdk_encoder_refuses_are_left_out_alike() -> None:
    assert_same([span(attributes={"ok": 1, "too_big": 2**70, "nested": {"a": [1, 2], "b": {"c": "d"}}, "none": None,
                                  "bad_inside": {"a": 1, "b": 2**70}, "bytes": bytearray(b"ab"),
                                  "raw": b"\x00\x01", "mixed": ["a", 1], "empty": []})])


scalars = st.one_of(st.text(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False))
values = st.one_of(scalars, st.lists(st.text(), max_size=3), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
                   st.lists(st.floats(allow_nan=False), max_size=3))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1), values, max_size=8), st.text(), st.sampled_from(list(otel_trace.SpanKind)))
def test_any_attributes(attributes: dict[str, Any], name: str, kind: otel_trace.SpanKind) -> None:
    assert_same([span(name, attributes, kind=kind)])
