"""The `otlp` sink: tracewire spans to any OpenTelemetry backend (a Collector, Tempo, Jaeger,
Phoenix, Langfuse …) in the GenAI semantic conventions, through the opentelemetry-sdk exporters.

Starts are kept until their end arrives (bounded); a start joined with its end or error becomes
one span, exported with tracewire's own trace and span ids. Point events become span events of
their open parent (or short spans of their own); a score becomes a `gen_ai.evaluation.result` event
of the span it judges while that is open, else a zero-length span of its own. A failed export is a retryable write, so the
core's delivery rules (backoff, attempts, accounting) apply as for every sink; over http/protobuf
a receiver's 4xx other than 408/429 is a permanent failure instead (resending cannot help). At close, spans
whose end never came are exported as unfinished, within the exporter's timeout and the time left
of the client's shutdown budget.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tracewire.config import SETTINGS_BY_NAME, ConfigError, otel_sdk_disabled
from tracewire.model import attributes as A
from tracewire.model.codec import RawJSON
from tracewire.model.score import is_score
from tracewire.sinks import otlp_mapping as otel
from tracewire.sinks import otlp_wire
from tracewire.sinks.base import Batch, Sink, SinkContext, WriteResult
from tracewire.sinks.otlp_wire import PlainEvent, PlainSpan

try:
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
except ImportError as exc:  # the sink factory turns this into a ConfigError naming the sink
    raise ImportError(f"the otlp sink needs opentelemetry-sdk: pip install 'tracewire[otel]' ({exc})") from exc

if TYPE_CHECKING:
    from tracewire.config import Config

log = logging.getLogger("tracewire")

DEFAULT_MAX_OPEN = 10_000
_SAMPLED = otel_trace.TraceFlags(otel_trace.TraceFlags.SAMPLED)
_OK = otel_trace.Status(otel_trace.StatusCode.OK)  # a Status is immutable: one for every span
_UNSET = otel_trace.Status(otel_trace.StatusCode.UNSET)
_UNSET_CODE, _OK_CODE, _ERROR_CODE = 0, 1, 2  # OTLP's status codes (a PlainSpan's)
_CLIENT_KINDS = frozenset({"llm", "embedding", "reranker"})  # calls to a model service
UNFINISHED_AT_CLOSE = "unfinished: the span had not ended when tracewire shut down"
UNFINISHED_EVICTED = "unfinished: more spans open than the otlp sink keeps; exported before its end"


class HttpStatus:
    """The HTTP status of the http/protobuf exporter's last response, seen through a requests
    response hook on the session handed to the exporter: the exporter itself answers only
    SUCCESS or FAILURE, and a receiver's permanent rejection must not be retried like an outage."""

    def __init__(self) -> None:
        self.code: int | None = None

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.code = response.status_code

    def rejected(self) -> bool:
        """A 4xx other than 408/429: the receiver refuses these spans; resending cannot help."""
        return self.code is not None and 400 <= self.code < 500 and self.code not in (408, 429)


