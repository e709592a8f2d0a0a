"""A LangChain run's bookkeeping behind the hooks: its identity, and its span on the worker.

A start hook keeps an `Entry` for the run (what the context said when it fired). The run's
identity (`identity`: ids, parent, sampling, session) is decided the first time it is needed: on
the client's worker, or at once when user code opens a tracewire span inside the run (through
`running_run_parent`, the parent resolver). The worker builds and closes the span (`open_run`,
`finish_run`), keeping the open ones in the handler's `_spans`.

The handler's per-run dicts are shared with `hooks`, which owns them; the functions here take the
handler as their first argument and are queued with `Client.defer` as they are (a bound method
would be one more object per hook).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.runnables.config import var_child_runnable_config

from tracewire.adapters import (
    ABANDONED,
    UNSET,
    Client,
    Span,
    SpanContext,
    add_parent_resolver,
    new_span_id,
    session_user,
)
from tracewire.integrations.langchain.extract import (
    UNAVAILABLE,
    UNDESCRIBED,
    Described,
    Ended,
    own_metadata,
    own_tags,
)

if TYPE_CHECKING:
    from tracewire.integrations.langchain.hooks import TracewireCallbackHandler

FRAMEWORK = "langchain"

# What a start hook keeps about an open run, on the caller's side: (parent run's key, or None for
# a root; start time; the context's span for a child, the resolved parent for a root; the
# session; a root's own session id; the client). Enough to work out the run's identity when it is
# first needed (`identity`): on the worker, or by a span that user code opens inside the run.
Entry = tuple[Any, int, "SpanContext | None", Any, "str | None", Client]


class Run(SpanContext):
    """A run's span identity, decided once, by whichever thread needs it first."""

    __slots__ = ("start_ns", "parent")

    def __init__(
        self, parent: SpanContext | None, trace_id: str, sampled: bool, session_id: str | None,
        user_id: str | None, start_ns: int,
    ) -> None:
        SpanContext.__init__(self, trace_id, new_span_id(), sampled, session_id, user_id)
        self.parent = parent  # what its span nests under: its parent run, or a closer tracewire span
        self.start_ns = start_ns


class Opened:
    """A run's span on the worker, with what its children's tags and metadata are compared to."""

    __slots__ = ("span", "tags", "metadata", "model", "client")

    def __init__(self, span: Span, tags: Sequence[str] | None, metadata: Mapping[str, Any] | None,
                 model: str | None, client: Client) -> None:
        self.span = span
        self.tags = tags
        self.metadata = metadata
        self.model = model
        self.client = client  # where a failure to describe the run's end is counted


def key_of(run_id: Any) -> Any:
    """A run id as the handler's dicts key it: a UUID by its int (UUID's `__hash__` is Python
    code, run at every lookup). The hot hooks write this expression out rather than call it."""
    return run_id.int if type(run_id) is UUID else run_id


def identity(handler: TracewireCallbackHandler, key: Any, entry: Entry) -> Run:
    """The run's span identity: ids, parent, sampling, session. Decided the first time it is
    asked for and kept until its span is closed, so every thread sees the same one."""
    run = handler._ids.get(key)
    if run is not None:
        return run
    pkey, start_ns, parent, sess, session_id, client = entry
    if pkey is not None:
        up = handler._ids.get(pkey)
        if up is None:
            up_entry = handler._runs.get(pkey)
            up = identity(handler, pkey, up_entry) if up_entry is not None else None
        # A tracewire span opened inside the parent run (a @trace'd function in a tool, say)
        # is the closer parent: LangChain does not know about it.
        if up is not None and not (parent is not None and parent.trace_id == up.trace_id
                                   and getattr(parent, "start_ns", 0) > up.start_ns):
            parent = up
    trace_id, sampled = client.trace_of(parent)
    session_id, user_id = session_user(parent, sess, session_id, handler.user_id)
    return handler._ids.setdefault(key, Run(parent, trace_id, sampled, session_id, user_id, start_ns))


