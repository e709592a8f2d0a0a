"""`wrap(client)`: a stand-in for a ConversationalSearchService client that records each
conversational call, and otherwise is the client.

The stand-in forwards every attribute to the wrapped client and reports the client's class (so
`isinstance` holds); only `converse_conversation`, `answer_query`, `stream_answer_query` and
`get_answer` are instrumented, and they return exactly what the client returned (streams are
handed back as stand-ins of the library's stream objects, yielding the same messages).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from tracewire.integrations.vertex.run import Options, Run
from tracewire.integrations.vertex.stream import AsyncStreamProxy, StreamProxy

C = TypeVar("C")
INSTRUMENTED = ("converse_conversation", "answer_query", "stream_answer_query", "get_answer")


def wrap(client: C, *, session_id: str | None = None, user_id: str | None = None,
         tags: Sequence[str] | None = None, metadata: Mapping[str, Any] | None = None) -> C:
    """Record `client`'s conversational calls (a v1/v1beta/v1alpha ConversationalSearchServiceClient
    or ...AsyncClient). Use the returned client exactly as the original.

    `session_id` / `user_id` override the conversation/session resource and the request's
    `user_pseudo_id` as the recorded session and user; `tags` and `metadata` go on every call's span.
    """
    if isinstance(client, _ClientProxy):  # re-wrapping replaces the options, never stacks
        client = client._tw_target
    if not any(hasattr(client, m) for m in INSTRUMENTED):
        raise TypeError(f"wrap() takes a ConversationalSearchService client, got {type(client).__name__}")
    opts = Options(session_id, user_id, tags, metadata)
    proxy_type = _AsyncClientProxy if hasattr(type(client), "__aenter__") else _SyncClientProxy
    return proxy_type(client, opts)  # type: ignore[return-value]


class _ClientProxy:
    __slots__ = ("_tw_target", "_tw_opts", "_tw_methods", "__weakref__")
    _tw_async = False

    def __init__(self, target: Any, opts: Options) -> None:
        object.__setattr__(self, "_tw_target", target)
        object.__setattr__(self, "_tw_opts", opts)
        object.__setattr__(self, "_tw_methods", {})

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(wrapped, ConversationalSearchServiceClient) holds
        return type(self._tw_target)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_tw_"):  # own slots not set yet (e.g. mid-construction): no recursion
            raise AttributeError(name)
        value = getattr(self._tw_target, name)
        if name not in INSTRUMENTED or not callable(value):
            return value
        cached = self._tw_methods.get(name)
        if cached is not None and cached[0] == value:
            return cached[1]
        if not self._tw_async:
            instrumented = _sync_method(name, value, self._tw_opts)
        elif name == "stream_answer_query":
            instrumented = _async_stream_method(value, self._tw_opts)
        else:
            instrumented = _async_method(name, value, self._tw_opts)
        self._tw_methods[name] = (value, instrumented)
        return instrumented

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._tw_target, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._tw_target, name)

    def __dir__(self) -> list[str]:
        return dir(self._tw_target)

    def __repr__(self) -> str:
        return repr(self._tw_target)


class _SyncClientProxy(_ClientProxy):
    __slots__ = ()

    def __enter__(self) -> Any:
        entered = self._tw_target.__enter__()
        return self if entered is self._tw_target else entered

    def __exit__(self, *exc: Any) -> Any:
        return self._tw_target.__exit__(*exc)


class _AsyncClientProxy(_ClientProxy):
    __slots__ = ()
    _tw_async = True

    async def __aenter__(self) -> Any:
        entered = await self._tw_target.__aenter__()
        return self if entered is self._tw_target else entered

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._tw_target.__aexit__(*exc)


# ------------------------------------------------------------------ the instrumented methods
# _sync_method, _async_method and _open_stream are twins: the same recording around a sync call,
# an awaited one and an awaited stream.
def _sync_method(method: str, original: Any, opts: Options) -> Any:
    streams = method == "stream_answer_query"

    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        run = Run.start(method, args, kwargs, opts)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            if run is not None:
                run.fail(exc)
            raise
        if run is None:
            return result
        if streams:
            return StreamProxy(result, run)
        run.finish(result)
        return result

    return call


def _async_method(method: str, original: Any, opts: Options) -> Any:
    @functools.wraps(original)
    async def call(*args: Any, **kwargs: Any) -> Any:
        run = Run.start(method, args, kwargs, opts)
        try:
            result = await original(*args, **kwargs)
        except BaseException as exc:
            if run is not None:
                run.fail(exc)
            raise
        if run is not None:
            run.finish(result)
        return result

    return call


def _async_stream_method(original: Any, opts: Options) -> Any:
    # The library's method is a plain function returning an awaitable that resolves to the
    # stream; keep that shape (and its synchronous argument errors).
    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        pending = original(*args, **kwargs)
        return _open_stream(pending, args, kwargs, opts)

    return call


async def _open_stream(pending: Any, args: tuple[Any, ...], kwargs: dict[str, Any], opts: Options) -> Any:
    run = Run.start("stream_answer_query", args, kwargs, opts)
    try:
        stream = await pending
    except BaseException as exc:
        if run is not None:
            run.fail(exc)
        raise
    return stream if run is None else AsyncStreamProxy(stream, run)


