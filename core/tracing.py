"""The public recording API: `session`, `span`, `trace`, `record`, `score` — thin layers over the client."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import Any, TypeVar, overload

from tracewire.engine import state as _state
from tracewire.engine.client import CURRENT, UNSET, Client, Span
from tracewire.model import score as _score
from tracewire.model.context import SessionInfo, current_session, current_span
from tracewire.model.ids import new_event_id, new_trace_id

F = TypeVar("F", bound=Callable[..., Any])


def _client() -> Client:
    return _state.client or _state.get_client()


class session:  # noqa: N801 - used like a function: `with tracewire.session(...)`
    """Sets session_id / user_id / tags / metadata for every event recorded inside it."""

    def __init__(
        self, session_id: str | None = None, user_id: str | None = None, tags: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        outer = current_session.get()
        self.info = SessionInfo(
            session_id=session_id or (outer.session_id if outer and user_id is None else None) or new_trace_id(),
            user_id=user_id or (outer.user_id if outer else None),
            tags=tuple(dict.fromkeys([*(outer.tags if outer else ()), *(tags or ())])),
            metadata={**(outer.metadata if outer else {}), **(metadata or {})},
        )
        self._tokens: list[Any] = []

    @property
    def session_id(self) -> str:
        return self.info.session_id

    def __enter__(self) -> session:
        self._tokens.append(current_session.set(self.info))
        return self

    def __exit__(self, *exc: Any) -> None:
        current_session.reset(self._tokens.pop())

    async def __aenter__(self) -> session:
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        self.__exit__(*exc)


def span(
    kind: str, name: str, *, input: Any = UNSET, attributes: Mapping[str, Any] | None = None,
    tags: list[str] | None = None, metadata: Mapping[str, Any] | None = None, parent: Any = CURRENT,
) -> Span:
    """Start a span to use as `with`/`async with`: current inside the block, ended at its exit,
    failed (and the exception re-raised unchanged) if the block raises."""
    return _client().start_span(
        kind, name, input=input, attributes=attributes, tags=tags, metadata=metadata, parent=parent
    )


def record(
    event_type: str, *, name: str | None = None, input: Any = UNSET, output: Any = UNSET,
    attributes: Mapping[str, Any] | None = None, parent: Any = CURRENT, time_ns: int | None = None,
    framework: str = "manual", tags: list[str] | tuple[str, ...] | None = None,
    metadata: Mapping[str, Any] | None = None, session_id: str | None = None, user_id: str | None = None,
    error: BaseException | Mapping[str, Any] | str | None = None, **unknown: Any,
) -> None:
    """A point event: `user.input`, `agent.response`, `user.feedback`, `metric`, `log`, or custom.
    Keywords it does not know (`value=3`, a misspelt `imput=`) are recorded in the event's
    metadata, counted in `stats()["internal_errors"]["record"]` and logged once, never raised."""
    c = _state.client or _state.get_client()
    try:
        if unknown:  # kept, not lost: a misspelt keyword may hold what the user meant to record
            c.report_error("record", TypeError(
                f"record() got unexpected keyword arguments: {', '.join(sorted(unknown))} (recorded in metadata)"))
            metadata = {**unknown, **metadata} if metadata else unknown
        # Passed on by position, not as **kwargs: repacking the keywords cost a tenth of the call.
        c.point(event_type, name, input, output, attributes, parent, time_ns, framework, tags, metadata, session_id,
                user_id, error)
    except Exception as exc:  # noqa: BLE001 - never break the host
        c.report_error("record", exc)


def score(
    name: str, value: bool | float | None = None, *, label: str | None = None, comment: str | None = None,
    trace_id: str | None = None, span_id: str | None = None, session_id: str | None = None,
    source: str = "code", metadata: Mapping[str, Any] | None = None, id: str | None = None,
) -> str:
    """Score a trace, a span or a session; returns the score's id (`id`, or a new one).

    A number or bool `value`, a category `label`, or both; `comment` says why. The target is exactly
    one of: `span_id` (with its `trace_id`), `trace_id`, `session_id`. With none given, inside a span
    the score goes to the current span; outside any span that is a ValueError. Scoring again with
    the same `id` updates that score (the latest write by its own time wins, in every store).
    Bad arguments raise TypeError / ValueError here; metadata that cannot be serialized is recorded
    safely, like any content."""
    if span_id is not None and trace_id is None:
        raise ValueError("score(): span_id needs its trace_id (trace_id=...)")
    if session_id is not None and (trace_id is not None or span_id is not None):
        raise ValueError("score(): a score targets one of trace_id / span_id or session_id, not both")
    if trace_id is None and session_id is None:
        current = _client().parent_of()  # the context's span, as an adapter or OpenTelemetry sees it
        if current is None:
            raise ValueError("score(): no target: pass trace_id= (and span_id= for a span) or session_id=, "
                             "or call it inside a span to score the current span")
        trace_id, span_id = current.trace_id, current.span_id
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"score(): metadata must be a mapping, not {type(metadata).__name__}")
    now = time.time_ns()
    record = _score.record(name, value, label, comment, trace_id, span_id, session_id, source, id, now)
    if record["id"] is None:
        record["id"] = new_event_id(now)
    c = _client()
    try:
        c.put_score(record, metadata)
    except Exception as exc:  # noqa: BLE001 - never break the host
        c.report_error("score", exc)
    return str(record["id"])


def _arguments(sig: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if sig is None:
        return {"args": list(args), "kwargs": kwargs}
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError:
        return {"args": list(args), "kwargs": kwargs}
    out = dict(bound.arguments)
    out.pop("self", None)
    out.pop("cls", None)
    return out


@overload
def trace(kind: F) -> F: ...
@overload
def trace(kind: str = "chain", name: str | None = None, *, capture_args: bool = True,
          capture_result: bool = True) -> Callable[[F], F]: ...
def trace(
    kind: Any = "chain", name: str | None = None, *, capture_args: bool = True, capture_result: bool = True
) -> Any:
    """Decorate a function (sync, async, generator or async generator) to record it as a span.

    Records the arguments and the return value (or the yielded items, for generators), and
    re-raises any exception unchanged after recording it. A generator's span ends when it is
    exhausted or closed.
    """
    if callable(kind):  # bare @trace
        return trace("chain")(kind)

    def decorate(fn: F) -> F:
        span_name = str(name or getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "function"))
        try:
            sig: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            sig = None

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Span:
            return _client().start_span(kind, span_name, input=_arguments(sig, args, kwargs) if capture_args else UNSET)

        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)  # the async twin of gen_wrapper below
            async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                sp = start(args, kwargs)
                items: list[Any] = []
                inner = _with_span_async(sp, fn(*args, **kwargs))
                try:
                    async for item in inner:
                        if capture_result:
                            items.append(item)
                        yield item
                except GeneratorExit:
                    sp.end(items if capture_result else UNSET)
                    raise
                except BaseException as exc:
                    sp.fail(exc, output=items if capture_result else UNSET)
                    raise
                finally:
                    await inner.aclose()
                sp.end(items if capture_result else UNSET)

            return agen_wrapper  # type: ignore[return-value]

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)  # the sync twin of agen_wrapper above
            def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
                sp = start(args, kwargs)
                items: list[Any] = []
                inner = _with_span_sync(sp, fn(*args, **kwargs))
                try:
                    for item in inner:
                        if capture_result:
                            items.append(item)
                        yield item
                except GeneratorExit:
                    sp.end(items if capture_result else UNSET)
                    raise
                except BaseException as exc:
                    sp.fail(exc, output=items if capture_result else UNSET)
                    raise
                finally:
                    inner.close()
                sp.end(items if capture_result else UNSET)

            return gen_wrapper  # type: ignore[return-value]

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with start(args, kwargs) as sp:
                    result = await fn(*args, **kwargs)
                    if capture_result:
                        sp.set_output(result)
                    return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with start(args, kwargs) as sp:
                result = fn(*args, **kwargs)
                if capture_result:
                    sp.set_output(result)
                return result

        return wrapper  # type: ignore[return-value]

    return decorate


def _with_span_sync(sp: Span, gen: Iterator[Any]) -> Generator[Any, None, None]:
    """Runs each step of the inner generator with the span current; between steps the
    consumer's context is left as it was."""
    try:
        while True:
            token = current_span.set(sp)
            try:
                item = next(gen)
            except StopIteration:
                return
            finally:
                current_span.reset(token)
            yield item
    finally:
        close = getattr(gen, "close", None)
        if close is not None:
            close()


async def _with_span_async(sp: Span, agen: Any) -> AsyncGenerator[Any, None]:
    try:
        while True:
            token = current_span.set(sp)
            try:
                item = await agen.__anext__()
            except StopAsyncIteration:
                return
            finally:
                current_span.reset(token)
            yield item
    finally:
        await agen.aclose()

