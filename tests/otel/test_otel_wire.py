"""The otlp sink's own request encoding (tracewire.sinks.otlp_wire), straight from the spans it
folds, decodes to exactly what the opentelemetry exporters' encoder makes of the same spans as
ReadableSpans (what the sink hands any other exporter)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tracewire.model import attributes as A
from tracewire.sinks.base import Batch
from tracewire.sinks.otlp import OTLPSink
from tracewire.sinks.otlp_wire import Frame, PlainSpan, encode_plain
from tracewire.testing.otlp_receiver import OTLPReceiver

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


def plain(span: ReadableSpan) -> PlainSpan:
    """The sink's own form of a span it could have made (the sink's spans are CLIENT or INTERNAL,
    their parents local)."""
    ctx, parent, status = span.context, span.parent, span.status
    assert ctx is not None
    return (span.name, ctx.trace_id, ctx.span_id, parent.span_id if parent else None,
            span.kind is otel_trace.SpanKind.CLIENT, span.start_time, span.end_time, span.attributes or {},
            [(e.name, e.attributes or {}, e.timestamp) for e in span.events], status.status_code.value,
            status.description or "")


def assert_same(spans: list[ReadableSpan], resource: Resource = RESOURCE, scope: InstrumentationScope | None = SCOPE) -> None:
    ours = ExportTraceServiceRequest.FromString(encode_plain(Frame(resource, scope), [plain(s) for s in spans]))
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


def test_resources_and_scopes_with_schema_urls_or_none() -> None:
    other = Resource({"service.name": "other"}, schema_url="https://opentelemetry.io/schemas/1.21.0")
    scope = InstrumentationScope("x", None, "https://example.test/s")
    assert_same([span("b", resource=other, instrumentation_scope=scope), span("c", resource=other, instrumentation_scope=scope)],
                other, scope)
    assert_same([span("c", instrumentation_scope=None)], RESOURCE, None)


def test_values_the_sdk_encoder_refuses_are_left_out_alike() -> None:
    assert_same([span(attributes={"ok": 1, "too_big": 2**70, "nested": {"a": [1, 2], "b": {"c": "d"}}, "none": None,
                                  "bad_inside": {"a": 1, "b": 2**70}, "bytes": bytearray(b"ab"),
                                  "raw": b"\x00\x01", "mixed": ["a", 1], "empty": []})])


scalars = st.one_of(st.text(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False))
values = st.one_of(scalars, st.lists(st.text(), max_size=3), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
                   st.lists(st.floats(allow_nan=False), max_size=3))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1), values, max_size=8), st.text(),
       st.sampled_from([otel_trace.SpanKind.CLIENT, otel_trace.SpanKind.INTERNAL]))
def test_any_attributes(attributes: dict[str, Any], name: str, kind: otel_trace.SpanKind) -> None:
    assert_same([span(name, attributes, kind=kind)])


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as r:
        yield r


T = "0123456789abcdef0123456789abcdef"


def ev(span_id: str, phase: str, kind: str = "chain", at: int = 0, parent: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"id": f"{span_id}-{phase}-{at}", "schema": 1, "type": f"{kind}.{phase}", "kind": kind, "phase": phase,
            "trace_id": T, "span_id": span_id, "parent_span_id": parent, "session_id": None, "user_id": None,
            "name": fields.pop("name", kind), "framework": "langchain", "time": 1_700_000_000_000_000_000 + at,
            "seq": at, "attributes": {}, "error": None, "tags": [], "metadata": None, **fields}


def test_sink_sends_what_the_sdk_encoder_makes_of_its_readable_spans(receiver: OTLPReceiver) -> None:
    """The sink's direct encoding (http/protobuf) and its ReadableSpans (any other exporter) are
    the same spans: LLM content and messages, a tool error with its stack, point and score events
    on an open span, a score and a point on their own, an end without its start."""
    events = [
        ev("a000000000000001", "start", "agent", 1, name="planner", input={"messages": [["user", "hi"]]},
           session_id="s1", user_id="u1", tags=["t1"], metadata={"env": "test"}),
        ev("a000000000000002", "start", "llm", 2, "a000000000000001", name="ChatX",
           attributes={A.REQUEST_MODEL: "gpt-x", A.PROVIDER_NAME: "openai", "tracewire.params": {"t": 0.5}},
           input=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "héllo ✓"}]),
        ev("a000000000000002", "end", "llm", 3, "a000000000000001", name="ChatX",
           attributes={A.USAGE_INPUT_TOKENS: 40, A.USAGE_OUTPUT_TOKENS: 300, A.RESPONSE_FINISH_REASONS: ["stop"],
                       "tracewire.cost_usd": 0.0012, "tracewire.streaming": False},
           output={"role": "assistant", "content": "x" * 200,
                   "tool_calls": [{"id": "c1", "name": "get", "arguments": {"q": 1}}]}),
        ev("a000000000000003", "start", "tool", 4, "a000000000000001", name="get", input={"q": 1}),
        ev("a000000000000003", "error", "tool", 5, "a000000000000001", name="get",
           error={"type": "ValueError", "message": "no q", "stacktrace": "Traceback ..."}),
        {**ev("a000000000000004", "point", "event", 6, "a000000000000001"), "type": "user.input", "input": "go"},
        {"schema": 2, "type": "score", "id": "sc1", "trace_id": T, "span_id": "a000000000000001", "name": "ok",
         "value": True, "source": "code", "time": 1_700_000_000_000_000_007},
        ev("a000000000000001", "end", "agent", 8, name="planner", output="done"),
        {"schema": 2, "type": "score", "id": "sc2", "trace_id": T, "span_id": "a000000000000003", "name": "q",
         "value": 0.5, "label": "half", "comment": "meh", "time": 1_700_000_000_000_000_009},
        {**ev("a000000000000005", "point", "event", 10), "type": "agent.response", "output": {"k": [1, 2.5]}},
        ev("a000000000000006", "end", "retriever", 11, name="docs", output=[{"page_content": "p"}]),
    ]
    lines = [json.dumps(e) for e in events]
    resource = RESOURCE
    sent = OTLPSink(OTLPSpanExporter(endpoint=receiver.url + "/v1/traces"), resource=resource, capture_content=True)
    memory = InMemorySpanExporter()
    given = OTLPSink(memory, resource=resource, capture_content=True)
    assert sent._post is not None and given._post is None  # the two paths
    for sink in (sent, given):
        assert sink.write(Batch(list(events), lines)).ok
    spans = memory.get_finished_spans()
    bodies = receiver.bodies()
    assert len(spans) == 6 and len(bodies) == 1, [s.name for s in spans]
    assert ExportTraceServiceRequest.FromString(bodies[0]) == encode_spans(spans)
    assert receiver.span_count() == 6


def test_the_receiver_takes_an_export_addressed_as_the_docs_say(receiver: OTLPReceiver) -> None:
    """`otlp_endpoint=receiver.url`: the sink posts to /v1/traces, where `bodies()` reads by default."""
    import tracewire

    tracewire.init(sink="otlp", otlp_endpoint=receiver.url, redact_keys=[])
    try:
        with tracewire.span("chain", "outer"), tracewire.span("tool", "inner"):
            pass
        tracewire.flush()
        assert receiver.span_count() == 2
        names = sorted(s.name for b in receiver.bodies() for rs in ExportTraceServiceRequest.FromString(b).resource_spans
                       for ss in rs.scope_spans for s in ss.spans)
        assert names == ["execute_tool inner", "outer"]  # a tool span is named as the GenAI conventions say
    finally:
        tracewire.shutdown()
