"""The sink interface: a batch in; success, retryable failure or permanent failure out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tracewire.model import codec as _json


@dataclass
class Batch:
    """Events after the pipeline, with their serialized lines (serialized once, by the worker)."""

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


@runtime_checkable
class Sink(Protocol):
    """Written from one thread at a time: the worker's, or, for a sink with `isolated = True`
    (a remote one) beside other sinks, its own lane's (see tracewire.engine.lanes). close: by
    `shutdown()`, once the queue is written.

    `close` may also take a keyword `timeout`: the client then passes the seconds left of the
    shutdown budget (the exit hook's `exit_flush_timeout` included), and close returns by then."""

    name: str

    def write(self, batch: Batch) -> WriteResult: ...

    def close(self) -> None: ...


class BaseSink:
    name = "sink"

    def write(self, batch: Batch) -> WriteResult:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        return None

    def after_fork(self) -> None:
        """In a forked child: drop handles shared with the parent (they are the parent's)."""
        return None
