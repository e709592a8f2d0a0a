"""The otlp sink against a real OTLP receiver (Phoenix): names, parent links, GenAI attributes,
token counts, errors, content opt-in, unfinished spans, and running beside the SQLite sink."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import tracewire
from tests.otel.otel_receiver import Phoenix
from tracewire.model import attributes as A
from tracewire.model.genai import usage_attributes

PROTOCOLS = ["http/protobuf", "grpc"]


def otlp_init(phoenix: Phoenix, protocol: str, **kw: Any) -> tracewire.Client:
    return tracewire.init(sink="otlp", otlp_endpoint=phoenix.endpoint(protocol), otlp_protocol=protocol,
                          flush_interval=0.01, **kw)


def record_agent_run(client: tracewire.Client) -> tracewire.Span:
    """agent -> (llm, tool that fails, embedding, retriever) with a user.input point event."""
    with tracewire.session(session_id="conv-7", user_id="u-1"):
        with tracewire.span("agent", "researcher", input="find x") as root:
            root.record("user.input", input="find x")
            llm = client.start_span(
                "llm", "ChatOpenAI", framework="langchain",
                input=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "find x"}],
                attributes={A.REQUEST_MODEL: "gpt-4o-mini", A.PROVIDER_NAME: "openai", A.REQUEST_TEMPERATURE: 0.2},
            )
            llm.end(
                output={"role": "assistant", "content": None,
                        "tool_calls": [{"id": "call_1", "name": "search", "arguments": {"q": "x"}}]},
                attributes={A.RESPONSE_MODEL: "gpt-4o-mini-2024", A.RESPONSE_ID: "chatcmpl-1",
                            A.RESPONSE_FINISH_REASONS: ["tool_calls"],
                            **usage_attributes(21, 7, model="gpt-4o-mini")},
            )
            tool = client.start_span("tool", "search", input={"q": "x"}, attributes={A.TOOL_CALL_ID: "call_1"})
            tool.fail(TimeoutError("search backend timed out"))
            client.start_span("embedding", "OpenAIEmbeddings", input=["x"],
                              attributes={A.REQUEST_MODEL: "text-embedding-3-small"}).end(
                output=None, attributes=usage_attributes(input_tokens=2))
            client.start_span("retriever", "VectorStoreRetriever", input="x").end(output=[{"page_content": "doc"}])
            root.set_output("x is 42")
    return root


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_spans_arrive_with_genai_attributes(phoenix: Phoenix, protocol: str, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    client = otlp_init(phoenix, protocol, service_name="checkout-agent", otlp_capture_content=True)
    root = record_agent_run(client)
    assert client.flush(20)
    spans = phoenix.spans(root.trace_id, 5)
    assert set(spans) == {"invoke_agent researcher", "chat gpt-4o-mini", "execute_tool search",
                          "embeddings text-embedding-3-small", "VectorStoreRetriever"}
    agent = spans["invoke_agent researcher"]
    # trace and span ids are tracewire's own
    assert agent["context"] == {"trace_id": root.trace_id, "span_id": root.span_id}
    assert agent["parent_id"] is None
    for name, s in spans.items():
        assert s["context"]["trace_id"] == root.trace_id
        if name != "invoke_agent researcher":
            assert s["parent_id"] == root.span_id, name
    kinds = {name: s["span_kind"] for name, s in spans.items()}  # from openinference.span.kind
    assert kinds == {"invoke_agent researcher": "AGENT", "chat gpt-4o-mini": "LLM", "execute_tool search": "TOOL",
                     "embeddings text-embedding-3-small": "EMBEDDING", "VectorStoreRetriever": "RETRIEVER"}

    a = agent["attributes"]
    assert a[A.OPERATION_NAME] == "invoke_agent" and a[A.AGENT_NAME] == "researcher"
    assert a[A.CONVERSATION_ID] == "conv-7" and a["user.id"] == "u-1"
    assert agent["status_code"] == "OK"
    assert [e["name"] for e in agent["events"]] == ["user.input"]
    assert agent["events"][0]["attributes"]["input.value"] == "find x"

    chat = spans["chat gpt-4o-mini"]
    c = chat["attributes"]
    assert c[A.OPERATION_NAME] == "chat" and c[A.PROVIDER_NAME] == "openai"
    assert c[A.REQUEST_MODEL] == "gpt-4o-mini" and c[A.REQUEST_TEMPERATURE] == 0.2
    assert c[A.RESPONSE_MODEL] == "gpt-4o-mini-2024" and c[A.RESPONSE_ID] == "chatcmpl-1"
    assert c[A.RESPONSE_FINISH_REASONS] == ["tool_calls"]
    assert (c[A.USAGE_INPUT_TOKENS], c[A.USAGE_OUTPUT_TOKENS], c[A.USAGE_TOTAL_TOKENS]) == (21, 7, 28)
    assert (c["llm.token_count.prompt"], c["llm.token_count.completion"], c["llm.token_count.total"]) == (21, 7, 28)
    assert c[A.COST_USD] > 0 and c["tracewire.framework"] == "langchain"
    assert c["gen_ai.system_instructions"] == '[{"type":"text","content":"be brief"}]'
    assert c["gen_ai.input.messages"] == '[{"role":"user","parts":[{"type":"text","content":"find x"}]}]'
    assert c["gen_ai.output.messages"] == (
        '[{"role":"assistant","parts":[{"type":"tool_call","id":"call_1","name":"search","arguments":{"q":"x"}}],'
        '"finish_reason":"tool_calls"}]')

    tool = spans["execute_tool search"]
    t = tool["attributes"]
    assert t[A.TOOL_NAME] == "search" and t[A.TOOL_CALL_ID] == "call_1" and t[A.OPERATION_NAME] == "execute_tool"
    assert t["gen_ai.tool.call.arguments"] == '{"q":"x"}'
    assert tool["status_code"] == "ERROR" and t["error.type"] == "TimeoutError"
    assert tool["status_message"] == "TimeoutError: search backend timed out"
    assert [e["name"] for e in tool["events"]] == ["exception"]
    assert tool["events"][0]["attributes"]["exception.type"] == "TimeoutError"

    emb = spans["embeddings text-embedding-3-small"]["attributes"]
    assert emb[A.OPERATION_NAME] == "embeddings" and emb[A.USAGE_INPUT_TOKENS] == 2
    assert spans["VectorStoreRetriever"]["attributes"][A.OPERATION_NAME] == "retrieval"
    tracewire.shutdown()


CONTENT_KEYS = {"input.value", "output.value", "gen_ai.input.messages", "gen_ai.output.messages",
                "gen_ai.system_instructions", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result"}


@pytest.mark.parametrize(("settings", "otel_env"), [
    ({}, None),  # the default: content is opt-in
    ({}, "false"),
    ({"otlp_capture_content": False}, "true"),  # the tracewire setting wins over the OTel variable
    ({"capture_content": False, "otlp_capture_content": True}, None),  # never what tracewire does not capture
    ({"capture_content": False}, "true"),
], ids=["default", "otel-var-false", "setting-false-over-var", "capture-off-opt-in", "capture-off-var-true"])
def test_content_is_opt_in(phoenix: Phoenix, settings: dict[str, Any], otel_env: str | None, tmp_path: Any,
                           monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    if otel_env is None:
        monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    else:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", otel_env)
    monkeypatch.delenv("TRACEWIRE_OTLP_CAPTURE_CONTENT", raising=False)
    client = otlp_init(phoenix, "http/protobuf", **settings)
    root = record_agent_run(client)
    assert client.flush(20)
    spans = phoenix.spans(root.trace_id, 5)
    for name, s in spans.items():
        attrs = s["attributes"]
        if name == "chat gpt-4o-mini":  # Phoenix derives output.value from response id and model
            assert attrs.pop("output.value") == '{"id": "chatcmpl-1", "model": "gpt-4o-mini-2024"}'
        assert not CONTENT_KEYS & set(attrs), (name, CONTENT_KEYS & set(attrs))
        text = repr(attrs) + repr(s["events"])
        assert not any(t in text for t in ("be brief", "find x", "x is 42", "doc")), (name, text)
    chat = spans["chat gpt-4o-mini"]["attributes"]
    assert chat[A.USAGE_INPUT_TOKENS] == 21  # metadata still goes
    tracewire.shutdown()


@pytest.mark.parametrize("opt_in", ["setting", "env-setting", "otel-var"])
def test_content_exported_when_opted_in(phoenix: Phoenix, opt_in: str, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    monkeypatch.delenv("TRACEWIRE_OTLP_CAPTURE_CONTENT", raising=False)
    settings: dict[str, Any] = {}
    if opt_in == "setting":
        settings["otlp_capture_content"] = True
    elif opt_in == "env-setting":
        monkeypatch.setenv("TRACEWIRE_OTLP_CAPTURE_CONTENT", "true")
    else:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    client = otlp_init(phoenix, "http/protobuf", **settings)
    root = record_agent_run(client)
    assert client.flush(20)
    spans = phoenix.spans(root.trace_id, 5)
    assert spans["invoke_agent researcher"]["attributes"]["output.value"] == "x is 42"
    assert spans["chat gpt-4o-mini"]["attributes"]["gen_ai.system_instructions"] == '[{"type":"text","content":"be brief"}]'
    assert spans["execute_tool search"]["attributes"]["gen_ai.tool.call.arguments"] == '{"q":"x"}'
    tracewire.shutdown()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_span_without_end_is_exported_unfinished_at_shutdown(phoenix: Phoenix, protocol: str, tmp_path: Any,
                                                             monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    client = otlp_init(phoenix, protocol)
    root = client.start_span("agent", "stuck", input="q")
    client.start_span("tool", "lookup", parent=root).end(output="ok")
    assert tracewire.shutdown(timeout=10)
    spans = phoenix.spans(root.trace_id, 2)
    stuck = spans["invoke_agent stuck"]
    assert stuck["status_code"] == "ERROR"
    assert stuck["status_message"].startswith("unfinished: the span had not ended")
    assert stuck["attributes"][A.UNFINISHED] is True
    assert spans["execute_tool lookup"]["parent_id"] == root.span_id
    assert spans["execute_tool lookup"]["status_code"] == "OK"


def test_otlp_beside_sqlite(phoenix: Phoenix, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "local.db"
    client = tracewire.init(sink=["sqlite", "otlp"], db=str(db), otlp_endpoint=phoenix.endpoint("http/protobuf"),
                            flush_interval=0.01)
    root = record_agent_run(client)
    assert client.flush(20)
    assert len(phoenix.spans(root.trace_id, 5)) == 5
    stats = client.stats()
    tracewire.shutdown()
    with sqlite3.connect(db) as conn:
        n = conn.execute("select count(*) from events where trace_id = ?", (root.trace_id,)).fetchone()[0]
    assert n == 11  # 5 spans x (start + end) + 1 point event
    assert stats["written"] == stats["emitted"] == 11 and not stats["dropped"]
