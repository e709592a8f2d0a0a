"""The OpenAI SDK's resource methods, patched on their classes: every call of a recorded client
(all of them after `instrument()`, or one `wrap`ped) becomes a span of kind `llm` (`embedding`
for embeddings), sync and async, streamed or not, through `with_raw_response` too.

Streams come back in a proxy that yields exactly what the SDK yields (less the usage chunk that
`include_usage` asked for when the caller did not); the span ends once, with what was streamed.
The SDK's retries are counted per call through its `_build_request`, run once per HTTP attempt.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import openai
from openai import _base_client
from openai.resources import embeddings as _embeddings
from openai.resources import responses as _responses
from openai.resources.chat import completions as _chat

from tracewire.adapters import Adapter
from tracewire.adapters.sdk import (
    Accumulator,
    Described,
    Patches,
    Prepared,
    Request,
    Scope,
    count_attempts,
    is_raw,
    stream_manager,
    traced,
)
from tracewire.integrations.openai import extract as X
from tracewire.model import attributes as A

_FRAMEWORK = "openai"
_STREAMS = (openai.Stream, openai.AsyncStream)


class _Settings:
    """What `instrument()` / `wrap()` were told (the first call's options stand)."""

    __slots__ = ("include_usage", "providers")

    def __init__(self) -> None:
        self.include_usage = True
        self.providers: dict[str, str] = {}


settings = _Settings()
scope = Scope()
# a client's (provider, host), by client: its base_url does not change after construction
_providers: weakref.WeakKeyDictionary[Any, tuple[str, str | None]] = weakref.WeakKeyDictionary()
_forced: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # wrap(client, provider=...)


def _provider(resource: Any) -> tuple[str, str | None]:
    client = getattr(resource, "_client", None)
    try:
        found = _providers.get(client)
    except TypeError:
        found = None
    if found is None:
        found = X.provider_of(getattr(client, "base_url", None), settings.providers)
        forced = _forced.get(client) if client is not None else None
        if forced:
            found = (forced, found[1])
        try:
            _providers[client] = found
        except TypeError:
            pass
    return found


class _Spec:
    """How one kind of OpenAI call is recorded (see `tracewire.adapters.sdk.CallSpec`)."""

    framework = _FRAMEWORK
    kind = "llm"
    operation = "chat"
    streams = True  # a call may pass stream=True

    def prepare(self, resource: Any, kwargs: dict[str, Any]) -> Prepared:
        """On the caller's thread: the keyword arguments the SDK is called with, and the state
        (the requested model, whether tracewire asked for the usage chunk)."""
        return kwargs, (kwargs.get("model"), False)

    def describe(self, resource: Any, kwargs: Mapping[str, Any], request: Request) -> Described:
        provider, host = _provider(resource)
        attrs = X.request_attributes(self.operation, kwargs, provider, host)
        content, results = self.input(kwargs)
        if results:
            attrs[A.TOOL_RESULT_IDS] = results
        if self.streams and kwargs.get("stream") is True:
            attrs[A.STREAMING] = True
            if request.state[1]:
                attrs[A.STREAM_USAGE_ADDED] = True
        model = kwargs.get("model")
        return self.kind, str(model) if isinstance(model, str) else self.operation, attrs, content

    def input(self, kwargs: Mapping[str, Any]) -> tuple[Any, list[str]]:
        raise NotImplementedError

    def parsed(self, request: Request, result: Any) -> tuple[dict[str, Any], Any]:
        raise NotImplementedError

    def response(self, request: Request, result: Any) -> tuple[dict[str, Any], Any]:
        if is_raw(result):
            # a `with_raw_response` result holds the read body (parsed once, cached by the SDK); a
            # `with_streaming_response` one is the caller's to read: only its status is recorded
            if type(result).__name__ != "LegacyAPIResponse" or getattr(result, "_stream", True):
                return {A.RAW_RESPONSE: True, A.ERROR_CODE: result.http_response.status_code}, None
            attrs, output = self.parsed(request, result.parse())
            attrs[A.RAW_RESPONSE] = True
            return attrs, output
        return self.parsed(request, result)

    def accumulator(self, request: Request, result: Any) -> Accumulator | None:
        return None

    def error(self, exc: BaseException) -> dict[str, Any]:
        status = getattr(exc, "status_code", None)
        return {A.ERROR_CODE: status} if isinstance(status, int) else {}


class _Chat(_Spec):
    def input(self, kwargs: Mapping[str, Any]) -> tuple[Any, list[str]]:
        return X.chat_input(kwargs.get("messages"))

    def prepare(self, resource: Any, kwargs: dict[str, Any]) -> Prepared:
        if kwargs.get("stream") is True and settings.include_usage:
            options = kwargs.get("stream_options")
            given = isinstance(options, Mapping)
            if not (given and "include_usage" in options):  # type: ignore[operator]
                # the caller's own stream_options win; else usage is asked for, and hidden
                return ({**kwargs, "stream_options": {**(options if given else {}), "include_usage": True}},  # type: ignore[dict-item]
                        (kwargs.get("model"), True))
        return kwargs, (kwargs.get("model"), False)

    def parsed(self, request: Request, result: Any) -> tuple[dict[str, Any], Any]:
        return X.chat_response(result, request.state[0])

    def accumulator(self, request: Request, result: Any) -> Accumulator | None:
        if not isinstance(result, _STREAMS):
            return None
        return X.ChatChunks(request.state[0], request.state[1])


class _Responses(_Spec):
    operation = "responses"

    def input(self, kwargs: Mapping[str, Any]) -> tuple[Any, list[str]]:
        return X.responses_input(kwargs)

    def parsed(self, request: Request, result: Any) -> tuple[dict[str, Any], Any]:
        return X.responses_response(result, request.state[0])

    def accumulator(self, request: Request, result: Any) -> Accumulator | None:
        if not isinstance(result, _STREAMS):
            return None
        return X.ResponseEvents(request.state[0])


class _Embeddings(_Spec):
    kind = "embedding"
    operation = "embeddings"
    streams = False

    def input(self, kwargs: Mapping[str, Any]) -> tuple[Any, list[str]]:
        return kwargs.get("input"), []

    def parsed(self, request: Request, result: Any) -> tuple[dict[str, Any], Any]:
        return X.embeddings_response(result, request.state[0])


_patches = Patches()


def _target(module: Any, cls: str, method: str, spec: _Spec | None, manager: bool = False) -> None:
    owner = getattr(module, cls, None)
    if isinstance(owner, type) and method in owner.__dict__:
        _patches.add(owner, method, stream_manager(scope) if manager else traced(spec, scope))  # type: ignore[arg-type]


_chat_spec, _responses_spec = _Chat(), _Responses()
for _cls in ("Completions", "AsyncCompletions"):
    for _m in ("create", "parse"):
        _target(_chat, _cls, _m, _chat_spec)
    _target(_chat, _cls, "stream", None, manager=True)
for _cls in ("Responses", "AsyncResponses"):
    for _m in ("create", "parse"):
        _target(_responses, _cls, _m, _responses_spec)
    _target(_responses, _cls, "stream", None, manager=True)
for _cls in ("Embeddings", "AsyncEmbeddings"):
    _target(_embeddings, _cls, "create", _Embeddings())
_patches.add(_base_client.BaseClient, "_build_request", count_attempts)


def _configure(include_usage: bool, providers: Mapping[str, str] | None) -> None:
    if not isinstance(include_usage, bool):
        raise ValueError(f"include_usage must be True or False, got {include_usage!r}")
    if providers is not None and (not isinstance(providers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in providers.items())):
        raise ValueError(f"providers must map a host (or 'host:port') to a provider name, got {providers!r}")
    settings.include_usage = include_usage
    if providers:
        settings.providers.update({k.lower(): v for k, v in providers.items()})
        _providers.clear()


class OpenAIAdapter(Adapter):
    """Every OpenAI client in the process records (the SDK's resource classes patched)."""

    framework = _FRAMEWORK

    def __init__(self, include_usage: bool = True, providers: Mapping[str, str] | None = None) -> None:
        _configure(include_usage, providers)

    def setup(self) -> None:
        _patches.apply()
        scope.everywhere = True

    def teardown(self) -> None:
        scope.everywhere = False
        if not len(scope.clients):
            _patches.revert()


def instrument(*, include_usage: bool = True, providers: Mapping[str, str] | None = None) -> None:
    """Record every call of every OpenAI client, sync and async (idempotent).

    `include_usage`: ask streamed chat completions for their usage chunk
    (`stream_options={"include_usage": True}`) unless the caller set it; the chunk is not yielded
    to code that did not ask for it. `providers`: host or "host:port" -> gen_ai.provider.name, for
    base_urls the built-in table does not know."""
    OpenAIAdapter.install(include_usage=include_usage, providers=providers)


def uninstrument() -> None:
    """Stop recording the clients `instrument()` covered (`wrap`ped ones still record)."""
    OpenAIAdapter.uninstall()


def wrap(client: Any, *, provider: str | None = None, include_usage: bool | None = None) -> Any:
    """Record this client's calls only; returns the client. `provider`: its gen_ai.provider.name,
    when its base_url's host does not tell it."""
    if not isinstance(client, (openai.OpenAI, openai.AsyncOpenAI)):
        raise TypeError(f"wrap() takes an openai.OpenAI or openai.AsyncOpenAI client, got {type(client).__name__}")
    if provider is not None and (not isinstance(provider, str) or not provider):
        raise ValueError(f"provider must be a non-empty str, got {provider!r}")
    if include_usage is not None:
        _configure(include_usage, None)
    if provider:
        _forced[client] = provider
        _providers.pop(client, None)
    _patches.apply()
    scope.add(client)
    return client
