"""Delivery rules for the otlp sink: receiver down then up (the core retries, spans arrive),
and shutdown with the receiver down returns within its budget."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import tracewire
from tests.otel.otel_receiver import Phoenix, TcpRelay, free_port
from tracewire.model import attributes as A

PROTOCOLS = ["http/protobuf", "grpc"]


def record_trace(client: tracewire.Client) -> tracewire.Span:
    with tracewire.span("agent", "planner") as root:
        client.start_span("llm", "ChatOpenAI", attributes={A.REQUEST_MODEL: "gpt-4o-mini"}).end(
            output="ok", attributes={A.USAGE_INPUT_TOKENS: 5, A.USAGE_OUTPUT_TOKENS: 2})
    return root


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_receiver_down_then_up_spans_arrive_after_retry(phoenix: Phoenix, protocol: str, tmp_path: Any,
                                                        monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    relay = TcpRelay(phoenix.http_port if protocol == "http/protobuf" else phoenix.grpc_port)
    try:
        # each export tries for up to 2 s (the exporter's own quick retries), so the core's six
        # attempts span several seconds: ample time for the receiver to come back
        client = tracewire.init(sink="otlp", otlp_endpoint=f"http://127.0.0.1:{relay.port}", otlp_protocol=protocol,
                                otlp_timeout=2, flush_interval=0.01)
        root = record_trace(client)
        deadline = time.monotonic() + 10
        while not client.stats()["retries"].get("otlp"):  # the receiver refused: the core retries
            assert time.monotonic() < deadline, client.stats()
            time.sleep(0.01)
        relay.up()
        assert client.flush(30)
        stats = client.stats()
        assert stats["written"] == stats["emitted"] == 4 and not stats["dropped"], stats
        assert stats["retries"]["otlp"] >= 1
        spans = phoenix.spans(root.trace_id, 2)
        assert set(spans) == {"invoke_agent planner", "chat gpt-4o-mini"}
        assert spans["chat gpt-4o-mini"]["parent_id"] == root.span_id
        assert spans["chat gpt-4o-mini"]["attributes"][A.USAGE_INPUT_TOKENS] == 5
        tracewire.shutdown()
    finally:
        relay.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shutdown_with_receiver_down_returns_within_budget(protocol: str, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = tracewire.init(sink="otlp", otlp_endpoint=dead, otlp_protocol=protocol, otlp_timeout=1,
                            flush_interval=0.01)
    record_trace(client)
    client.start_span("agent", "never-ends")
    t0 = time.monotonic()
    ok = tracewire.shutdown(timeout=2)
    elapsed = time.monotonic() - t0
    assert not ok  # the finished spans could not be delivered in time
    assert elapsed < 2.5, elapsed


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_close_exports_unfinished_within_exporter_timeout_when_receiver_down(protocol: str, tmp_path: Any,
                                                                           monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"
    client = tracewire.init(sink="otlp", otlp_endpoint=dead, otlp_protocol=protocol, otlp_timeout=1,
                            flush_interval=0.01)
    client.start_span("agent", "never-ends")  # only a start: the flush succeeds, close() has work left
    t0 = time.monotonic()
    assert tracewire.shutdown(timeout=5)
    elapsed = time.monotonic() - t0
    assert elapsed < 1 + 0.5 + 0.5, elapsed  # exporter timeout + close slack


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_open_span_at_shutdown_cannot_outlast_the_shutdown_budget(protocol: str, tmp_path: Any,
                                                                   monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"
    # the default otlp_timeout (10 s): the exporter alone would retry the unfinished span for 10 s
    client = tracewire.init(sink="otlp", otlp_endpoint=dead, otlp_protocol=protocol, flush_interval=0.01)
    client.start_span("agent", "never-ends")  # the flush succeeds; close() has work left
    t0 = time.monotonic()
    assert tracewire.shutdown(timeout=2)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.5, elapsed


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_open_span_at_exit_cannot_outlast_exit_flush_timeout(protocol: str, tmp_path: Any) -> None:
    code = f"""
        import time, tracewire
        client = tracewire.init(sink="otlp", otlp_endpoint="http://127.0.0.1:{free_port()}",
                                otlp_protocol="{protocol}", flush_interval=0.01)  # nothing listens there
        client.start_span("agent", "never-ends")
        assert client.flush(5)
        print(time.time(), flush=True)  # the script's last line: what follows is the exit hook
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=tmp_path,
                       timeout=60)
    exited = time.time()
    assert r.returncode == 0, r.stderr
    exit_took = exited - float(r.stdout.strip())
    assert exit_took < 2.0 + 1.0, exit_took  # exit_flush_timeout (default 2 s) + 1 s
    assert "not exported within 2.0 s" in r.stderr, r.stderr


class AnsweringReceiver:
    """An OTLP/HTTP endpoint on 127.0.0.1 that answers every export with one status."""

    def __init__(self, status: int) -> None:
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def answering(request: pytest.FixtureRequest) -> Iterator[AnsweringReceiver]:
    receiver = AnsweringReceiver(request.param)
    yield receiver
    receiver.close()


@pytest.mark.parametrize("answering", [400, 404, 413], indirect=True)
def test_permanent_rejection_is_not_retried(answering: AnsweringReceiver, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    client = tracewire.init(sink="otlp", otlp_endpoint=answering.url, otlp_timeout=2, flush_interval=0.01)
    record_trace(client)
    assert not client.flush(20)  # the events were lost: flush says so
    stats = client.stats()
    assert answering.requests == 1 and not stats["retries"].get("otlp"), (answering.requests, stats)
    (reason,) = stats["dropped"]
    assert reason.startswith("otlp:rejected:http_4") and stats["dropped"][reason] == 4, stats
    tracewire.shutdown()


@pytest.mark.parametrize("answering", [408, 429], indirect=True)
def test_transient_http_failure_is_retried(answering: AnsweringReceiver, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    client = tracewire.init(sink="otlp", otlp_endpoint=answering.url, otlp_timeout=0.5, flush_interval=0.01)
    record_trace(client)
    assert not client.flush(30)
    stats = client.stats()
    assert stats["retries"]["otlp"] >= 1 and answering.requests > 1, (answering.requests, stats)
    assert set(stats["dropped"]) == {"otlp:retries_exhausted"}, stats
    tracewire.shutdown()
