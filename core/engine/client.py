"""The event client: builds events on the caller's thread, delivers them from one worker thread.

Adapters and the public API share one path: `start_span` / `Span.end` / `Span.fail` / `point`,
each taking an explicit parent and explicit timestamps when the framework supplies its own.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import os
import pickle
import random
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tracewire.config import Config
from tracewire.engine.lanes import Lane, Pass, isolated
from tracewire.engine.stats import Stats
from tracewire.model import codec as _json
from tracewire.model.codec import Snapshot
from tracewire.model.content import HELD_BYTES
from tracewire.model.context import (
    SessionInfo,
    SpanContext,
    current_session,
    current_span,
    parent_resolvers,
    resolve_parent,
)
from tracewire.model.event import ENVELOPE_BYTES, SCHEMA, Event, point_kind
from tracewire.model.ids import new_event_id, new_span_id, new_trace_id
from tracewire.pipeline.processors import DecodeRaw, Processor, default_processors, utf8_len, withhold
from tracewire.pipeline.redact import Redactor
from tracewire.pipeline.sanitize import Sanitizer
from tracewire.sinks.base import BaseSink, Batch, Sink, WriteResult

log = logging.getLogger("tracewire")

UNSET: Any = object()
CURRENT: Any = object()  # "parent = whatever span is current in this context"
_MAX_ATTEMPTS = 6
# What one piece of deferred work counts against `queue_max_bytes` unless it says it holds more:
# an envelope and held content of the flat estimate. Work this size is queued without the lock.
DEFER_UNIT = ENVELOPE_BYTES + HELD_BYTES
# Work `defer` queued: (fn, args), or (fn, args, bytes held over DEFER_UNIT) when it said its size.
Deferred = tuple[Callable[..., object], tuple[Any, ...]] | tuple[Callable[..., object], tuple[Any, ...], int]


class Span(SpanContext):
    """A started operation. End it once with `end()` or `fail()`; usable as a (async) context manager."""

    __slots__ = (
        "_client", "parent_span_id", "kind", "name", "framework", "start_ns", "tags", "metadata",
        "_done", "_output", "_attrs", "_tokens",
    )

    def __init__(
        self, client: Client | None, trace_id: str, span_id: str, parent_span_id: str | None, kind: str,
        name: str, framework: str, start_ns: int, sampled: bool, session_id: str | None,
        user_id: str | None, tags: tuple[str, ...], metadata: dict[str, Any] | None,
    ) -> None:
        # assigned here rather than through super().__init__: one call less per span
        self.trace_id = trace_id
        self.span_id = span_id
        self.sampled = sampled
        self.session_id = session_id
        self.user_id = user_id
        self._client = client
        self.parent_span_id = parent_span_id
        self.kind = kind
        self.name = name
        self.framework = framework
        self.start_ns = start_ns
        self.tags = tags
        self.metadata = metadata
        self._done = False
        self._output: Any = UNSET
        self._attrs: dict[str, Any] | None = None
        self._tokens: list[Any] | None = None  # context tokens, only for `with` use

    @property
    def ended(self) -> bool:
        return self._done

    def set_output(self, output: Any) -> None:
        self._output = output

    def set_attribute(self, key: str, value: Any) -> None:
        if self._attrs is None:
            self._attrs = {}
        self._attrs[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self._attrs is None:
            self._attrs = {}
        self._attrs.update(attributes)

    def end(
        self, output: Any = UNSET, *, attributes: Mapping[str, Any] | None = None, end_ns: int | None = None,
        input: Any = UNSET,
    ) -> None:
        """`input`: for frameworks that learn a run's real input only at its end (a streamed
        LangChain chain); it replaces the start's."""
        if self._done:
            return
        self._done = True
        if self._client is not None and self.sampled:
            out = self._output if output is UNSET else output
            self._client._finish(self, "end", out, attributes, None, end_ns, input)

    def fail(
        self, error: BaseException | Mapping[str, Any] | str, *, attributes: Mapping[str, Any] | None = None,
        end_ns: int | None = None, output: Any = UNSET, input: Any = UNSET,
    ) -> None:
        if self._done:
            return
        self._done = True
        if self._client is not None and self.sampled:
            out = self._output if output is UNSET else output
            self._client._finish(self, "error", out, attributes, error_info(error), end_ns, input)

    def record(self, event_type: str, **kwargs: Any) -> None:
        """A point event (`user.input`, `agent.response`, …) inside this span."""
        if self._client is not None:
            self._client.point(event_type, parent=self, **kwargs)

    # context-manager use makes the span current for the block
    def __enter__(self) -> Span:
        if self._tokens is None:
            self._tokens = []
        self._tokens.append(current_span.set(self))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._tokens:
            token = self._tokens.pop()
            try:
                current_span.reset(token)
            except ValueError:  # exited in another context (e.g. a generator finalised elsewhere)
                current_span.set(None)
        if exc is not None and not isinstance(exc, GeneratorExit):
            self.fail(exc)
        else:
            self.end()

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


