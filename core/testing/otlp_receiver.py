"""A loopback OTLP/HTTP trace receiver: accepts every export (status 200, an empty response) and
keeps each request's body by path, for testing or measuring an OTLP export without a backend."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler

from tracewire.testing.local_http import LocalHTTPServer


class OTLPReceiver(LocalHTTPServer):
    """`OTLPReceiver().start()`; `url` + "/v1/traces" (or any path of your own, e.g. one per
    exporter) is an `otlp_endpoint`; `bodies(path)` the protobuf bodies posted there, in order."""

    def __init__(self) -> None:
        self._bodies: dict[str, list[bytes]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver._bodies.setdefault(self.path, []).append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bodies(self, path: str = "/v1/traces") -> list[bytes]:
        with self._lock:
            return list(self._bodies.get(path, ()))

    def span_count(self, path: str = "/v1/traces") -> int:
        """How many spans the requests posted to `path` carried (needs opentelemetry-proto)."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        requests = [ExportTraceServiceRequest.FromString(b) for b in self.bodies(path)]
        return sum(len(ss.spans) for r in requests for rs in r.resource_spans for ss in rs.scope_spans)
