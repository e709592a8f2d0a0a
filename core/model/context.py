"""What is current for the caller: the enclosing span and the session. Carried by contextvars,
so it follows `await`, `asyncio.gather` children and `contextvars.copy_context().run`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


class SpanContext:
    """Identifies a span for parenting: what a child needs to know about its parent."""

    __slots__ = ("trace_id", "span_id", "sampled", "session_id", "user_id")

    def __init__(
        self, trace_id: str, span_id: str, sampled: bool = True, session_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.sampled = sampled
        self.session_id = session_id
        self.user_id = user_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(trace_id={self.trace_id!r}, span_id={self.span_id!r})"


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    user_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


current_span: ContextVar[SpanContext | None] = ContextVar("tracewire_current_span", default=None)
current_session: ContextVar[SessionInfo | None] = ContextVar("tracewire_session", default=None)


ParentResolver = Callable[[SpanContext | None], SpanContext | None]

# A framework that tracewire follows through callbacks (LangChain) knows "the run executing right
# now" in its own context. A resolver gets the current tracewire span (or None) and returns a
# closer parent for spans started with parent=CURRENT, or None to keep it. Empty: no cost.
parent_resolvers: list[ParentResolver] = []


def add_parent_resolver(resolver: ParentResolver) -> None:
    """Consult `resolver` for the parent of spans started with parent=CURRENT (once, however often added)."""
    if resolver not in parent_resolvers:
        parent_resolvers.append(resolver)


def remove_parent_resolver(resolver: ParentResolver) -> None:
    if resolver in parent_resolvers:
        parent_resolvers.remove(resolver)


def resolve_parent(current: SpanContext | None) -> SpanContext | None:
    for resolver in parent_resolvers:
        closer = resolver(current)
        if closer is not None:
            return closer
    return current


def session_user(
    parent: SpanContext | None, sess: SessionInfo | None, session_id: str | None, user_id: str | None
) -> tuple[str | None, str | None]:
    """(session_id, user_id) of a new span or event: its own, else its parent's, else the session's."""
    return (
        session_id or (parent.session_id if parent is not None else None) or (sess.session_id if sess else None),
        user_id or (parent.user_id if parent is not None else None) or (sess.user_id if sess else None),
    )


def merged_tags(sess: SessionInfo | None, tags: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The session's tags, then the event's own."""
    if sess is None or not sess.tags:
        return tuple(tags) if tags else ()
    return sess.tags + tuple(t for t in tags or () if t not in sess.tags)


def merged_metadata(sess: SessionInfo | None, metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The session's metadata, overridden by the event's own."""
    if sess is None or not sess.metadata:
        return dict(metadata) if metadata else None
    return {**sess.metadata, **metadata} if metadata else sess.metadata