def error_info(error: BaseException | Mapping[str, Any] | str) -> dict[str, Any]:
    """The envelope's `error` object: {type, message, stacktrace} (+ code where the error has one)."""
    if isinstance(error, BaseException):
        # One str() of the exception (it may be slow): TracebackException takes it once and
        # formats the stack trace from it.
        message: Any = None
        try:
            te = traceback.TracebackException(type(error), error, error.__traceback__)
            message = getattr(te, "_str", None)
            # Whole: a cut here, before scrubbing, could leave half a secret no shape matches.
            # The pipeline caps it (max_string_length) once scrubbed.
            stack: str | None = "".join(te.format())
        except Exception:  # noqa: BLE001
            stack = None
        info: dict[str, Any] = {
            "type": f"{type(error).__module__}.{type(error).__qualname__}".removeprefix("builtins."),
            "message": message if type(message) is str else _safe_str(error),
            "stacktrace": stack,
        }
        code = getattr(error, "code", None) or getattr(error, "status_code", None)
        if callable(code):
            try:
                code = code()
            except Exception:  # noqa: BLE001
                code = None
        if code is not None:
            info["code"] = code if isinstance(code, (int, str)) else _safe_str(code)
        return info
    if isinstance(error, Mapping):
        return {"type": str(error.get("type", "Error")), "message": str(error.get("message", "")),
                "stacktrace": error.get("stacktrace"), **{k: v for k, v in error.items() if k not in ("type", "message", "stacktrace")}}
    return {"type": "Error", "message": str(error), "stacktrace": None}


_snapshot = _json.snapshot
_fragment = _json.fragment


def thaw(frozen: Any) -> Any:
    """`Client.frozen` content back to what `start_span` and `Span.end` take."""
    t = type(frozen)
    return Snapshot(frozen) if t is str else frozen[0] if t is tuple else frozen


def frozen_size(frozen: Any) -> int:
    """Bytes `Client.frozen` content holds, for the queue's byte limit (a guess for a copy)."""
    return len(frozen) if type(frozen) is str else 512 if type(frozen) is tuple else 0


def _unsnap(value: Any) -> Any:
    """Content an adapter serialized itself, back to data (for the pickle and sanitizer paths)."""
    return _json.loads(value.text) if type(value) is Snapshot else value


def _safe_str(obj: Any) -> str:
    try:
        return str(obj)
    except Exception:  # noqa: BLE001
        return f"<{type(obj).__name__}: str() failed>"


class _Item:
    __slots__ = ("event", "blob", "ti", "to", "tm", "size", "line", "spooled")

    # event: the envelope, or for span events the compact tuple the worker builds it from.
    # ti / to / tm: input, output, metadata as JSON text (three slots, not a tuple: one object
    # less per event for the garbage collector); blob: all three pickled instead.
    def __init__(
        self, event: Any, blob: bytes | None, size: int, ti: str | None = None, to: str | None = None,
        tm: str | None = None,
    ) -> None:
        self.event = event
        self.blob = blob
        self.ti = ti
        self.to = to
        self.tm = tm
        self.size = size
        self.line: str | None = None  # set once prepared and serialized (durable / spill path)
        self.spooled = False  # already committed to the spooling sinks


_clients: weakref.WeakSet[Client] = weakref.WeakSet()
# Run once at interpreter exit before the final flush: integrations drain work their framework
# still holds in its own queues (LiteLLM's async logging worker, whose own exit hook runs later).
exit_hooks: list[Callable[[], None]] = []


