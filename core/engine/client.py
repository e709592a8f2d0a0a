"""The client: the one object the public API and the adapters record through.

It builds events on the caller's thread and hands them to the queue; the worker takes them from
there through the pipeline to the sinks. Each of those parts has a module of its own in this
folder; the client wires them together (docs/architecture.md draws the picture).
"""

from __future__ import annotations

import atexit
import itertools
import os
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from tracewire.config import Config
from tracewire.engine.fanout import FanOut
from tracewire.engine.queue import DEFER_UNIT, EventQueue
from tracewire.engine.span import CURRENT, UNSET, Span, error_info
from tracewire.engine.worker import Worker
from tracewire.model.content import freeze, thaw
from tracewire.model.context import (
    SpanContext,
    current_session,
    current_span,
    merged_metadata,
    merged_tags,
    parent_resolvers,
    resolve_parent,
    session_user,
)
from tracewire.model.ids import new_root_ids, new_span_id, new_trace_id
from tracewire.pipeline.chain import Pipeline
from tracewire.pipeline.processors import Processor
from tracewire.sinks import build_sinks
from tracewire.sinks.base import RootParent, Sink, SinkContext

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
        self._pipeline = Pipeline(config, self.report_error)
        self._sample_threshold = int(config.sample_rate * (1 << 64)) if config.sample_rate < 1.0 else None
        self._seq = itertools.count(1)
        # Consulted when no tracewire span is current: an outside parent (OpenTelemetry) the
        # trace joins. Set through `set_root_parent`.
        self.root_parent_provider: RootParent | None = None
        self.sinks: list[Sink] = [] if self.disabled else build_sinks(config)
        self._spool_sinks = [s for s in self.sinks if s.spooling]
        self._queue = EventQueue(config, self._pipeline, self._spool_sinks, len(self.sinks), self.disabled)
        # defer(fn, *args, size=DEFER_UNIT, force=False): the queue's own method (see EventQueue.defer)
        self.defer: Callable[..., bool] = self._queue.defer
        context = SinkContext(self.capture_content, self.report_error, self._dropped, self.is_sampled,
                              self.set_root_parent)
        for sink in self.sinks:
            sink.attach(context)
        interval = min(config.flush_interval, config.commit_interval) if self._spool_sinks else config.flush_interval
        self._fanout = FanOut(self.sinks, self._queue, config.batch_bytes, config.queue_max_bytes)
        self._worker = Worker(self._queue, self._pipeline, self._fanout, interval)
        self._closed = False
        if not self.disabled:
            self._worker.start()
            atexit.register(self._at_exit)
            _clients.add(self)

    @property
    def processors(self) -> list[Processor]:
        """The pipeline's processors, built-in ones first; appending one turns the fast path off."""
        return self._pipeline.processors

    # ------------------------------------------------------------------ recording
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
        if p is None and trace_id is None and span_id is None:  # a new trace: both ids from one draw
            trace_id, span_id = new_root_ids(now if start_ns is None else None)
        trace_id, sampled = self.trace_of(p, trace_id)
        session_id, user_id = session_user(p, sess, session_id, user_id)
        span = Span(
            self, trace_id, span_id or new_span_id(), None if p is None else p.span_id, kind, name, framework, now,
            sampled, session_id, user_id,
            (tuple(tags) if tags else ()) if sess is None else merged_tags(sess, tags),
            (dict(metadata) if metadata else None) if sess is None else merged_metadata(sess, metadata),
        )
        if self.disabled:
            span._client = None
        elif sampled:
            # queued as a compact spec: the worker builds the envelope (event id, the dict) from it
            self._queue.put((span, "start", now, next(self._seq), dict(attributes) if attributes else None, None),
                            input, UNSET, span.metadata)
        else:
            self._queue.counters.sampled_out += 1
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
        trace_id, sampled = self.trace_of(p)
        if not sampled:
            self._queue.counters.sampled_out += 1
            return
        session_id, user_id = session_user(p, sess, session_id, user_id)
        # queued compact, like span events: (None marks a point) the worker builds the envelope
        spec = (
            None, event_type, now, next(self._seq), dict(attributes) if attributes else None,
            error_info(error) if error else None, trace_id, None if p is None else p.span_id, session_id, user_id,
            name or event_type, framework, (tuple(tags) if tags else ()) if sess is None else merged_tags(sess, tags),
        )
        self._queue.put(spec, input, output, metadata if sess is None else merged_metadata(sess, metadata))

    def put_score(self, record: dict[str, Any], metadata: Mapping[str, Any] | None) -> None:
        """A score record (`tracewire.score`): queued whole, through the same pipeline (scrubbing)
        and sinks as events; never sampled out, since what it judges may come from another process."""
        if not self.disabled:
            self._queue.put(record, UNSET, UNSET, metadata)

    def finish_span(
        self, span: Span, phase: str, output: Any, attributes: Mapping[str, Any] | None,
        error: dict[str, Any] | None, end_ns: int | None, input: Any = UNSET,
    ) -> None:
        """`Span.end` / `Span.fail`: the span's end event."""
        attrs = span._attrs
        if attributes:
            attrs = {**attrs, **attributes} if attrs else dict(attributes)
        now = time.time_ns() if end_ns is None else end_ns
        self._queue.put((span, phase, now, next(self._seq), attrs, error), input, output, span.metadata)

    # ------------------------------------------------------------------ the adapter API
    def frozen(self, value: Any) -> Any:
        """Content fixed as it is now, for `defer`, in a form the garbage collector does not track
        while it waits: its JSON text (a str) when it is plain data, else a JSON-safe copy in a
        1-tuple (masked later, on the worker, like any other content). `thaw` undoes it."""
        if value is UNSET or value is None:
            return value
        return freeze(value, self._pipeline.sanitizer)

    def report_error(self, where: str, exc: BaseException) -> None:
        """An internal failure (an adapter's hook, say): counted in `stats()`, logged once."""
        self._queue.counters.internal_error(where, exc)

    def count_dropped(self, reason: str, n: int = 1) -> None:
        """Events an adapter could not record (their work was refused): emitted and dropped."""
        self._queue.count_dropped(reason, n)

    def parent_of(self, parent: Any = CURRENT) -> SpanContext | None:
        """An explicit parent as given; CURRENT: the context's span, refined by the adapters'
        resolvers, else an outside parent (OpenTelemetry) when one is active."""
        if parent is not CURRENT:
            return parent  # type: ignore[no-any-return]
        p = current_span.get()
        if parent_resolvers:
            p = resolve_parent(p)
        if p is None and self.root_parent_provider is not None:
            try:
                p = self.root_parent_provider()
            except Exception as exc:  # noqa: BLE001
                self.report_error("root_parent_provider", exc)
        return p

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

    def set_root_parent(self, provider: RootParent | None) -> None:
        self.root_parent_provider = provider

    def _dropped(self) -> dict[str, int]:
        return dict(self._queue.counters.dropped)

    # ------------------------------------------------------------------ control
    def flush(self, timeout: float | None = None) -> bool:
        """True once everything enqueued before the call is written. False on timeout, or when
        events were lost while it waited (a sink gave up on them: see `stats()["dropped"]`)."""
        if self.disabled:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        lost_before = self._queue.lost
        return self._queue.wait_done(deadline, self._worker.alive) and self._flush_spools(deadline) \
            and self._queue.lost == lost_before

    def _flush_spools(self, deadline: float | None) -> bool:
        """Spooling sinks: wait until what they committed is settled with the collector."""
        return all(s.flush(None if deadline is None else max(0.0, deadline - time.monotonic()))
                   for s in self._spool_sinks)

    def shutdown(self, timeout: float | None = 30.0) -> bool:
        """Flush, stop the worker, close the sinks. Later calls record nothing."""
        if self.disabled or self._closed:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        lost_before = self._queue.lost
        committed = self._queue.wait_done(deadline, self._worker.alive)
        settled = committed and self._flush_spools(deadline)
        with self._queue.lock:
            self._queue.stopping = True
        self._closed = self._fanout.closed = True
        self.disabled = True
        self._queue.wake.set()
        if settled and self._worker.join(1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))):
            self._fanout.stop_lanes(deadline)  # nothing can hand the lanes more work
        # Spooling sinks close once the queue is committed: what is unshipped stays on disk.
        if committed:
            for sink in self.sinks if settled else self._spool_sinks:
                try:
                    sink.close_within(None if deadline is None else max(0.0, deadline - time.monotonic()))
                except Exception as exc:  # noqa: BLE001
                    self.report_error(f"sink_close:{sink.name}", exc)
        atexit.unregister(self._at_exit)
        return settled and self._queue.lost == lost_before

    def _at_exit(self) -> None:
        if not self._closed:
            while exit_hooks:  # each runs once, before the final flush
                try:
                    exit_hooks.pop(0)()
                except Exception as exc:  # noqa: BLE001
                    self.report_error("exit_hook", exc)
            self.shutdown(timeout=self.config.exit_flush_timeout)

    def stats(self) -> dict[str, Any]:
        snap = self._queue.snapshot()
        # privacy failures: events kept without their content, single values replaced, masks failed
        sanitizer = self._pipeline.sanitizer
        snap["withheld"] = {"events": self._pipeline.withheld, "values": sanitizer.withheld,
                            "mask_failures": sanitizer.mask_failures}
        if self._spool_sinks:  # after the spool: shipped / retried / dead-lettered / spooled bytes
            snap["delivery"] = {s.name: s.delivery_stats() for s in self._spool_sinks}
        store = {s.name: st for s in self.sinks if (st := s.store_stats())}
        if store:  # after the store: what a size cap deleted (written events, so outside the balance)
            snap["store"] = store
        return snap

    def _after_fork_child(self) -> None:
        """A forked child gets a fresh queue, lock and worker; the parent's events stay the parent's."""
        self._queue.reset()
        for sink in self.sinks:
            sink.after_fork()
        if not self._closed and not self.disabled:
            self._worker.start()


def _fork_child_hook() -> None:
    for client in list(_clients):
        try:
            client._after_fork_child()
        except Exception:  # noqa: BLE001  # pragma: no cover
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fork_child_hook)

__all__ = ["Client", "Span", "UNSET", "CURRENT", "DEFER_UNIT", "error_info", "thaw"]