# ------------------------------------------------------------------ on the worker's thread
def open_run(
    handler: TracewireCallbackHandler, key: Any, entry: Entry, tags: tuple[str, ...] | None,
    metadata: dict[str, Any] | None, describe: Callable[..., Described], held: Any, serialized: Any, name: Any,
    extra: Any,
) -> None:
    """Start the run's span: `describe` works out its kind, name, attributes and input."""
    run = identity(handler, key, entry)
    handler._runs.born(key)  # its age counts from now (see the handler's `_start`)
    client = entry[5]
    try:
        kind, name, attrs, input, model = describe(metadata, held, serialized, name, extra)
    except Exception as exc:  # noqa: BLE001 - the span is still recorded, as what is known
        client.report_error(f"{FRAMEWORK}:describe", exc)
        kind, name, attrs, input, model = UNDESCRIBED
    spans = handler._spans
    if entry[0] is not None:  # what the run adds to its parent run's tags and metadata
        up = spans.get(entry[0])
        span_tags = own_tags(tags, up.tags if up else None) if tags else None
        span_md = own_metadata(metadata, up.metadata if up else None) if metadata else None
    else:
        span_tags = handler.tags + (own_tags(tags, None) or ()) if tags else handler.tags
        span_md = own_metadata(metadata, None) if metadata else None
        if handler.metadata:
            span_md = {**handler.metadata, **span_md} if span_md else handler.metadata
    span = client.start_span(
        kind, name, input=input, parent=run.parent, attributes=attrs, framework=FRAMEWORK, tags=span_tags,
        metadata=span_md, session_id=run.session_id, user_id=run.user_id, start_ns=run.start_ns,
        span_id=run.span_id, trace_id=run.trace_id, session=entry[3],
    )
    spans[key] = Opened(span, tags, metadata, model, client)
    if len(spans) > handler._runs.max_open:  # a safety net: every admitted start is closed (`_close`)
        old = next(iter(spans))
        handler._ids.pop(old, None)
        spans.pop(old).span.fail(ABANDONED)


def finish_run(
    handler: TracewireCallbackHandler, key: Any, phase: str, error: Any, now: int,
    end: Callable[..., Ended] | None, returned: Any, inputs: Any, capture: bool, start_ns: int,
    first_token_ns: int | None,
) -> None:
    """End ("end") or fail ("error") the run's span: `end` works out its output and attributes from
    what the end hook held, `returned` being what the run returned (None: it has none)."""
    handler._ids.pop(key, None)
    opened = handler._spans.pop(key, None)
    if opened is None:
        return
    span = opened.span
    output: Any = UNSET
    attrs: dict[str, Any] | None = None
    input: Any = UNSET
    if end is not None:
        try:
            output, attrs, input = end(opened.model, returned, inputs, capture, start_ns, first_token_ns)
        except Exception as exc:  # noqa: BLE001 - the span is still closed, its output unknown
            opened.client.report_error(f"{FRAMEWORK}:describe_end", exc)
            output = UNAVAILABLE
    if phase == "end":
        span.end(output, attributes=attrs, end_ns=now, input=input)
    else:
        span.fail(error, output=output, attributes=attrs, end_ns=now, input=input)


# ------------------------------------------------------------------ user code inside a run
_handlers: weakref.WeakSet[TracewireCallbackHandler] = weakref.WeakSet()


def track(handler: TracewireCallbackHandler) -> None:
    """Let spans opened inside `handler`'s runs find them: the parent resolver is registered with
    the first handler (and again if it was removed since; registering is idempotent)."""
    _handlers.add(handler)
    add_parent_resolver(running_run_parent)


def running_run_parent(current: SpanContext | None) -> SpanContext | None:
    """Parent resolver for spans opened by user code that LangChain is running (a tool's
    function, a RunnableLambda): the recorded span of that run, unless the current tracewire
    span was opened inside it. LangChain keeps the running run's child config in a contextvar."""
    try:
        config = var_child_runnable_config.get()
        if not config:
            return None
        run_id = getattr(config.get("callbacks"), "parent_run_id", None)
        if run_id is None:
            return None
        key = key_of(run_id)
        for handler in list(_handlers):
            entry = handler._runs.get(key)
            if entry is not None:
                span = identity(handler, key, entry)
                if (current is not None and current.trace_id == span.trace_id
                        and getattr(current, "start_ns", 0) >= span.start_ns):
                    return None
                return span
    except Exception:  # noqa: BLE001 - a parent lookup must never break span creation
        return None
    return None