class Client:
    """Owns identity, safety and delivery. Create through `tracewire.init()`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.disabled: bool = config.disabled
        self.capture_content: bool = config.capture_content
        self._redactor = Redactor(config.redact_keys, config.allow_keys)
        self._sanitizer = Sanitizer(self._redactor, config.max_string_length, config.mask)
        self.processors: list[Processor] = default_processors(
            self._redactor, self._sanitizer, config.max_string_length, config.max_event_bytes,
            masking=config.mask is not None,
        )
        self._defaults = list(self.processors)
        # While the pipeline is the built-in one and nothing is masked, most events need none of
        # its walk: see `_fast_line`.
        self._fast_ok = config.mask is None
        self._fast_limit = min(config.max_string_length, config.max_event_bytes)
        self._max_event_bytes = config.max_event_bytes
        if config.processors:
            self.processors += [DecodeRaw(), *config.processors]
        self._sample_threshold = int(config.sample_rate * (1 << 64)) if config.sample_rate < 1.0 else None
        self.sinks: list[Sink] = [] if self.disabled else build_sinks(config)
        self._batch_size: int = config.batch_size
        self._batch_bytes: int = config.batch_bytes
        self._interval: float = config.flush_interval
        self._max_events: int = config.queue_max_events
        self._max_bytes: int = config.queue_max_bytes
        self._drop_oldest = config.queue_full_policy == "drop_oldest"
        # Sinks with a durable spool (http): committed on the worker every commit_interval, or on
        # the caller's thread when durable=True / when the queue is full under policy `spool`.
        self._spool_sinks: list[Any] = [s for s in self.sinks if getattr(s, "spooling", False)]
        self._durable = bool(config.durable) and bool(self._spool_sinks)
        self._defer_inline = self.disabled or self._durable  # `defer` runs the work right away
        self._spill = config.queue_full_policy == "spool" and bool(self._spool_sinks)
        for sink in self._spool_sinks:  # loss is reported to the collector; shipper errors counted here
            sink.loss_source = lambda: dict(self.counters.dropped)
            sink.on_error = lambda where, exc: self.counters.internal_error(where, exc)
        if self._spool_sinks:
            self._interval = min(self._interval, config.commit_interval)
        self._seq = itertools.count(1)
        # Consulted when no tracewire span is current: lets an integration (OpenTelemetry) hand
        # in an outside parent so the trace joins it. Must be cheap; returns None for "none".
        self.root_parent_provider: Callable[[], SpanContext | None] | None = None
        for sink in self.sinks:  # a sink may install hooks on its client (the otlp sink: OTel parents)
            bind = getattr(sink, "bind_client", None)
            if callable(bind):
                bind(self)
        self._reset_delivery_state()
        self._closed = False
        self._worker: threading.Thread | None = None
        if not self.disabled:
            self._start_worker()
            atexit.register(self._at_exit)
            _clients.add(self)

    # ------------------------------------------------------------------ state
    def _reset_delivery_state(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._queue: collections.deque[_Item] = collections.deque()
        self._queued_bytes = 0
        self._in_flight = 0
        self._accepted = 0  # events that entered the queue (or were refused at its door)
        self._completed = 0  # of those, how many are finished (written or dropped)
        self._lost = 0  # of those, dropped for a reason other than a filter: flush() reports them
        self._stopping = False
        self._lanes: dict[int, Lane] = {}  # id(sink) -> its lane (remote sinks beside others)
        # Adapters' deferred work (see `defer`): run on the worker before each drain, in order.
        # Never replaced while the client runs: callers append to it without the lock.
        self._deferred: collections.deque[Deferred] = collections.deque()
        self._deferred_extra = 0  # bytes the sized work holds over `DEFER_UNIT` each
        self._deferred_taken = 0  # work the worker has taken and not finished
        self._replayed: list[_Item] | None = None  # set while the worker runs deferred work
        self._worker_ident: int | None = None
        self._deferred_done = 0
        self.counters = Stats()

    def _start_worker(self) -> None:
        self._lanes = {id(s): Lane(s, self._write_with_retry, self._settle, self._max_bytes) for s in isolated(self.sinks)}
        self._worker = threading.Thread(target=self._run, name="tracewire-worker", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ building events
    def start_span(
        self, kind: str, name: str, *, input: Any = UNSET, parent: Any = CURRENT,
        attributes: Mapping[str, Any] | None = None, framework: str = "manual", start_ns: int | None = None,
        tags: list[str] | tuple[str, ...] | None = None, metadata: Mapping[str, Any] | None = None,
        session_id: str | None = None, user_id: str | None = None, span_id: str | None = None,
        trace_id: str | None = None, session: Any = CURRENT,
    ) -> Span:
        """Start a span. `parent`: CURRENT (the context's), None (a new trace) or a SpanContext.
        `span_id` / `trace_id` (a root's): ids the adapter allocated itself, for frameworks whose
        events arrive out of order (a child may be seen before its parent's start).
        `session`: the `SessionInfo` (or None) that applies, for a span started from `defer`red
        work on the worker; CURRENT: the caller's `tracewire.session()`."""
        now = time.time_ns() if start_ns is None else start_ns
        p = self.parent_of(parent)
        sess = current_session.get() if session is CURRENT else session
        trace_id, sampled = self.trace_of(p, trace_id)
        parent_id = None if p is None else p.span_id
        session_id, user_id = who(p, sess, session_id, user_id)
        span = Span(
            self, trace_id, span_id or new_span_id(), parent_id, kind, name, framework, now, sampled,
            session_id, user_id,
            (tuple(tags) if tags else ()) if sess is None else _merge_tags(sess, tags),
            (dict(metadata) if metadata else None) if sess is None else _merge_metadata(sess, metadata),
        )
        if self.disabled:
            span._client = None
        elif sampled:
            self._emit(span, "start", now, input, UNSET, dict(attributes) if attributes else None, None)
        else:
            self.counters.sampled_out += 1
        return span

    def point(  # positional too, in this order: `tracewire.record` passes its arguments on so
        self, event_type: str, name: str | None = None, input: Any = UNSET, output: Any = UNSET,
        attributes: Mapping[str, Any] | None = None, parent: Any = CURRENT, time_ns: int | None = None,
        framework: str = "manual", tags: list[str] | tuple[str, ...] | None = None,
        metadata: Mapping[str, Any] | None = None, session_id: str | None = None, user_id: str | None = None,
        error: BaseException | Mapping[str, Any] | str | None = None,
    ) -> None:
        """A single event: `user.input`, `agent.response`, `user.feedback`, `metric`, `log`, custom."""
        if self.disabled:
            return
        now = time.time_ns() if time_ns is None else time_ns
        p = self.parent_of(parent)
        sess = current_session.get()
        if p is None:  # `trace_of`, written out: record()'s hot path spares the call
            trace_id, parent_id = new_trace_id(now), None
            sampled = self.is_sampled(trace_id)
        else:
            trace_id, parent_id, sampled = p.trace_id, p.span_id, p.sampled
        if not sampled:
            self.counters.sampled_out += 1
            return
        session_id, user_id = who(p, sess, session_id, user_id)
        # queued compact, like span events: (None marks a point) the worker builds the envelope
        spec = (
            None, event_type, now, next(self._seq), dict(attributes) if attributes else None,
            error_info(error) if error else None, trace_id, parent_id, session_id, user_id,
            name or event_type, framework, (tuple(tags) if tags else ()) if sess is None else _merge_tags(sess, tags),
        )
        self._enqueue(spec, input, output, metadata if sess is None else _merge_metadata(sess, metadata))

    def _finish(
        self, span: Span, phase: str, output: Any, attributes: Mapping[str, Any] | None,
        error: dict[str, Any] | None, end_ns: int | None, input: Any = UNSET,
    ) -> None:
        attrs = span._attrs
        if attributes:
            attrs = {**attrs, **attributes} if attrs else dict(attributes)
        self._emit(span, phase, time.time_ns() if end_ns is None else end_ns, input, output, attrs, error)

    def _emit(
        self, span: Span, phase: str, now: int, input: Any, output: Any, attrs: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> None:
        # A span event is queued as a compact tuple; the worker builds the envelope (event id,
        # the dict) from it. A span's identity fields never change, so this records the same thing.
        self._enqueue((span, phase, now, next(self._seq), attrs, error), input, output, span.metadata)

    @staticmethod
    def _envelope(spec: tuple[Any, ...]) -> Event:
        if spec[0] is None:
            _, etype, now, seq, attrs, error, trace_id, parent_id, session_id, user_id, name, fw, tags = spec
            return {
                "id": new_event_id(now), "schema": SCHEMA, "type": etype, "kind": point_kind(etype),
                "phase": "point", "trace_id": trace_id, "span_id": new_span_id(), "parent_span_id": parent_id,
                "session_id": session_id, "user_id": user_id, "name": name, "framework": fw, "time": now,
                "seq": seq, "attributes": attrs or {}, "error": error, "tags": tags, "metadata": None,
            }
        span, phase, now, seq, attrs, error = spec
        return {
            "id": new_event_id(now), "schema": SCHEMA, "type": f"{span.kind}.{phase}", "kind": span.kind,
            "phase": phase, "trace_id": span.trace_id, "span_id": span.span_id,
            "parent_span_id": span.parent_span_id, "session_id": span.session_id, "user_id": span.user_id,
            "name": span.name, "framework": span.framework, "time": now, "seq": seq,
            "attributes": attrs or {}, "error": error, "tags": span.tags, "metadata": None,
        }

    def _enqueue(self, ev: Event | tuple[Any, ...], input: Any, output: Any, metadata: Any) -> None:
        """The hot path's end: snapshot content, account, append. No I/O, no waiting."""
        try:
            blob: bytes | None = None
            ti = to = tm = None
            texts = False
            size = ENVELOPE_BYTES
            if not self.capture_content:
                input = output = UNSET
            if input is not UNSET or output is not UNSET or metadata:
                if input is UNSET:
                    input = None
                if output is UNSET:
                    output = None
                try:
                    if _json.snapshot is not None:
                        # JSON text is the cheapest immutable copy, and spares the worker an unpickle.
                        # Written out, not looped: this runs for every event.
                        try:
                            ti = None if input is None else input.text if type(input) is Snapshot else _snapshot(input)
                            to = None if output is None else output.text if type(output) is Snapshot else _snapshot(output)
                            tm = _snapshot(metadata) if metadata else None
                            texts = True
                            size += (len(ti) if ti else 0) + (len(to) if to else 0) + (len(tm) if tm else 0)
                        except Exception:  # noqa: BLE001 - not plain data: pickle it instead
                            ti = to = tm = None
                    if not texts:
                        content = (_unsnap(input), _unsnap(output), metadata or None)
                        blob = pickle.dumps(content, 5)
                        size += len(blob)
                except Exception:  # noqa: BLE001 - not picklable: make it safe right here instead
                    env = self._envelope(ev) if isinstance(ev, tuple) else ev
                    env["input"], env["output"], env["metadata"] = (
                        self._sanitizer.value(_unsnap(c)) if c is not None else None
                        for c in (input, output, metadata or None)
                    )
                    ev = env
                    size += 512
            item = _Item(ev, blob, size, ti, to, tm)
        except Exception as exc:  # noqa: BLE001 - never break the host
            self.counters.internal_error("enqueue", exc)
            return
        replayed = self._replayed
        if replayed is not None and threading.get_ident() == self._worker_ident:
            replayed.append(item)  # made by deferred work on the worker: admitted all at once
            return
        self._admit(item)

    def _admit(self, item: _Item, made: bool = False) -> None:
        """Into the queue, or what the queue-full policy says. `made`: by deferred work, while a
        flush may be waiting for it, so a refusal is a loss that flush() reports."""
        size = item.size
        if self._spool_sinks and (self._durable or (self._spill and (
            len(self._queue) >= self._max_events or self._queued_bytes + size > self._max_bytes
        ))) and self._commit_now(item):
            return
        with self._lock:
            st = self.counters
            st.emitted += 1
            self._accepted += 1
            # the bytes of deferred work count too (see `_pending_bytes`, written out: every event comes here)
            held = self._queued_bytes + len(self._deferred) * DEFER_UNIT + self._deferred_extra
            if len(self._queue) >= self._max_events or held + size > self._max_bytes:
                if not self._drop_oldest or not self._queue:
                    st.dropped["queue_full"] += 1
                    self._completed += 1
                    self._lost += made
                    return
                while self._queue and (len(self._queue) >= self._max_events or held + size > self._max_bytes):
                    old = self._queue.popleft()
                    self._queued_bytes -= old.size
                    held -= old.size
                    st.dropped["queue_full"] += 1
                    self._completed += 1
                    self._lost += 1  # it was enqueued: a flush waiting for it must say so
            self._queue.append(item)
            self._queued_bytes += size
            if len(self._queue) == self._batch_size:
                self._wake.set()

    def defer(self, fn: Callable[..., object], *args: Any, size: int = DEFER_UNIT, force: bool = False) -> bool:
        """Run `fn(*args)` on the worker, in call order, before the next drain: an adapter's
        hooks do there what is too costly on the user's thread. The arguments are content already
        `frozen` (or held) and the ids and times the hook decided. `size`: bytes they hold,
        counted against `queue_max_bytes` until the work runs. False: refused (queue full), and
        counted as one event dropped; `force`: the end of a span whose start was admitted, never
        refused. The policy in full: docs/architecture.md, "Deferred work"."""
        if self._defer_inline:  # disabled, or durable: the event is committed before the hook returns
            if not self.disabled:
                self._run_deferred((fn, args))
            return True
        q = self._deferred
        if size <= DEFER_UNIT and not self._spill:
            # The common case, without the lock: one append, atomic under the GIL. The limits are
            # read racily; two callers racing may each be admitted one item over them. (The bytes
            # are `_pending_bytes() + DEFER_UNIT`, written out: every hook comes here.)
            if force or (len(q) < self._max_events and
                         self._queued_bytes + (len(q) + 1) * DEFER_UNIT + self._deferred_extra <= self._max_bytes):
                q.append((fn, args))
                if len(q) == self._batch_size:
                    self._wake.set()
                return True
            self.count_dropped("queue_full")
            return False
        with self._lock:
            extra = max(0, size - DEFER_UNIT)
            if force or (
                len(q) < self._max_events and self._pending_bytes() + DEFER_UNIT + extra <= self._max_bytes
            ) or (self._spill and len(q) < 2 * self._max_events):  # its events spill when it runs
                q.append((fn, args, extra))
                self._deferred_extra += extra
                admitted = True
            else:
                admitted = False
        if not admitted:
            self.count_dropped("queue_full")
            return False
        if len(q) == self._batch_size:
            self._wake.set()
        return True

    def _pending_bytes(self) -> int:
        """Bytes queued: events, and deferred work (see `DEFER_UNIT`)."""
        return self._queued_bytes + len(self._deferred) * DEFER_UNIT + self._deferred_extra

    def frozen(self, value: Any) -> Any:
        """Content fixed as it is now, for `defer`, in a form the garbage collector does not track
        while it waits: its JSON text (a str) when it is plain data, else a JSON-safe copy in a
        1-tuple (masked later, on the worker, like any other content). `thaw` undoes it."""
        if value is UNSET or value is None:
            return value
        if type(value) is Snapshot:
            return value.text
        if _json.snapshot is not None:
            try:
                return _snapshot(value)
            except Exception:  # noqa: BLE001 - not plain data: copy it safely instead
                pass
        return (self._sanitizer.value(value, mask=False),)

    def report_error(self, where: str, exc: BaseException) -> None:
        """An internal failure (an adapter's hook, say): counted in `stats()`, logged once."""
        self.counters.internal_error(where, exc)

    def count_dropped(self, reason: str, n: int = 1) -> None:
        """Events an adapter could not record (their work was refused): emitted and dropped."""
        with self._lock:
            self.counters.emitted += n
            self.counters.dropped[reason] += n
            self._accepted += n
            self._completed += n
            self._lost += n

    def _run_deferred(self, work: Deferred) -> None:
        try:
            work[0](*work[1])
        except Exception as exc:  # noqa: BLE001 - an adapter's deferred work must not stop the worker
            self.counters.internal_error(f"deferred:{getattr(work[0], '__qualname__', 'work')}", exc)

    def _replay(self) -> bool:
        """Run deferred work queued so far, a batch at a time: the events it records join the
        queue and are drained before the next batch (short-lived, for the garbage collector)."""
        with self._lock:
            q = self._deferred
            if not q:
                return False
            # popleft, never a new deque: a caller may be appending to this one right now
            work = [q.popleft() for _ in range(min(len(q), self._batch_size))]
            self._deferred_taken = len(work)
            for w in work:
                if len(w) == 3:
                    self._deferred_extra -= w[2]
        # The events it makes are collected (see `_enqueue`) and admitted under one lock: taking
        # the lock per event here would keep the callers' `defer` waiting on it.
        made: list[_Item] = []
        self._replayed = made
        try:
            for w in work:
                self._run_deferred(w)
        finally:
            self._replayed = None
        over: list[_Item] = []
        with self._cond:
            queue = self._queue
            n = 0
            for item in made:
                if over or len(queue) >= self._max_events or self._pending_bytes() + item.size > self._max_bytes:
                    over.append(item)
                else:
                    queue.append(item)
                    self._queued_bytes += item.size
                    n += 1
            self.counters.emitted += n
            self._accepted += n
        for item in over:  # the queue is full: the policy decides, event by event, in order
            self._admit(item, made=True)
        with self._cond:
            self._deferred_done += len(work)
            self._deferred_taken = 0
            self._cond.notify_all()
        return True

    def _commit_now(self, item: _Item) -> bool:
        """Prepare and commit one event to the spooling sinks on the caller's thread (durable=True,
        or a full queue under policy `spool`). True when the event is fully accounted for; False
        sends it down the queue (already prepared) — e.g. when the disk refused the write."""
        try:
            if item.line is None:
                done = self._prepared(item, self._fast_allowed())
                if done is None:
                    with self._lock:
                        self.counters.emitted += 1
                        self._accepted += 1
                        self._completed += 1
                        self.counters.dropped["filtered"] += 1
                    return True
                item.event, item.line = done
                item.blob = item.ti = item.to = item.tm = None
            for sink in self._spool_sinks:
                if not sink.commit([item.line]):
                    with self._lock:
                        self.counters.emitted += 1
                        self._accepted += 1
                        self._completed += 1
                        self.counters.dropped[f"{sink.name}:spool_full"] += 1
                    return True
            item.spooled = True
            if len(self._spool_sinks) < len(self.sinks):
                return False  # the other sinks get it through the queue
            with self._lock:
                self.counters.emitted += 1
                self.counters.written += 1
                self._accepted += 1
                self._completed += 1
            return True
        except OSError:  # e.g. disk full: the worker retries it from the queue
            return False
        except Exception as exc:  # noqa: BLE001 - never break the host
            self.counters.internal_error("commit_now", exc)
            return False

    def _serialize(self, ev: Event) -> tuple[Event, str]:
        try:
            return ev, _json.dumps_event(ev)
        except Exception:  # noqa: BLE001 - a user processor left something unsafe: make it safe
            return self._serialize_safely(ev)

    def parent_of(self, parent: Any = CURRENT) -> SpanContext | None:
        """An explicit parent as given; CURRENT: the context's span, refined by the adapters'
        resolvers, else an outside parent (OpenTelemetry) when one is active."""
        if parent is not CURRENT:
            return parent  # type: ignore[no-any-return]
        p = current_span.get()
        if parent_resolvers:
            p = resolve_parent(p)
        if p is None and self.root_parent_provider is not None:
            p = self._outside_parent()
        return p

    def _outside_parent(self) -> SpanContext | None:
        try:
            return self.root_parent_provider() if self.root_parent_provider is not None else None
        except Exception as exc:  # noqa: BLE001
            self.counters.internal_error("root_parent_provider", exc)
            return None

    def trace_of(self, parent: SpanContext | None, trace_id: str | None = None) -> tuple[str, bool]:
        """(trace id, sampled) of a new span: its parent's, else a new trace's (or `trace_id`'s)."""
        if parent is not None:
            return parent.trace_id, parent.sampled
        trace_id = trace_id or new_trace_id()
        return trace_id, self.is_sampled(trace_id)

    def is_sampled(self, trace_id: str) -> bool:
        # Decided from the trace id, so every span and event of a trace gets the same answer; from
        # its low 64 bits, the random ones (OpenTelemetry's ratio sampler reads the same bits).
        return self._sample_threshold is None or int(trace_id[-16:], 16) < self._sample_threshold

    # ------------------------------------------------------------------ the worker
    def _run(self) -> None:
        self._worker_ident = threading.get_ident()
        next_at = time.monotonic() + self._interval
        while True:
            self._wake.wait(max(0.0, next_at - time.monotonic()))
            self._wake.clear()
            started = time.monotonic()
            while self._replay() | self._drain_once():  # both, each time: deferred work first
                pass
            # Start the next pass early by this pass's duration: an event queued just after this
            # pass took its batch is then written within one interval of being recorded (the
            # interval is what bounds a kill -9's loss), not one interval plus the write.
            took = time.monotonic() - started
            next_at = max(time.monotonic(), started + self._interval - took)
            with self._lock:
                if self._stopping and not self._queue and not self._deferred:
                    return

    def _drain_once(self) -> bool:
        items: list[_Item] = []
        with self._lock:
            nbytes = 0
            q = self._queue
            while q and len(items) < self._batch_size and (nbytes < self._batch_bytes or not items):
                it = q.popleft()
                nbytes += it.size
                items.append(it)
            self._queued_bytes -= nbytes
            self._in_flight += len(items)
        if not items:
            return False
        ps = Pass(len(items))
        try:
            self._deliver(items, ps)
        except Exception as exc:  # noqa: BLE001 - the worker must survive anything
            self.counters.internal_error("worker", exc)
            ps.failed = True
        self._settle(ps)
        return True

    def _settle(self, ps: Pass) -> None:
        """The worker, or a lane, is done with its share of a pass; the last one accounts for it."""
        with self._cond:
            ps.pending -= 1
            if ps.pending:
                return
            written, dropped = ps.outcome()
            st = self.counters
            st.written += written
            for reason, n in dropped.items():
                st.dropped[reason] += n
                if reason != "filtered":
                    self._lost += n
            self._in_flight -= ps.n
            self._completed += ps.n
            self._cond.notify_all()

    def _prepare(self, item: _Item) -> Event | None:
        ev = item.event
        if type(ev) is tuple:
            ev = item.event = self._envelope(ev)
        blob = item.blob
        ti, to, tm = item.ti, item.to, item.tm
        if ti is not None or to is not None or tm is not None:
            ev["input"] = None if ti is None else Snapshot(ti)
            ev["output"] = None if to is None else Snapshot(to)
            ev["metadata"] = None if tm is None else Snapshot(tm)
        elif blob is not None:
            try:
                ev["input"], ev["output"], ev["metadata"] = pickle.loads(blob)
            except Exception as exc:  # noqa: BLE001
                self.counters.internal_error("snapshot_restore", exc)
                ev["input"] = ev["output"] = "<content unavailable: snapshot could not be restored>"
                ev["metadata"] = None  # an object or nothing, as the envelope says
        for key in ("input", "output"):
            if key in ev and ev[key] is None:
                del ev[key]
        for proc in self.processors:
            try:
                out = proc(ev)
            except Exception as exc:  # noqa: BLE001 - privacy fails closed: the content stays home
                where = f"processor:{getattr(proc, '__name__', type(proc).__name__)}"
                self.counters.internal_error(where, exc)
                self.counters.withheld += 1
                ev = withhold(ev, self._redactor, self.config.max_string_length, f"{where} failed")
                continue
            if out is None:
                return None
            ev = out
        return ev

    def _fast_allowed(self) -> bool:
        # `processors` is a public list: a processor appended after init turns the fast path off
        return self._fast_ok and self.processors == self._defaults

    def _prepared(self, item: _Item, fast: bool) -> tuple[Event, str] | None:
        """The event and its line, through the processors (None: a processor filtered it out)."""
        done = self._fast_line(item) if fast else None
        if done is None:
            ev = self._prepare(item)
            if ev is None:
                return None
            done = self._serialize(ev)
        return done

    def _fast_line(self, item: _Item) -> tuple[Event, str] | None:
        """The common event in one step, with the result the processors would give it: content the
        caller serialized as plain JSON, and a serialized event that holds no secret hint and is
        shorter than the string cap (so no string in it is over) and the event cap. None: the
        event goes down the processors' walk, which decides."""
        spec = item.event
        if type(spec) is not tuple or item.blob is not None:
            return None
        ev = item.event = self._envelope(spec)
        if item.ti is not None:
            ev["input"] = _fragment(item.ti)
        if item.to is not None:
            ev["output"] = _fragment(item.to)
        if item.tm is not None:
            ev["metadata"] = _fragment(item.tm)
        try:
            line = _json.dumps_event(ev)  # refuses attributes or errors that are not plain JSON
        except Exception:  # noqa: BLE001
            return None
        if len(line) > self._fast_limit or utf8_len(line) > self._max_event_bytes:
            return None
        # Every string a caller or framework wrote is checked: the type, session and user, name,
        # tags and content. The generated ids and the time are left out: long runs of letters and
        # digits, never secrets. orjson keeps the envelope's key order: id, ..., type, ...,
        # session_id, user_id, name, framework, time, seq, attributes, error, tags, content.
        a = line.find(',"session_id":')
        b = line.find(',"time":', a)
        text = ev["type"] + line[a:b] + line[line.find(',"attributes":', b):]
        if self._redactor.may_need_scrubbing(text):
            return None
        return ev, line

    def _deliver(self, items: list[_Item], ps: Pass) -> None:
        events: list[Event] = []
        lines: list[str] = []
        spooled: list[int] = []  # batch indexes already committed to the spooling sinks
        fast = self._fast_allowed()
        for item in items:
            if item.line is not None:  # prepared on the caller's thread
                if item.spooled:
                    spooled.append(len(lines))
                events.append(item.event)
                lines.append(item.line)
                continue
            done = self._prepared(item, fast)
            if done is None:
                ps.filtered += 1
                continue
            events.append(done[0])
            lines.append(done[1])
        batch = Batch(events, lines)
        skip = set(spooled)
        for part in self._byte_parts(lines):
            for sink in self.sinks:
                index: Sequence[int] = part
                if skip and getattr(sink, "spooling", False):
                    index = [i for i in part if i not in skip]
                    if not index:
                        continue
                sub = batch if len(index) == len(batch) else batch.subset(index)
                lane = self._lanes.get(id(sink))
                if lane is not None:
                    with self._cond:  # `pending` only ever changes under this lock
                        ps.pending += 1
                    lane.submit(sub, index, ps)
                else:
                    ps.lose(index, self._write_with_retry(sink, sub))
            self.counters.batches += 1

    def _byte_parts(self, lines: list[str]) -> list[range]:
        """Split a batch at `batch_bytes` of serialized lines. The queue took the items by
        estimated size (attributes uncounted, the envelope a guess), so only here is the limit
        exact; an event larger than the limit goes alone."""
        limit = self._batch_bytes
        parts: list[range] = []
        start = size = 0
        for i, line in enumerate(lines):
            n = utf8_len(line)
            if size + n > limit and i > start:
                parts.append(range(start, i))
                start, size = i, 0
            size += n
        parts.append(range(start, len(lines)))
        return parts

    def _serialize_safely(self, ev: Event) -> tuple[Event, str]:
        try:
            safe = self._sanitizer.value(DecodeRaw()(ev), mask=False)
            return safe, _json.dumps_event(safe)
        except Exception as exc:  # noqa: BLE001 - keep the envelope, say what was lost
            self.counters.internal_error("serialize", exc)
            env = {k: v for k, v in ev.items() if k not in ("input", "output", "metadata", "attributes", "error")}
            env = self._sanitizer.value(env, mask=False)
            env["attributes"] = {"tracewire.serialize_error": f"{type(exc).__name__}: content could not be serialized"}
            return env, _json.dumps_event(env)

    def _write_with_retry(self, sink: Sink, batch: Batch) -> dict[int, str]:
        """Returns {index: reason} of events this sink lost for good."""
        pending = list(range(len(batch)))
        lost: dict[int, str] = {}
        attempt = 0
        while pending:
            attempt += 1
            sub = batch if len(pending) == len(batch) else batch.subset(pending)
            try:
                result = sink.write(sub)
            except Exception as exc:  # noqa: BLE001 - a sink bug is a retryable failure
                self.counters.internal_error(f"sink:{sink.name}", exc)
                result = WriteResult.retry_later(f"exception:{type(exc).__name__}")
            if result.ok:
                return lost
            name = getattr(sink, "name", type(sink).__name__)
            for i in result.failed:
                lost[pending[i]] = f"{name}:{result.reason}"
            if not result.retryable:
                if not result.failed:
                    lost.update((i, f"{name}:{result.reason}") for i in pending)
                return lost
            retry = [pending[i] for i in result.retry] if result.retry else [i for i in pending if i not in lost]
            if attempt >= _MAX_ATTEMPTS or self._closed:
                lost.update((i, f"{name}:retries_exhausted") for i in retry)
                return lost
            self.counters.retries[name] += 1
            pending = retry
            delay = result.retry_after if result.retry_after is not None else random.uniform(0, min(2.0, 0.05 * 2**attempt))
            time.sleep(min(delay, 5.0))
        return lost

    # ------------------------------------------------------------------ control
    def flush(self, timeout: float | None = None) -> bool:
        """True once everything enqueued before the call is written. False on timeout, or when
        events were lost while it waited (a sink gave up on them: see `stats()["dropped"]`)."""
        if self.disabled or self._worker is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        lost_before = self._lost
        return self._flush_queue(deadline) and self._flush_spools(deadline) and self._lost == lost_before

    def _flush_queue(self, deadline: float | None) -> bool:
        assert self._worker is not None
        with self._cond:
            deferred = self._deferred_done + self._deferred_taken + len(self._deferred)
            target = self._accepted
            # Deferred work first: the events it records are accepted when it runs, so the target
            # is taken again once the work posted before this call has run.
            waiting_work = self._deferred_done < deferred
        self._wake.set()
        with self._cond:
            while waiting_work or self._completed < target:
                if waiting_work and self._deferred_done >= deferred:
                    waiting_work = False
                    target = self._accepted
                    continue
                if not self._worker.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.05 if remaining is None else min(remaining, 0.05))
                self._wake.set()
        return True

    def _flush_spools(self, deadline: float | None) -> bool:
        """Spooling sinks: wait until what they committed is settled with the collector."""
        for sink in self._spool_sinks:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not sink.flush(remaining):
                return False
        return True

    def shutdown(self, timeout: float | None = 30.0) -> bool:
        """Flush, stop the worker, close the sinks. Later calls record nothing."""
        if self.disabled or self._closed:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        lost_before = self._lost
        committed = self._worker is None or self._flush_queue(deadline)
        settled = committed and self._flush_spools(deadline)
        with self._lock:
            self._stopping = True
        self._closed = True
        self.disabled = True
        self._wake.set()
        if self._worker is not None and settled:
            self._worker.join(timeout=1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic())))
            if not self._worker.is_alive():  # nothing can hand the lanes more work
                for lane in self._lanes.values():
                    lane.stop(None if deadline is None else max(0.0, deadline - time.monotonic()))
        # Spooling sinks close once the queue is committed: what is unshipped stays on disk.
        if committed:
            for sink in self.sinks if settled else self._spool_sinks:
                try:
                    _close_sink(sink, None if deadline is None else max(0.0, deadline - time.monotonic()))
                except Exception as exc:  # noqa: BLE001
                    self.counters.internal_error(f"sink_close:{sink.name}", exc)
        try:
            atexit.unregister(self._at_exit)
        except Exception:  # noqa: BLE001  # pragma: no cover
            pass
        return settled and self._lost == lost_before

    def _at_exit(self) -> None:
        if not self._closed:
            while exit_hooks:  # each runs once, before the final flush
                try:
                    exit_hooks.pop(0)()
                except Exception as exc:  # noqa: BLE001
                    self.counters.internal_error("exit_hook", exc)
            self.shutdown(timeout=self.config.exit_flush_timeout)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            snap = self.counters.snapshot(len(self._queue), self._in_flight, self._pending_bytes())
        # privacy failures: events kept without their content, single values replaced, masks failed
        snap["withheld"] = {"events": self.counters.withheld, "values": self._sanitizer.withheld,
                            "mask_failures": self._sanitizer.mask_failures}
        if self._spool_sinks:  # after the spool: shipped / retried / dead-lettered / spooled bytes
            snap["delivery"] = {s.name: s.delivery_stats() for s in self._spool_sinks}
        return snap

    def _after_fork_child(self) -> None:
        """A forked child gets a fresh queue, lock and worker; the parent's events stay the parent's."""
        self._reset_delivery_state()
        for sink in self.sinks:
            after = getattr(sink, "after_fork", None)
            if after is not None:
                after()
        if not self._closed and not self.disabled:
            self._start_worker()


def who(
    parent: SpanContext | None, sess: SessionInfo | None, session_id: str | None, user_id: str | None
) -> tuple[str | None, str | None]:
    """(session_id, user_id) of a new span or event: its own, else its parent's, else the session's."""
    return (
        session_id or (parent.session_id if parent is not None else None) or (sess.session_id if sess else None),
        user_id or (parent.user_id if parent is not None else None) or (sess.user_id if sess else None),
    )


def _merge_tags(sess: SessionInfo | None, tags: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if sess is None or not sess.tags:
        return tuple(tags) if tags else ()
    return sess.tags + tuple(t for t in tags or () if t not in sess.tags)


def _merge_metadata(sess: SessionInfo | None, metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if sess is None or not sess.metadata:
        return dict(metadata) if metadata else None
    return {**sess.metadata, **metadata} if metadata else sess.metadata


def _close_sink(sink: Sink, timeout: float | None) -> None:
    """`close(timeout=...)` for sinks whose close takes it (the time left of the shutdown budget,
    so a sink with work left at close cannot outlast it), plain `close()` for the others."""
    close: Any = sink.close
    if timeout is not None and _takes_timeout(close):
        close(timeout=timeout)
    else:
        close()


def _takes_timeout(fn: Callable[..., Any]) -> bool:
    import inspect

    try:
        param = inspect.signature(fn).parameters.get("timeout")
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)


def build_sinks(config: Config) -> list[Sink]:
    from tracewire.sinks import create

    return [create(spec, config) if isinstance(spec, str) else spec for spec in config.sink if spec != "none"]


def _fork_child_hook() -> None:
    for client in list(_clients):
        try:
            client._after_fork_child()
        except Exception:  # noqa: BLE001  # pragma: no cover
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fork_child_hook)

__all__ = ["Client", "Span", "UNSET", "CURRENT", "BaseSink", "error_info"]