class _HashedResource(Resource):
    """The same resource, its hash taken once: the exporters' encoder groups spans by resource,
    and Resource's own hash dumps its attributes as JSON on every call, once per span. Its
    attributes are immutable, so the hash never changes."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


class _Open:
    """A start waiting for its end, with the point events recorded inside it (by event id)."""

    __slots__ = ("start", "events")

    def __init__(self, start: dict[str, Any]) -> None:
        self.start = start
        self.events: dict[str, dict[str, Any]] = {}


class OTLPSink(Sink):
    name = "otlp"
    isolated = True  # beside another sink it gets a lane of its own (see tracewire.engine.lanes)

    def __init__(
        self, exporter: SpanExporter, *, resource: Resource | None = None, capture_content: bool | None = None,
        max_open: int = DEFAULT_MAX_OPEN, close_timeout: float = 10.0, join_active_span: bool = True,
        http_status: HttpStatus | None = None, disabled: bool = False,
    ) -> None:
        """`capture_content`: export content (messages, arguments, results); None leaves it to
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, off unless that says on.
        `http_status`: the probe on the exporter's session (see build_exporter); without one every
        failed export is retried. `disabled`: export nothing (OTEL_SDK_DISABLED=true), like
        the OpenTelemetry SDK; events are settled as the `none` sink settles them."""
        self.disabled = disabled
        self._exporter = exporter
        self._post = _serialized_sender(exporter)
        self._http_status = http_status
        self._resource = _HashedResource(resource or Resource.create({}))
        self._content = otel.content_export_allowed(True, capture_content)
        self._max_open = max_open
        self._close_timeout = close_timeout
        self._join = join_active_span
        self._scope = InstrumentationScope("tracewire", _version())
        self._frame = otlp_wire.Frame(self._resource, self._scope)
        self._open: collections.OrderedDict[str, _Open] = collections.OrderedDict()
        self._evicted: dict[str, _Open] = {}  # pushed out by the bound: go out with the next export
        self._lock = threading.Lock()
        self._closed = False

    def attach(self, context: SinkContext) -> None:
        """Traces started inside an active OpenTelemetry span join it (see
        tracewire.otel.join_active_span)."""
        if not context.capture_content:  # content the client does not capture is never exported
            self._content = False
        if self._join and not self.disabled:
            context.set_root_parent(otel.active_span_parent(context.is_sampled))

    # ------------------------------------------------------------------ writing
    def write(self, batch: Batch) -> WriteResult:
        if self.disabled:
            return WriteResult.success()
        with self._lock:
            spans, done = self._fold(batch.events)
            if not spans:
                return WriteResult.success()
            status = self._http_status
            if status is not None:
                status.code = None
            try:
                failed = not self._send(spans)
            except Exception as exc:  # noqa: BLE001 - an exporter failure is a delivery failure
                log.debug("otlp export raised", exc_info=True)
                return WriteResult.retry_later(f"export_error:{type(exc).__name__}")
            code = status.code if status is not None else None
            if failed and not (status is not None and status.rejected()):
                return WriteResult.retry_later("export_failed" if code is None else f"export_failed:http_{code}")
            # Only now forget what went out (or was refused for good): a retried batch folds the
            # same spans again.
            for sid in done:
                self._open.pop(sid, None)
            self._evicted.clear()
            return WriteResult.permanent(f"rejected:http_{code}") if failed else WriteResult.success()

    def _send(self, spans: list[PlainSpan]) -> bool:
        """Export; True on success. Through the http/protobuf exporter's own sender when it has
        one (see _serialized_sender), the request encoded by tracewire straight from the spans;
        any other exporter gets them as ReadableSpans."""
        if self._post is not None:
            return bool(self._post(otlp_wire.encode_plain(self._frame, spans)).success)
        return self._exporter.export([self._readable(s) for s in spans]) is SpanExportResult.SUCCESS

    def _readable(self, span: PlainSpan) -> ReadableSpan:
        name, trace_id, span_id, parent_id, client, start, end, attrs, events, code, description = span
        return ReadableSpan(
            name=name,
            context=otel_trace.SpanContext(trace_id, span_id, False, _SAMPLED),
            parent=otel_trace.SpanContext(trace_id, parent_id, False, _SAMPLED) if parent_id is not None else None,
            resource=self._resource,
            attributes=attrs,
            events=[Event(n, a, t) for n, a, t in events],
            kind=otel_trace.SpanKind.CLIENT if client else otel_trace.SpanKind.INTERNAL,
            status=_OK if code == _OK_CODE else _UNSET if code == _UNSET_CODE
            else otel_trace.Status(otel_trace.StatusCode.ERROR, description),
            start_time=start,
            end_time=end,
            instrumentation_scope=self._scope,
        )

    def _fold(self, events: list[dict[str, Any]]) -> tuple[list[PlainSpan], dict[str, None]]:
        spans: list[PlainSpan] = []
        done: dict[str, None] = {}  # ordered set
        open_ = self._open
        for ev in events:
            ev = _values_read(ev)
            phase = ev.get("phase")
            sid = ev.get("span_id") or ""
            if phase == "start":
                if sid not in open_ and sid not in done:
                    open_[sid] = _Open(ev)
                    if len(open_) > self._max_open:
                        self._bound()
            elif phase == "end" or phase == "error":
                opened = open_.get(sid)
                spans.append(self._span(opened.start if opened else None, ev, opened))
                done[sid] = None
            elif is_score(ev):
                # an open span is forgotten only once exported: one that ended in this batch is built already
                scored = open_.get(sid) if sid not in done else None
                if scored is not None:  # rides on the span it judges (an update of the same id replaces it)
                    scored.events[ev["id"]] = ev
                else:
                    span = self._score_span(ev)
                    if span is not None:
                        spans.append(span)
            else:
                pid = ev.get("parent_span_id") or ""
                parent = open_.get(pid) if pid not in done else None
                if parent is not None:
                    parent.events[ev["id"]] = ev
                else:
                    spans.append(self._span(None, ev, None))
        spans.extend(self._unfinished(o, UNFINISHED_EVICTED, time.time_ns()) for o in self._evicted.values())
        return spans, done

    def _bound(self) -> None:
        while len(self._open) > self._max_open:
            sid, oldest = self._open.popitem(last=False)
            self._evicted[sid] = oldest

    # ------------------------------------------------------------------ building spans
    def _span(
        self, start: dict[str, Any] | None, end: dict[str, Any], opened: _Open | None,
        status: tuple[int, str] | None = None, end_ns: int | None = None,
    ) -> PlainSpan:
        first = start or end
        attrs = otel.span_attributes(start, end if end is not start else None, content=self._content)
        kind = str(first.get("kind") or "custom")
        start_ns = first.get("time") or end.get("time")
        events = [self._event(p) for p in opened.events.values()] if opened and opened.events else []
        error = end.get("error") if end is not start else None
        if status is None:
            if error:
                status = (_ERROR_CODE, _error_description(error))
                events.append(_exception_event(error, end.get("time") or start_ns))
            elif end.get("phase") == "end":
                status = (_OK_CODE, "")
            else:
                status = (_UNSET_CODE, "")
        parent_id = first.get("parent_span_id")
        return (
            otel.span_name(kind, str(first.get("name") or ""), attrs),
            int(first.get("trace_id") or "0", 16), int(first.get("span_id") or "0", 16),
            int(parent_id, 16) if parent_id else None, kind in _CLIENT_KINDS,
            start_ns, end_ns if end_ns is not None else end.get("time") or start_ns,
            attrs, events, *status,
        )

    def _unfinished(self, opened: _Open, why: str, now_ns: int) -> PlainSpan:
        start = {**opened.start, "attributes": {**(opened.start.get("attributes") or {}), A.UNFINISHED: True}}
        return self._span(start, start, opened, status=(_ERROR_CODE, why), end_ns=max(now_ns, start.get("time") or 0))

    def _score_span(self, score: dict[str, Any]) -> PlainSpan | None:
        """A score whose span is not open here (exported already, another process's, or the trace's
        own): a zero-length span in the scored trace, under the scored span, carrying the evaluation
        as attributes and as its event. Its id comes from the score id, so an update re-exports the
        same span. A session's score has no trace to go in: not exported."""
        trace_id = _hex_id(score.get("trace_id"), 32)
        if trace_id is None:
            return None
        parent = _hex_id(score.get("span_id"), 16)
        digest = hashlib.sha256(str(score.get("id")).encode("utf-8", "surrogatepass")).digest()
        span_id = int.from_bytes(digest[:8], "big") or 1
        attrs = {otel.TW_KIND: "score", **otel.score_attributes(score)}
        when = score.get("time") if isinstance(score.get("time"), int) else time.time_ns()
        return (f"{otel.EVALUATION_EVENT} {score.get('name')}", trace_id, span_id, parent, False, when, when,
                attrs, [self._event(score)], _UNSET_CODE, "")

    def _event(self, point: dict[str, Any]) -> PlainEvent:
        if is_score(point):
            return otel.EVALUATION_EVENT, otel.score_attributes(point), _event_time(point.get("time"))
        return (str(point.get("type") or point.get("name") or "event"),
                otel.event_attributes(point, content=self._content), _event_time(point.get("time")))

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        self.close_within(None)

    def close_within(self, timeout: float | None) -> None:
        """Export spans still open as unfinished (status ERROR saying so), waiting at most the
        exporter's timeout and `timeout` (what is left of the client's shutdown budget), even when
        the receiver is down; then shut the exporter down."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            now = time.time_ns()
            pending = [self._unfinished(o, UNFINISHED_AT_CLOSE, now) for o in self._open.values()]
            pending += [self._unfinished(o, UNFINISHED_EVICTED, now) for o in self._evicted.values()]
            self._open.clear()
            self._evicted.clear()
        wait = self._close_timeout if timeout is None else min(self._close_timeout, timeout)
        if pending and wait > 0:
            worker = threading.Thread(target=self._export_quietly, args=(pending,), name="tracewire-otlp-close", daemon=True)
            worker.start()
            worker.join(wait)
            if worker.is_alive():
                log.warning("tracewire: %d unfinished span(s) not exported within %.1f s at shutdown",
                            len(pending), wait)
        elif pending:
            log.warning("tracewire: shutdown budget spent; %d unfinished span(s) not exported", len(pending))
        self._post = None  # from now on the exporter's own export(), which refuses once shut down
        try:
            self._exporter.shutdown()  # also aborts an export still waiting to retry
        except Exception:  # noqa: BLE001
            log.debug("otlp exporter shutdown failed", exc_info=True)

    def _export_quietly(self, spans: list[PlainSpan]) -> None:
        try:
            if not self._send(spans):
                log.warning("tracewire: %d unfinished span(s) could not be exported at shutdown", len(spans))
        except Exception:  # noqa: BLE001
            log.warning("tracewire: exporting unfinished spans at shutdown failed", exc_info=True)

    def after_fork(self) -> None:
        # the parent's open spans are the parent's to finish
        self._lock = threading.Lock()
        self._open.clear()
        self._evicted.clear()


_VALUE_FIELDS = ("metadata", "attributes", "error")


def _values_read(ev: dict[str, Any]) -> dict[str, Any]:
    """The event, or a copy of it with its metadata, attributes and error as values: the pipeline hands
    sinks what it serialized already as JSON text (`RawJSON`); the mapping takes `input` and
    `output` as text, and parses them only when it needs their structure (an LLM's messages)."""
    get = ev.get
    if type(get("attributes")) is not RawJSON and type(get("metadata")) is not RawJSON \
            and type(get("error")) is not RawJSON:  # the common case, read without a list
        return ev
    return {**ev, **{k: ev[k].decode() for k in _VALUE_FIELDS if type(get(k)) is RawJSON}}


def _serialized_sender(exporter: SpanExporter) -> Callable[[bytes], Any] | None:
    """The opentelemetry http/protobuf exporter's sender of an encoded request (its HTTP client:
    session, headers, compression, timeout and quick retries), for the request tracewire encodes
    itself (tracewire.sinks.otlp_wire, several times cheaper than the exporter's encoder). None
    for any other exporter, or an exporter version without one: those get the spans through
    `export()`."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
    except ImportError:
        return None
    if type(exporter) is not HttpExporter:
        return None
    send = getattr(getattr(exporter, "_client", None), "export", None)
    return send if callable(send) else None


def _hex_id(value: Any, width: int) -> int | None:
    """An OpenTelemetry id from tracewire's hex id; None for an id of another shape (a score may name
    any trace id its caller chose) or all zeros."""
    if not isinstance(value, str) or len(value) != width:
        return None
    try:
        return int(value, 16) or None
    except ValueError:
        return None


def _error_description(error: Mapping[str, Any]) -> str:
    message = str(error.get("message") or "")
    return f"{error.get('type') or 'Error'}: {message}" if message else str(error.get("type") or "Error")


def _exception_event(error: Mapping[str, Any], time_ns: int | None) -> PlainEvent:
    attrs = {"exception.type": str(error.get("type") or "Error"), "exception.message": str(error.get("message") or "")}
    if error.get("stacktrace"):
        attrs["exception.stacktrace"] = str(error["stacktrace"])
    return "exception", attrs, _event_time(time_ns)


def _event_time(time_ns: Any) -> Any:
    """An event without a time is stamped now, as an OpenTelemetry Event is."""
    return time.time_ns() if time_ns is None else time_ns


def _version() -> str:
    from tracewire.version import __version__

    return __version__


# ---------------------------------------------------------------------- configuration
def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def resolve_protocol(config: Config) -> str:
    if config.otlp_protocol:
        return str(config.otlp_protocol)
    raw = _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    if raw not in ("http/protobuf", "grpc"):
        raise ConfigError(
            f"tracewire: invalid value {raw!r} for OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL; the otlp sink "
            "supports http/protobuf or grpc (setting 'otlp_protocol')"
        )
    return raw


def resolve_timeout(config: Config) -> float:
    """Seconds; like the opentelemetry-python exporters, the environment variables are read in seconds."""
    if config.otlp_timeout is not None:
        return float(config.otlp_timeout)
    raw = _env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        return float(raw) if raw else 10.0
    except ValueError:
        raise ConfigError(f"tracewire: invalid value {raw!r} for OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT; expected seconds") from None


def resolve_endpoint(config: Config, protocol: str) -> str | None:
    """A full traces URL for http/protobuf (`/v1/traces` appended to a base URL), host:port URL
    for grpc; None leaves it to the exporter's own OTEL_EXPORTER_OTLP_* handling."""
    base = config.otlp_endpoint
    if base is None:
        return None
    base = str(base).strip()
    if protocol == "http/protobuf" and not base.rstrip("/").endswith("/v1/traces"):
        return base.rstrip("/") + "/v1/traces"
    return base


