"""Trace context: a tracewire trace recorded inside an active OpenTelemetry span joins it."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import tracewire
import tracewire.otel
from tests.otel.otel_receiver import Phoenix
from tracewire.model import attributes as A
from tracewire.sinks.memory import MemorySink


@pytest.fixture
def app_tracer(phoenix: Phoenix, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The application's own OpenTelemetry SDK (e.g. an instrumented web framework), exporting to Phoenix."""
    provider = TracerProvider(resource=Resource.create({"service.name": "web"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{phoenix.url}/v1/traces")))
    yield provider.get_tracer("web")
    provider.shutdown()


def test_trace_inside_active_otel_span_becomes_its_child(phoenix: Phoenix, app_tracer: Any, tmp_path: Any,
                                                         monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    client = tracewire.init(sink="otlp", otlp_endpoint=phoenix.endpoint("grpc"), otlp_protocol="grpc",
                            flush_interval=0.01)
    with app_tracer.start_as_current_span("POST /ask") as request_span:
        with tracewire.span("agent", "planner") as agent:
            client.start_span("llm", "ChatOpenAI", attributes={A.REQUEST_MODEL: "gpt-4o-mini"}).end(output="hi")
    ctx = request_span.get_span_context()
    assert agent.trace_id == f"{ctx.trace_id:032x}"
    assert agent.parent_span_id == f"{ctx.span_id:016x}"
    # outside any OTel span a tracewire root starts a trace of its own
    with tracewire.span("agent", "solo") as solo:
        pass
    assert solo.parent_span_id is None and solo.trace_id != agent.trace_id
    assert client.flush(20)

    spans = phoenix.spans(agent.trace_id, 3)
    assert set(spans) == {"POST /ask", "invoke_agent planner", "chat gpt-4o-mini"}
    assert spans["POST /ask"]["parent_id"] is None
    assert spans["invoke_agent planner"]["parent_id"] == f"{ctx.span_id:016x}"
    assert spans["chat gpt-4o-mini"]["parent_id"] == agent.span_id
    tracewire.shutdown()


def test_join_active_span_explicitly_with_another_sink(app_tracer: Any, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    sink = MemorySink()
    client = tracewire.init(sink=[sink], flush_interval=0.01)
    assert client.root_parent_provider is None  # only the otlp sink installs it by itself
    tracewire.otel.join_active_span()
    with app_tracer.start_as_current_span("job") as job:
        with tracewire.span("chain", "pipeline") as chain:
            with tracewire.span("tool", "fetch") as tool:
                pass
    ctx = job.get_span_context()
    assert (chain.trace_id, chain.parent_span_id) == (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    assert (tool.trace_id, tool.parent_span_id) == (chain.trace_id, chain.span_id)  # tracewire's parent wins
    assert client.flush(10)
    assert {(e["name"], e["parent_span_id"]) for e in sink.events} == {
        ("pipeline", f"{ctx.span_id:016x}"), ("fetch", chain.span_id)}
    tracewire.shutdown()


def test_langchain_agent_inside_active_otel_span_joins_it(phoenix: Phoenix, app_tracer: Any, tmp_path: Any,
                                                          monkeypatch: Any) -> None:
    from tests.langchain.lc_fakes import weather_agent
    from tests.otel.otel_receiver import received_tree
    from tracewire.integrations.langchain import TracewireCallbackHandler

    monkeypatch.chdir(tmp_path)
    client = tracewire.init(sink="otlp", otlp_endpoint=phoenix.endpoint("http/protobuf"), flush_interval=0.01)
    with app_tracer.start_as_current_span("POST /weather") as request_span:
        weather_agent().invoke({"messages": [("user", "weather in Oslo?")]},
                               config={"callbacks": [TracewireCallbackHandler()]})
    assert client.flush(20)
    trace_id = f"{request_span.get_span_context().trace_id:032x}"
    assert received_tree(phoenix.trace(trace_id, 8)) == [
        ("POST /weather", "UNKNOWN", [
            ("invoke_agent LangGraph", "AGENT", [
                ("model", "CHAIN", [("chat gpt-4o-mini", "LLM", [])]),
                ("tools", "CHAIN", [("execute_tool get_weather", "TOOL", [])]),
                ("model", "CHAIN", [("chat gpt-4o-mini", "LLM", [])]),
            ]),
        ]),
    ]
    tracewire.shutdown()
