"""The sink interface: a batch in; success, retryable failure or permanent failure out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracewire.model import codec as _json
from tracewire.model.context import SpanContext


@dataclass
class Batch:
    """Events after the pipeline, with their serialized lines (serialized once, by the worker).
    An event's content the worker serialized already (`input`, `output`, `metadata`; after a
    user's processors also `attributes` and `error`) may be a `codec.RawJSON`: its JSON text."""

    events: list[dict[str, Any]]
    lines: list[str]

    def __len__(self) -> int:
        return len(self.lines)

    def subset(self, indexes: Sequence[int]) -> Batch:
        return Batch([self.events[i] for i in indexes], [self.lines[i] for i in indexes])

    def decoded(self) -> list[dict[str, Any]]:
        return [_json.loads(line) for line in self.lines]


@dataclass(frozen=True)
class WriteResult:
    """`retry`/`failed` list batch indexes; empty with ok=False means the whole batch."""

    ok: bool
    retryable: bool = False
    reason: str = ""
    retry: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    retry_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def success(cls) -> WriteResult:
        return _OK

    @classmethod
    def retry_later(cls, reason: str, indexes: Sequence[int] = (), retry_after: float | None = None) -> WriteResult:
        return cls(False, True, reason, tuple(indexes), retry_after=retry_after)

    @classmethod
    def permanent(cls, reason: str, indexes: Sequence[int] = ()) -> WriteResult:
        return cls(False, False, reason, failed=tuple(indexes))


_OK = WriteResult(True)


RootParent = Callable[[], SpanContext | None]


@dataclass(frozen=True)
class SinkContext:
    """A sink's view of the client that owns it, handed to `Sink.attach` before any write."""

    capture_content: bool  # False: content is neither recorded nor to be exported
    report_error: Callable[[str, BaseException], None]  # an internal failure: counted in stats(), logged once
    dropped: Callable[[], dict[str, int]]  # the client's events dropped so far, by reason
    is_sampled: Callable[[str], bool]  # the client's sampling decision for a trace id
    # A parent for spans started when no tracewire span is current (the otlp sink: the active
    # OpenTelemetry span). Must be cheap; returns None for "none".
    set_root_parent: Callable[[RootParent | None], None]


class Sink:
    """Where prepared batches go. Subclass it; the client uses exactly these members.

    Written from one thread at a time: the worker's, or, for a sink with `isolated = True` (a
    remote one) beside other sinks, its own lane's (see tracewire.engine.lanes)."""

    name: str = "sink"
    isolated: bool = False  # remote: beside another sink it gets a lane of its own
    spooling: bool = False  # commits to a durable spool: `commit`, `flush` and `delivery_stats` apply

    def attach(self, context: SinkContext) -> None:
        """Called once by the client that owns the sink, before the first write."""

    def write(self, batch: Batch) -> WriteResult:
        raise NotImplementedError

    def commit(self, lines: list[str]) -> bool:
        """A spooling sink: commit these lines now, on the caller's thread (durable=True, or a
        full queue under policy `spool`). False if refused; OSError on a disk error."""
        raise NotImplementedError

    def flush(self, timeout: float | None) -> bool:
        """A spooling sink: True once what it committed is settled downstream."""
        return True

    def delivery_stats(self) -> dict[str, Any]:
        """A spooling sink: what happened after the spool, for `stats()["delivery"]`."""
        return {}

    def store_stats(self) -> dict[str, Any]:
        """A sink that keeps a store and may delete from it (the SQLite sink's `max_store_bytes`):
        what it deleted, for `stats()["store"]`; empty for the others."""
        return {}

    def after_fork(self) -> None:
        """In a forked child: drop handles shared with the parent (they are the parent's)."""

    def close(self) -> None:
        """By `shutdown()`, once the queue is written."""

    def close_within(self, timeout: float | None) -> None:
        """`close`, returning within `timeout` seconds (what is left of the shutdown budget, the
        exit hook's `exit_flush_timeout` included). Override it when closing can take long."""
        self.close()


BaseSink = Sink  # the name sinks have been written against
