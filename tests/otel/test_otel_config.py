"""Configuration of the otlp sink: tracewire settings, else the standard OTEL_* variables."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracewire
from tests.otel.otel_receiver import Phoenix
from tracewire.config import Config, ConfigError
from tracewire.sinks import otlp
from tracewire.sinks import otlp_mapping as otel


def _clear_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("OTEL_EXPORTER_OTLP", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "TRACEWIRE_OTLP",
                           "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")):
            monkeypatch.delenv(key)


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """A fresh working directory and no OTLP settings in the environment: the test sets what it needs."""
    monkeypatch.chdir(tmp_path)
    _clear_otel_env(monkeypatch)


def test_settings_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_otel_env(monkeypatch)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    cfg = Config.resolve({"otlp_endpoint": "http://127.0.0.1:4318/", "otlp_protocol": "http/protobuf",
                          "otlp_headers": "x-api-key=k1,x-team=ai", "otlp_timeout": 3, "service_name": "explicit"})
    assert otlp.resolve_protocol(cfg) == "http/protobuf"
    assert otlp.resolve_endpoint(cfg, "http/protobuf") == "http://127.0.0.1:4318/v1/traces"
    assert otlp.resolve_headers(cfg) == {"x-api-key": "k1", "x-team": "ai"}
    assert otlp.resolve_timeout(cfg) == 3.0
    assert otlp.resolve_resource(cfg).attributes["service.name"] == "explicit"
    exporter, timeout = otlp.build_exporter(cfg)
    assert isinstance(exporter, HttpExporter) and timeout == 3.0
    exporter.shutdown()


def test_environment_when_no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_otel_env(monkeypatch)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "4")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,deployment.environment=prod")
    cfg = Config.resolve({})
    assert otlp.resolve_protocol(cfg) == "grpc" and otlp.resolve_timeout(cfg) == 4.0
    assert otlp.resolve_endpoint(cfg, "grpc") is None  # the exporter reads OTEL_EXPORTER_OTLP_ENDPOINT itself
    resource = otlp.resolve_resource(cfg).attributes
    assert resource["service.name"] == "from-attrs" and resource["deployment.environment"] == "prod"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    assert otlp.resolve_resource(cfg).attributes["service.name"] == "from-env"
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    assert otlp.resolve_resource(cfg).attributes["service.name"] == "tracewire-app"
    exporter, _ = otlp.build_exporter(cfg)
    assert isinstance(exporter, GrpcExporter)
    exporter.shutdown()


def test_unsupported_protocol_is_a_clear_error(otel_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_.*PROTOCOL.*http/protobuf or grpc"):
        tracewire.init(sink="otlp")
    with pytest.raises(ConfigError, match="otlp_protocol"):
        tracewire.init(sink="otlp", otlp_protocol="thrift")


def test_export_configured_by_environment_only(phoenix: Phoenix, otel_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEWIRE_SINK", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix.endpoint("grpc"))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    # Phoenix files spans by this resource attribute: seeing them there shows the resource went out
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "openinference.project.name=from-env")
    client = tracewire.init(flush_interval=0.01)
    with tracewire.span("agent", "env-configured") as root:
        pass
    assert client.flush(20)
    spans = phoenix.trace(root.trace_id, 1, project="from-env")
    assert [s["name"] for s in spans] == ["invoke_agent env-configured"]
    tracewire.shutdown()


@pytest.mark.parametrize(("capture", "setting", "otel_var", "expected"), [
    (True, None, None, False),  # opt-in: off by default
    (True, None, "true", True),
    (True, None, "SPAN_AND_EVENT", True),
    (True, None, "EVENT_ONLY", False),  # content in log events only; tracewire exports spans
    (True, None, "false", False),
    (True, True, None, True),
    (True, False, "true", False),  # the tracewire setting wins
    (False, True, "true", False),  # never what tracewire does not capture
])
def test_content_export_resolution(capture: bool, setting: bool | None, otel_var: str | None, expected: bool) -> None:
    environ = {} if otel_var is None else {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": otel_var}
    assert otel.content_export_allowed(capture, setting, environ) is expected


def test_content_settings_are_validated_at_init(otel_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEWIRE_OTLP_CAPTURE_CONTENT", "maybe")
    with pytest.raises(ConfigError, match="'otlp_capture_content' .*TRACEWIRE_OTLP_CAPTURE_CONTENT"):
        tracewire.init(sink="otlp")
    monkeypatch.setenv("TRACEWIRE_OTLP_CAPTURE_CONTENT", "yes")
    cfg = Config.resolve({})
    assert cfg.otlp_capture_content is True
    monkeypatch.delenv("TRACEWIRE_OTLP_CAPTURE_CONTENT")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "sometimes")
    with pytest.raises(ConfigError, match="OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT.*otlp_capture_content"):
        tracewire.init(sink="otlp")


def test_sink_object_exports_no_content_for_a_client_that_captures_none(tmp_path: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sink = otlp.OTLPSink(InMemorySpanExporter(), capture_content=True)
    tracewire.init(sink=[sink], capture_content=False)
    assert sink._content is False
    tracewire.shutdown()


def test_otel_sdk_disabled_exports_nothing_and_says_so_once(otel_env: None, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """OTEL_SDK_DISABLED=true, as OpenTelemetry users set it: the otlp sink sends nothing to a
    receiver that is up, logs it once, and the events still settle; unset, the same run exports."""
    import http.server
    import logging
    import threading

    posts: list[str] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posts.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"

    def run() -> dict[str, Any]:
        client = tracewire.init(sink="otlp", otlp_endpoint=endpoint, flush_interval=0.01)
        with tracewire.span("agent", "a"):
            tracewire.record("log", input="x")
        assert client.flush(10)
        stats = client.stats()
        tracewire.shutdown()
        return stats

    try:
        caplog.set_level(logging.WARNING, logger="tracewire")
        monkeypatch.setenv("OTEL_SDK_DISABLED", "TRUE ")  # read as the SDK reads it: any case, trimmed
        stats = run()
        assert posts == [] and stats["written"] == 3 and not stats["dropped"]
        said = [r.getMessage() for r in caplog.records if "OTEL_SDK_DISABLED" in r.getMessage()]
        assert len(said) == 1 and "exports nothing" in said[0]
        monkeypatch.setenv("OTEL_SDK_DISABLED", "false")
        assert run()["written"] == 3 and posts == ["/v1/traces"]
    finally:
        server.shutdown()
        server.server_close()
