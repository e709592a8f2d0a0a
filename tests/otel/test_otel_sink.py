"""The otlp sink's folding rules, with the SDK's in-memory exporter behind it (no receiver):
retried batches export each span once, the open-span bound, point events, ends without starts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import tracewire
from tracewire.model import attributes as A
from tracewire.sinks.otlp import UNFINISHED_AT_CLOSE, UNFINISHED_EVICTED, OTLPSink


class FlakyExporter(InMemorySpanExporter):
    """Fails the first `failures` exports, like a receiver that is briefly down."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        if self.calls <= self.failures:
            return SpanExportResult.FAILURE
        return super().export(spans)


def run(sink: OTLPSink, tmp_path: Any, monkeypatch: Any, record: Any) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    client = tracewire.init(sink=[sink], flush_interval=0.01)
    record(client)
    assert client.flush(20)
    stats = client.stats()
    tracewire.shutdown()
    return stats


def test_failed_export_is_retried_and_each_span_exported_once(tmp_path: Any, monkeypatch: Any) -> None:
    exporter = FlakyExporter(failures=2)
    sink = OTLPSink(exporter)

    def record(client: tracewire.Client) -> None:
        with tracewire.span("agent", "a") as root:
            client.start_span("llm", "m", attributes={A.REQUEST_MODEL: "gpt-x"}).end(output="ok")
        assert root.ended

    stats = run(sink, tmp_path, monkeypatch, record)
    assert stats["retries"]["otlp"] >= 2 and not stats["dropped"] and stats["written"] == 4
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["chat gpt-x", "invoke_agent a"]
    root = next(s for s in spans if s.name == "invoke_agent a")
    child = next(s for s in spans if s.name == "chat gpt-x")
    assert child.parent is not None and child.parent.span_id == root.context.span_id
    assert child.context.trace_id == root.context.trace_id and root.parent is None
    assert not sink._open  # starts are freed once their spans went out


def test_open_span_bound_exports_oldest_as_unfinished(tmp_path: Any, monkeypatch: Any) -> None:
    exporter = InMemorySpanExporter()
    sink = OTLPSink(exporter, max_open=2)

    def record(client: tracewire.Client) -> None:
        for i in range(3):
            client.start_span("agent", f"long-{i}", parent=None)
        assert client.flush(10)
        client.start_span("tool", "t", parent=None).end()

    run(sink, tmp_path, monkeypatch, record)
    spans = exporter.get_finished_spans()
    # long-0 went out with the first write, long-1 when `t` opened; long-2 was open at shutdown
    assert [s.name for s in spans] == ["invoke_agent long-0", "execute_tool t", "invoke_agent long-1",
                                       "invoke_agent long-2"]
    for span, why in zip([spans[0], spans[2], spans[3]], [UNFINISHED_EVICTED, UNFINISHED_EVICTED, UNFINISHED_AT_CLOSE],
                         strict=True):
        assert span.status.status_code is StatusCode.ERROR and span.status.description == why
        assert span.attributes is not None and span.attributes[A.UNFINISHED] is True
    assert spans[1].status.status_code is StatusCode.OK


def test_point_events_and_ends_without_starts(tmp_path: Any, monkeypatch: Any) -> None:
    exporter = InMemorySpanExporter()
    sink = OTLPSink(exporter, capture_content=True)

    def record(client: tracewire.Client) -> None:
        with tracewire.span("agent", "a") as root:
            root.record("user.input", input="hi", attributes={"channel": "web"})
        tracewire.record("user.feedback", output={"score": 1})  # outside any span
        # an end whose start was never seen by this sink (e.g. sampled in later)
        late = client.start_span("tool", "late", parent=None)
        sink._open.clear()
        late.end(output="done")

    run(sink, tmp_path, monkeypatch, record)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"invoke_agent a", "user.feedback", "execute_tool late"}
    (event,) = spans["invoke_agent a"].events
    assert event.name == "user.input"
    assert dict(event.attributes or {}) == {"tracewire.event.type": "user.input", "channel": "web", "input.value": "hi"}
    feedback = spans["user.feedback"]
    assert feedback.start_time == feedback.end_time and feedback.parent is None
    assert spans["execute_tool late"].status.status_code is StatusCode.OK