def resolve_headers(config: Config) -> dict[str, str] | None:
    if not config.otlp_headers:
        return None
    from opentelemetry.util.re import parse_env_headers

    return dict(parse_env_headers(str(config.otlp_headers), liberal=True))


def resolve_resource(config: Config) -> Resource:
    """service.name: the `service_name` setting when set, else OTEL_SERVICE_NAME /
    OTEL_RESOURCE_ATTRIBUTES (read by Resource.create), else tracewire's default."""
    default = SETTINGS_BY_NAME["service_name"].default
    attrs: dict[str, Any] = {}
    if config.service_name != default:
        attrs[SERVICE_NAME] = config.service_name
    resource = Resource.create(attrs)
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default}))
    return resource


_CREDENTIAL_PROVIDER_VARS = ("OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
                             "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER")


def build_exporter(config: Config, http_status: HttpStatus | None = None) -> tuple[SpanExporter, float]:
    """The exporter and its timeout. With `http_status`, an http/protobuf exporter gets a requests
    session whose response hook records each status there (the exporter's public `session`
    argument), unless a credential-provider variable makes the exporter load its own session."""
    protocol = resolve_protocol(config)
    timeout = resolve_timeout(config)
    endpoint = resolve_endpoint(config, protocol)
    headers = resolve_headers(config)
    if protocol == "grpc":
        # The grpc exporter reports no status code (only SUCCESS/FAILURE, and no hook to observe
        # one): its failures all stay retryable.
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError as exc:
            raise ImportError(f"otlp over grpc needs opentelemetry-exporter-otlp-proto-grpc: pip install 'tracewire[otel]' ({exc})") from exc
        return GrpcExporter(endpoint=endpoint, headers=headers, timeout=timeout), timeout
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    session = None
    if http_status is not None and not _env(*_CREDENTIAL_PROVIDER_VARS):
        import requests

        session = requests.Session()
        session.hooks["response"].append(http_status.hook)
    return HttpExporter(endpoint=endpoint, headers=headers, timeout=timeout, session=session), timeout


def from_config(config: Config) -> OTLPSink:
    content = otel.content_export_allowed(config.capture_content, config.otlp_capture_content)
    status = HttpStatus()
    exporter, timeout = build_exporter(config, status)  # built all the same: a bad setting fails at init
    disabled = otel_sdk_disabled()
    if disabled:
        log.warning("tracewire: OTEL_SDK_DISABLED=true: the otlp sink exports nothing (unset it to export)")
    return OTLPSink(exporter, resource=resolve_resource(config), capture_content=content, close_timeout=timeout + 0.5,
                    http_status=status, disabled=disabled)
