"""The handlers tracewire attaches to a LlamaIndex dispatcher, and the adapter that attaches them
to the root one (`instrument()` / `uninstrument()`).

Both handlers are thin: LlamaIndex calls them, they hand over to the `Tracker` (`runs`), which
keeps every run's state and guards every call.
"""

from __future__ import annotations

import inspect
from typing import Any

from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.span import BaseSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from pydantic import PrivateAttr

from tracewire.adapters import Adapter
from tracewire.integrations.llamaindex.runs import FRAMEWORK, Tracker


class TracewireSpanHandler(BaseSpanHandler[BaseSpan]):
    """Records LlamaIndex spans as tracewire spans. Attach with `TracewireEventHandler(span_handler=h)`
    on the same dispatcher (both are attached to the root dispatcher by `instrument()`).

    A span LlamaIndex never closes (a stream never read, a task killed mid-run) is closed as
    unfinished when more than `max_open_spans` are open (oldest first) or after `span_ttl` seconds."""

    _tracker: Tracker = PrivateAttr()

    def __init__(self, *, max_open_spans: int = 10_000, span_ttl: float = 3600.0, **data: Any) -> None:
        super().__init__(**data)
        self._tracker = Tracker(max_open_spans, span_ttl)

    @classmethod
    def class_name(cls) -> str:
        return "TracewireSpanHandler"

    @property
    def tracked_spans(self) -> int:
        """LlamaIndex spans this handler holds state for (0 once every run has finished)."""
        t = self._tracker
        return len(t.runs) + len(t.links)

    # State lives in the tracker, not in `open_spans`: every hook returns None.
    def new_span(
        self, id_: str, bound_args: inspect.BoundArguments, instance: Any | None = None,
        parent_span_id: str | None = None, tags: dict[str, Any] | None = None, **kwargs: Any,
    ) -> BaseSpan | None:
        self._tracker.enter(id_, bound_args, instance, parent_span_id, tags)
        return None

    def prepare_to_exit_span(
        self, id_: str, bound_args: inspect.BoundArguments, instance: Any | None = None, result: Any | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        self._tracker.exit(id_, result)
        return None

    def prepare_to_drop_span(
        self, id_: str, bound_args: inspect.BoundArguments, instance: Any | None = None,
        err: BaseException | None = None, **kwargs: Any,
    ) -> BaseSpan | None:
        self._tracker.drop(id_, err)
        return None

    def close(self) -> None:
        """Close every span still open as unfinished (dispatcher shutdown, `uninstrument()`)."""
        t = self._tracker
        t.runs.close_all()
        t.links.clear()


class TracewireEventHandler(BaseEventHandler):
    """Forwards LlamaIndex instrumentation events to the span handler that owns the spans."""

    span_handler: TracewireSpanHandler
    _tracker: Tracker = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        self._tracker = self.span_handler._tracker

    @classmethod
    def class_name(cls) -> str:
        return "TracewireEventHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self._tracker.on_event(event)


class LlamaIndexAdapter(Adapter):
    """The pair of handlers on LlamaIndex's root dispatcher, which sees every span and event."""

    framework = FRAMEWORK

    def __init__(self, *, max_open_spans: int = 10_000, span_ttl: float = 3600.0) -> None:
        self.span_handler = TracewireSpanHandler(max_open_spans=max_open_spans, span_ttl=span_ttl)
        self.event_handler = TracewireEventHandler(span_handler=self.span_handler)

    def setup(self) -> None:
        root = get_dispatcher()
        root.add_span_handler(self.span_handler)
        root.add_event_handler(self.event_handler)

    def teardown(self) -> None:
        root = get_dispatcher()
        # new lists rather than in-place removal: the dispatcher may be iterating the old ones
        root.span_handlers = [h for h in root.span_handlers if h is not self.span_handler]
        root.event_handlers = [h for h in root.event_handlers if h is not self.event_handler]
        self.span_handler.close()


def instrument(*, max_open_spans: int = 10_000, span_ttl: float = 3600.0) -> TracewireSpanHandler:
    """Attach tracewire's handlers to LlamaIndex's root dispatcher. Idempotent: calling it again
    returns the handler already attached, so every span is recorded once (the options apply when
    the handlers are first attached).

    A span LlamaIndex never closes is closed as unfinished when more than `max_open_spans` are
    open (oldest first) or after `span_ttl` seconds, so its state is not kept forever."""
    return LlamaIndexAdapter.install(max_open_spans=max_open_spans, span_ttl=span_ttl).span_handler


def uninstrument() -> None:
    """Detach the handlers; spans still open are closed as unfinished. Nothing is recorded after."""
    LlamaIndexAdapter.uninstall()
