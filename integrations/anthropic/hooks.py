"""Anthropic SDK integration: `messages.create` (sync, async, `stream=True`) and the
`messages.stream()` helper, one `llm` span per call, through the shared SDK machinery
(`tracewire.adapters.sdk`): patches on the SDK's classes, the clients that record, the stream
proxy, timing and the SDK's own retries.

`messages.stream()` makes its request when its context manager is entered, without going through
`create`: the manager's request is wrapped so that it is traced like `create(stream=True)`, and
the helper's `MessageStream` reads the proxied event stream (its text_stream, get_final_message
and until_done included). `messages.count_tokens` is left alone.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, TypeVar

from anthropic._base_client import BaseClient  # (guarded by the package __init__)
from anthropic.resources.messages import AsyncMessages, Messages

from tracewire.adapters import Adapter, hook_failed
from tracewire.adapters.sdk import (
    Described,
    Patches,
    Prepared,
    Request,
    Scope,
    count_attempts,
    is_raw,
    traced,
)
from tracewire.integrations.anthropic import extract as X
from tracewire.model import attributes as A

_FRAMEWORK = "anthropic"
C = TypeVar("C")


class _Spec:
    """What a Messages call records. `helper`: the call is `messages.stream()`'s request."""

    framework = _FRAMEWORK

    def __init__(self, helper: bool) -> None:
        self.helper = helper

    def prepare(self, resource: Any, kwargs: dict[str, Any]) -> Prepared:
        # state: (streamed, a raw result readable)
        return kwargs, (self.helper or kwargs.get("stream") is True, False)

    def describe(self, resource: Any, kwargs: Mapping[str, Any], request: Request) -> Described:
        model = kwargs.get("model")
        attrs = X.request_attributes(kwargs, request.state[0])
        messages = X.input_messages(kwargs.get("messages"), kwargs.get("system"))
        results = X.result_ids(messages)
        if results:
            attrs[A.TOOL_RESULT_IDS] = results
        return "llm", str(model) if X.given(model) else "anthropic.messages", attrs, messages

    def response(self, request: Request, result: Any) -> tuple[dict[str, Any], Any]:
        if is_raw(result):
            if not request.state[1]:
                return {A.RAW_RESPONSE: True, A.ERROR_CODE: result.http_response.status_code}, None
            attrs, output = X.response(result.parse())
            attrs[A.RAW_RESPONSE] = True
            return attrs, output
        return X.response(result)

    def accumulator(self, request: Request, result: Any) -> X.StreamFold | None:
        streaming = request.state[0]
        if is_raw(result):
            # Decided here, on the caller's thread, before the caller reads anything: a
            # `with_raw_response` result holds the read body (parsed once, cached by the SDK) and
            # is recorded; a raw stream or an unread body (`with_streaming_response`) is the
            # caller's to read, and only its status is.
            streamed = getattr(result, "_is_sse_stream", getattr(result, "_stream", True))
            readable = not streamed and bool(getattr(result.http_response, "is_stream_consumed", False))
            request.state = (streaming, readable)
            return None
        return X.StreamFold(request.t0) if streaming else None

    def error(self, exc: BaseException) -> dict[str, Any]:
        return X.error_attributes(exc)


_scope = Scope()
_CREATE = traced(_Spec(helper=False), _scope)
_STREAM = traced(_Spec(helper=True), _scope)


def _stream_request(resource: Any, api_request: Callable[[], Any], **kwargs: Any) -> Any:
    return api_request()


async def _stream_request_async(resource: Any, api_request: Awaitable[Any], **kwargs: Any) -> Any:
    return await api_request


# The helper's request, traced: `traced` takes the resource first and records the keyword
# arguments `stream()` was called with.
_traced_stream_request = _STREAM(_stream_request)
_traced_stream_request_async = _STREAM(_stream_request_async)


class _OnAwait:
    """An awaitable that makes its coroutine when awaited: a manager never entered leaves no
    coroutine of ours un-awaited (only the SDK's own, as without tracewire)."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[], Awaitable[Any]]) -> None:
        self._make = make

    def __await__(self) -> Generator[Any, None, Any]:
        return self._make().__await__()


def _stream_helper(traced_request: Callable[..., Any], awaited: bool) -> Callable[[Callable[..., C]], Callable[..., C]]:
    """Wrapper factory for `Messages.stream` / `AsyncMessages.stream`: the manager it returns
    makes its request through `traced_request`. The sync manager calls its request; the async one
    awaits it (a coroutine made by `stream()`, run only when the manager is entered)."""

    def make(original: Callable[..., C]) -> Callable[..., C]:
        @functools.wraps(original)
        def stream(self: Any, *args: Any, **kwargs: Any) -> C:
            manager = original(self, *args, **kwargs)
            if not _scope.covers(getattr(self, "_client", None)):
                return manager
            try:
                # The manager keeps its request in a name-mangled attribute of its own class.
                name = f"_{type(manager).__name__.lstrip('_')}__api_request"
                api_request = getattr(manager, name)
                request = functools.partial(traced_request, self, api_request, **kwargs)
                setattr(manager, name, _OnAwait(request) if awaited else request)
            except Exception as exc:  # noqa: BLE001 - never break the host: the stream goes unrecorded
                hook_failed(_FRAMEWORK, "stream", exc)
            return manager

        return stream

    return make


_patches = Patches()
_patches.add(Messages, "create", _CREATE)
_patches.add(AsyncMessages, "create", _CREATE)
_patches.add(Messages, "stream", _stream_helper(_traced_stream_request, awaited=False))
_patches.add(AsyncMessages, "stream", _stream_helper(_traced_stream_request_async, awaited=True))
_patches.add(BaseClient, "_build_request", count_attempts)


class AnthropicAdapter(Adapter):
    """Every Anthropic and AsyncAnthropic client records its Messages calls."""

    framework = _FRAMEWORK

    def setup(self) -> None:
        _scope.everywhere = True
        _patches.apply()

    def teardown(self) -> None:
        _scope.everywhere = False
        if not _scope.clients:  # clients wrapped one by one keep recording
            _patches.revert()


def instrument() -> None:
    """Record the Messages calls of every Anthropic / AsyncAnthropic client (idempotent)."""
    AnthropicAdapter.install()


def uninstrument() -> None:
    """Undo `instrument()`; clients passed to `wrap` keep recording."""
    AnthropicAdapter.uninstall()


def wrap(client: C) -> C:
    """Record the Messages calls of this one client (Anthropic or AsyncAnthropic); returns it."""
    _scope.add(client)
    _patches.apply()
    return client
