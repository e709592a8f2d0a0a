"""What the model-SDK integrations (OpenAI, Anthropic) share: patching an SDK's resource methods
on their classes (sync and async, idempotently), the clients that record (every one, or those
`wrap`ped), one span per model call with its timing and the SDK's own retries, stream proxies
that hand the caller exactly what the SDK yields, and the no-double-recording rule.

An integration describes its calls with a `CallSpec` (what the call needs on the caller's thread,
what a request records, what a response or a stream's items add) and patches its resource methods
with `Patches` and `traced(spec, scope)`. Everything else is here, once. A call's span is started
and ended on the client's worker (`Client.defer`, in order): on the caller's thread a call reads
its context, the clock and a copy of its arguments (JSON text, one C call), and times itself.

The no-double-recording rule: an integration that records a model call itself and makes it
through one of these SDKs (LangChain's handler for ChatOpenAI, the LiteLLM logger) calls
`claim_model_call()` in the context that will make the SDK call, and `release()`s the claim when
its own record ends. An SDK call made while an open claim is current records nothing: the
owner's span is that call's record. A claim with `once=True` is used up by the first SDK call that
sees it (for owners whose end hook may come late, on another thread). No claim, no suppression:
SDK calls under frameworks without a tracewire hook are recorded as usual.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import types
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Protocol

from tracewire.adapters.base import hook_failed
from tracewire.engine import state
from tracewire.engine.client import Client
from tracewire.engine.span import UNSET, Span, error_info
from tracewire.model import attributes as A
from tracewire.model import codec
from tracewire.model.codec import loads
from tracewire.model.content import thaw
from tracewire.model.context import SessionInfo, SpanContext, current_session, current_span, parent_resolvers
from tracewire.model.event import ENVELOPE_BYTES

# ------------------------------------------------------------------ no double recording


class Claim:
    """An integration's claim on the model call about to be made in this context."""

    __slots__ = ("open", "once")

    def __init__(self, once: bool) -> None:
        self.open = True
        self.once = once

    def release(self) -> None:
        """The owner's record of the call ended: later SDK calls in this context record again."""
        self.open = False


_claim: ContextVar[Claim | None] = ContextVar("tracewire_model_call_claim", default=None)


def claim_model_call(*, once: bool = False) -> Claim:
    """Declare that the SDK call about to be made in this context is recorded by the caller.
    Never reset: a released claim left in the context suppresses nothing."""
    claim = Claim(once)
    _claim.set(claim)
    return claim


def model_call_claimed() -> bool:
    """Whether an open claim covers the SDK call being made now (a `once` claim is used up)."""
    claim = _claim.get()
    if claim is None or not claim.open:
        return False
    if claim.once:
        claim.open = False
    return True


# ------------------------------------------------------------------ which clients record


class Scope:
    """The SDK clients an integration records: every one (`everywhere`, by `instrument()`), or
    those `add`ed (by `wrap(client)`): their ids, each dropped when its client is collected (a
    set of ints answers in one C step on every call; a WeakSet makes a weak reference to ask)."""

    __slots__ = ("everywhere", "clients")

    def __init__(self) -> None:
        self.everywhere = False
        self.clients: set[int] = set()

    def add(self, client: Any) -> None:
        key = id(client)
        if key not in self.clients:
            self.clients.add(key)
            weakref.finalize(client, self.clients.discard, key)

    def covers(self, client: Any) -> bool:
        return self.everywhere or id(client) in self.clients


# ------------------------------------------------------------------ patching

_ORIGINAL = "__tracewire_original__"


def patch_method(cls: type, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    """Replace `cls.name` (defined on `cls` itself) with `make(original)`; False when it is
    already patched or absent. `unpatch_method` restores the original."""
    original = cls.__dict__.get(name)
    if original is None or getattr(original, _ORIGINAL, None) is not None:
        return False
    wrapper = make(original)
    setattr(wrapper, _ORIGINAL, original)
    setattr(cls, name, wrapper)
    return True


def unpatch_method(cls: type, name: str) -> bool:
    current = cls.__dict__.get(name)
    original = getattr(current, _ORIGINAL, None)
    if original is None:
        return False
    setattr(cls, name, original)
    return True


class Patches:
    """A set of (class, method name, wrapper factory) applied and reverted together, each
    idempotent and thread-safe. A method missing from the installed SDK version is skipped."""

    def __init__(self) -> None:
        self._targets: list[tuple[type, str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = []
        self._lock = threading.Lock()
        self.applied = False

    def add(self, cls: type, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        self._targets.append((cls, name, make))

    def apply(self) -> None:
        with self._lock:
            for cls, name, make in self._targets:
                patch_method(cls, name, make)
            self.applied = True

    def revert(self) -> None:
        with self._lock:
            for cls, name, _ in self._targets:
                unpatch_method(cls, name)
            self.applied = False


# ------------------------------------------------------------------ one call


class Request(Protocol):
    """A call as a `CallSpec`'s hooks see it: the keyword arguments the SDK is called with and the
    integration's own `state`, both as `prepare` returned them, and when it began (`t0`,
    perf_counter_ns). `Call` holds them."""

    kwargs: dict[str, Any]
    state: Any
    t0: int


# What `CallSpec.prepare` returns: (the keyword arguments to call the SDK with, e.g. with usage
# asked for in a stream; the integration's own state, handed back with the response).
Prepared = tuple[dict[str, Any], Any]


class Accumulator(Protocol):
    """Folds a stream's items: `add` on the caller's thread as each passes, `result` once the
    stream has ended (on the worker; on the caller's thread when it failed). `add` keeps what the fold needs, as little as it can: holding an
    item costs the caller more than a few reads of it (docs/performance.md, "Model SDKs")."""

    def add(self, item: Any) -> bool:
        """Take one item the SDK yielded; whether the caller sees it (False: an item only the
        instrumentation asked for, such as a usage chunk)."""

    def result(self) -> tuple[dict[str, Any], Any]:
        """(attributes, output) of what has passed so far."""


class CallSpec(Protocol):
    framework: str

    def prepare(self, resource: Any, kwargs: dict[str, Any]) -> Prepared | None:
        """On the caller's thread, before the call: what the SDK is called with, or None to leave
        the call unrecorded. Only what the call itself needs: the rest waits for `describe`."""

    def describe(self, resource: Any, kwargs: Mapping[str, Any], request: Request) -> Described:
        """(kind, name, attributes, input) of the span, from the call's keyword arguments as the
        caller gave them. Runs on the client's worker, from a copy taken at call time (on the
        caller's thread when the arguments are not plain data)."""

    def response(self, request: Request, result: Any) -> tuple[dict[str, Any], Any]:
        """(attributes, output) of a complete (non-stream) result. Runs on the client's worker
        thread (as does an accumulator's `result` at a stream's end): it reads `result` only."""

    def accumulator(self, request: Request, result: Any) -> Accumulator | None:
        """An accumulator when `result` is a stream, else None."""

    def error(self, exc: BaseException) -> dict[str, Any]:
        """Attributes of a failed call (e.g. its HTTP status)."""


# What `CallSpec.describe` returns: (kind, name, attributes, input) of the span.
Described = tuple[str, str, dict[str, Any], Any]

_raw_types: dict[type, bool] = {}


def is_raw(result: Any) -> bool:
    """A `with_raw_response` / `with_streaming_response` result rather than the parsed object.
    Known by type after the first of each: on a parsed (pydantic) object the two missing
    attributes cost ~3 µs, and this runs on the caller's thread for every Anthropic call."""
    kind = type(result)
    raw = _raw_types.get(kind)
    if raw is None:
        raw = _raw_types[kind] = hasattr(result, "http_response") and hasattr(result, "parse")
    return raw


_now = time.perf_counter_ns
_Coroutine = types.CoroutineType
_snapshot = codec.snapshot_bytes
_current_call: ContextVar[Call | None] = ContextVar("tracewire_sdk_call", default=None)
# A stream helper's context manager (`chat.completions.stream()`) entering: the stream proxy
# its request returns is handed to it here, so its exit ends the span.
_opening: ContextVar[list[Any] | None] = ContextVar("tracewire_sdk_opening", default=None)


class Call:
    """One model call's span and timing. Its span is started and ended on the client's worker,
    `defer`red in order: the caller's thread reads only what cannot wait (the context, the clock,
    a copy of the arguments as given) and times the call. Ends once: `end`, `settle` or `fail`."""

    __slots__ = ("spec", "span", "kwargs", "state", "t0", "first", "attempts", "done", "client")

    def __init__(self, spec: CallSpec, prepared: Prepared, client: Client) -> None:
        self.spec = spec
        self.span: Span | None = None  # set on the worker once the start has run
        self.kwargs, self.state = prepared  # what the hooks see as the `Request`
        self.client = client
        self.t0 = _now()
        self.first: int | None = None  # perf_counter_ns of a stream's first item
        self.attempts = 0
        self.done = False

    def timing(self, end: int) -> dict[str, Any]:
        """Latency, time to first item and attempts, on the worker: once the call is `done`,
        nothing changes them."""
        attrs: dict[str, Any] = {A.LATENCY_MS: round((end - self.t0) / 1e6, 3)}
        if self.first is not None:
            attrs[A.TTFT_MS] = round((self.first - self.t0) / 1e6, 3)
        if self.attempts:
            attrs[A.ATTEMPTS] = self.attempts
        return attrs

    # The caller's side of an end reads the clocks and defers the rest: on a thread that has just
    # waited for the network, every line of code and data it touches is a cache miss.
    def end(self, attributes: Mapping[str, Any] | None, output: Any = UNSET) -> None:
        if self.done:
            return
        self.done = True
        known = dict(attributes) if attributes else None  # the caller's mapping, as it is now
        self.client.defer(_closed, self, _now(), known, None, output, None, (), time.time_ns(), force=True)

    def settle(self, describe: Callable[..., tuple[dict[str, Any], Any]], *args: Any,
               extra: Mapping[str, Any] | None = None) -> None:
        """End the span with `describe(*args)` -> (attributes, output), run on the client's worker
        (what it reads must not change after this call: the SDK's response objects, a finished
        stream's accumulator). `extra`: attributes known now."""
        if self.done:
            return
        self.done = True
        self.client.defer(_closed, self, _now(), extra, None, UNSET, describe, args, time.time_ns(), force=True)

    def fail(self, exc: BaseException | Mapping[str, Any], attributes: Mapping[str, Any] | None = None,
             output: Any = UNSET) -> None:
        if self.done:
            return
        self.done = True
        end = _now()
        attrs: dict[str, Any] = {}
        error: Any = exc
        if isinstance(exc, BaseException):
            try:
                attrs.update(self.spec.error(exc))
            except Exception as err:  # noqa: BLE001
                hook_failed(self.spec.framework, "error", err)
            # read here: the traceback grows as the exception goes on up the caller's stack
            error = error_info(exc)
            status = getattr(exc, "status_code", None)
            if isinstance(status, int):  # the HTTP status, beside the provider's own error code
                error["status"] = status
        if attributes:
            attrs.update(attributes)
        self.client.defer(_closed, self, end, attrs, error, output, None, (), time.time_ns(), force=True)


def _started(call: Call, resource: Any, kwargs: Any, parent: SpanContext | None, sess: SessionInfo | None,
             start_ns: int) -> None:
    """The call's span starts, on the worker: what its request says, read from the arguments' JSON
    text, or (`kwargs` a tuple) as the caller's thread described it, frozen."""
    spec = call.spec
    try:
        if type(kwargs) is tuple:  # described on the caller, frozen (arguments that are not plain data)
            kind, name, attributes, content = kwargs
            attributes, content = (loads(attributes) if type(attributes) is str else attributes[0]), thaw(content)
        else:
            kind, name, attributes, content = spec.describe(resource, loads(kwargs), call)
        client = call.client
        call.span = client.start_span(
            kind, name, input=content if client.capture_content else UNSET, parent=parent, session=sess,
            attributes=attributes, framework=spec.framework, start_ns=start_ns,
        )
    except Exception as exc:  # noqa: BLE001 - a request it cannot read goes unrecorded
        hook_failed(spec.framework, "request", exc)


def _closed(call: Call, end: int, known: Mapping[str, Any] | None, error: Any, output: Any,
            describe: Callable[..., tuple[dict[str, Any], Any]] | None, args: tuple[Any, ...], end_ns: int) -> None:
    """The call's span ends (on the worker): its timing (`end`: the perf counter when it ended),
    the attributes `known` at its end, then what `describe(*args)` reads off a response."""
    span = call.span
    if span is None:  # its start was not recorded
        return
    attrs = call.timing(end)
    if known:
        attrs.update(known)
    if describe is not None:
        try:
            more, output = describe(*args)
            if more:
                attrs.update(more)
        except Exception as exc:  # noqa: BLE001 - a payload it cannot read is recorded without it
            hook_failed(call.spec.framework, "response", exc)
    if error is None:
        span.end(output, attributes=attrs, end_ns=end_ns)
    else:
        span.fail(error, attributes=attrs, end_ns=end_ns, output=output)


def _begin(spec: CallSpec, resource: Any, kwargs: dict[str, Any]) -> Call | None:
    try:
        prepared = spec.prepare(resource, kwargs)
        if prepared is None:
            return None
        client = state.client or state.get_client()
        call = Call(spec, prepared, client)
        # What cannot wait: the parent and session the context gives, the time, and the arguments
        # as they are now (a plain-data copy in one C call); the worker reads the request from them.
        parent = current_span.get() if not parent_resolvers and client.root_parent_provider is None \
            else client.parent_of()
        sess, now = current_session.get(), time.time_ns()
        text = None
        if _snapshot is not None:
            try:
                text = _snapshot(kwargs)
            except Exception:  # noqa: BLE001 - not plain data: read at once, below
                pass
        if text is None:
            # Not plain data (the SDK's NOT_GIVEN, pydantic objects): read now, while its objects are
            # as given, and frozen; the span still starts on the worker, in order with the others.
            kind, name, attributes, content = spec.describe(resource, kwargs, call)
            described = (kind, name, client.frozen(attributes), client.frozen(content) if client.capture_content else UNSET)
            size = ENVELOPE_BYTES + sum(len(v) for v in described[2:] if type(v) is str)
            admitted = client.defer(_started, call, resource, described, parent, sess, now, size=size)
        else:
            admitted = client.defer(_started, call, resource, text, parent, sess, now, size=ENVELOPE_BYTES + len(text))
        if not admitted:
            call.done = True  # refused (the queue is full; counted): the call goes unrecorded
        return call
    except Exception as exc:  # noqa: BLE001 - never break the host
        hook_failed(spec.framework, "request", exc)
        return None


_SENT: dict[str, Any] = {}  # a made call's keyword arguments: never written to


def _returned(call: Call, result: Any) -> Any:
    """What the caller gets: `result` itself, or a proxy of it when it is a stream."""
    try:
        spec = call.spec
        acc = spec.accumulator(call, result)
        call.kwargs = _SENT  # the call was made with them: not held until the worker runs
        if acc is None:
            call.settle(spec.response, call, result)
            return result
        proxy: Any = AsyncStreamProxy(result, call, acc) if hasattr(result, "__aiter__") else StreamProxy(result, call, acc)
        opening = _opening.get()
        if opening is not None:
            opening.append(proxy)
        return proxy
    except Exception as exc:  # noqa: BLE001
        hook_failed(call.spec.framework, "response", exc)
        call.end(None)
        return result


def traced(spec: CallSpec, scope: Scope) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A wrapper factory for `patch_method`: the method records a span per call of a client in
    `scope` (the resource's `_client`), unless another integration claimed the call."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        # SDKs wrap their async methods in plain decorators (argument checks): look beneath them
        if inspect.iscoroutinefunction(inspect.unwrap(original)):
            @functools.wraps(original)
            async def traced_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                if not (scope.everywhere or scope.covers(getattr(self, "_client", None))) or (
                        _claim.get() is not None and model_call_claimed()):
                    return await original(self, *args, **kwargs)
                call = _begin(spec, self, kwargs)
                if call is None:
                    return await original(self, *args, **kwargs)
                token = _current_call.set(call)
                try:
                    result = await original(self, *args, **call.kwargs)
                except BaseException as exc:
                    call.fail(exc)
                    raise
                finally:
                    _current_call.reset(token)
                return _returned(call, result)

            return traced_async

        @functools.wraps(original)
        def traced_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not (scope.everywhere or scope.covers(getattr(self, "_client", None))) or (
                    _claim.get() is not None and model_call_claimed()):
                return original(self, *args, **kwargs)
            call = _begin(spec, self, kwargs)
            if call is None:
                return original(self, *args, **kwargs)
            token = _current_call.set(call)
            try:
                result = original(self, *args, **call.kwargs)
            except BaseException as exc:
                call.fail(exc)
                raise
            finally:
                _current_call.reset(token)
            if type(result) is _Coroutine:  # an async method the patch could not tell from a sync one
                return _awaited(call, result)
            return _returned(call, result)

        return traced_sync

    return make


async def _awaited(call: Call, pending: Any) -> Any:
    token = _current_call.set(call)
    try:
        result = await pending
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        _current_call.reset(token)
    return _returned(call, result)


def count_attempts(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrapper factory for a Stainless-generated SDK's `BaseClient._build_request(options, *,
    retries_taken=0)`, which the SDK's retry loop calls once per HTTP attempt: the call being
    recorded learns how many attempts it took."""

    @functools.wraps(original)
    def build_request(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = _current_call.get()
        if call is not None:
            retries = kwargs.get("retries_taken", 0)
            call.attempts = retries + 1 if isinstance(retries, int) else call.attempts + 1
        return original(self, *args, **kwargs)

    return build_request


# ------------------------------------------------------------------ streams


def _finish_stream(call: Call, acc: Accumulator, how: str, exc: BaseException | None = None) -> None:
    if call.done:
        return
    if exc is None:
        call.settle(acc.result, extra={A.STREAM_END: how, A.STREAMING: True})
        return
    try:
        attrs, output = acc.result()
    except Exception as err:  # noqa: BLE001
        hook_failed(call.spec.framework, "stream", err)
        attrs, output = {}, UNSET
    attrs[A.STREAM_END] = how
    attrs[A.STREAMING] = True
    call.fail(exc, attrs, output)


class StreamProxy:
    """Iterates the SDK's stream for the caller, item for item, folding each into the span; the
    span ends once: exhausted, closed, exited as a context manager, failed, or garbage-collected.
    Anything else is the stream's own attribute."""

    __slots__ = ("_stream", "_call", "_acc", "_add", "_it")

    def __init__(self, stream: Any, call: Call, acc: Accumulator) -> None:
        self._stream = stream
        self._call = call
        self._acc = acc
        self._add = acc.add
        self._it: Iterator[Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        return self._items()

    def _items(self) -> Iterator[Any]:
        """A `for` loop's path: a generator, resumed per item, touches less per item than a
        `__next__` call (the caller has just parsed the item; whatever else it touches is a cache
        miss). It reads from the same iterator as `__next__`, so the two can be mixed."""
        it = self._it
        if it is None:
            it = self._it = iter(self._stream)
        call, add = self._call, self._add
        first = call.first is None
        try:
            for item in it:
                if first:
                    call.first = _now()
                    first = False
                try:
                    keep = add(item)
                except Exception as exc:  # noqa: BLE001 - a bad item is recorded, never raised
                    hook_failed(call.spec.framework, "stream_item", exc)
                    keep = True
                if keep:
                    yield item
        except GeneratorExit:  # the loop was left: the stream is the caller's to close or drop
            raise
        except BaseException as exc:
            _finish_stream(call, self._acc, "error", exc)
            raise
        _finish_stream(call, self._acc, "exhausted")

    def __next__(self) -> Any:
        it = self._it
        if it is None:
            it = self._it = iter(self._stream)
        call = self._call
        while True:
            try:
                item = next(it)
            except StopIteration:
                _finish_stream(call, self._acc, "exhausted")
                raise
            except BaseException as exc:
                _finish_stream(call, self._acc, "error", exc)
                raise
            if call.first is None:
                call.first = _now()
            try:
                if self._add(item):
                    return item
            except Exception as exc:  # noqa: BLE001 - a bad item is recorded, never raised
                hook_failed(call.spec.framework, "stream_item", exc)
                return item

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            _finish_stream(self._call, self._acc, "closed")

    def __enter__(self) -> StreamProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            _finish_stream(self._call, self._acc, "abandoned")
        except Exception:  # noqa: BLE001  # pragma: no cover - at interpreter exit
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class AsyncStreamProxy:
    """`StreamProxy` for an async stream. An `async for` calls `__anext__` per item: an async
    generator left unfinished would be closed by the event loop, later and on its schedule, and
    each item's await already costs more than the call."""

    __slots__ = ("_stream", "_call", "_acc", "_add", "_it")

    def __init__(self, stream: Any, call: Call, acc: Accumulator) -> None:
        self._stream = stream
        self._call = call
        self._acc = acc
        self._add = acc.add
        self._it: Any = None

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        it = self._it
        if it is None:
            it = self._it = self._stream.__aiter__()
        call = self._call
        while True:
            try:
                item = await it.__anext__()
            except StopAsyncIteration:
                _finish_stream(call, self._acc, "exhausted")
                raise
            except BaseException as exc:
                _finish_stream(call, self._acc, "error", exc)
                raise
            if call.first is None:
                call.first = _now()
            try:
                if self._add(item):
                    return item
            except Exception as exc:  # noqa: BLE001
                hook_failed(call.spec.framework, "stream_item", exc)
                return item

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            _finish_stream(self._call, self._acc, "closed")

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __del__(self) -> None:
        try:
            _finish_stream(self._call, self._acc, "abandoned")
        except Exception:  # noqa: BLE001  # pragma: no cover
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class StreamManagerProxy:
    """An SDK's stream helper context manager (`client.chat.completions.stream(...)`): entering
    it makes the request through the patched method, whose stream proxy this keeps, so that
    leaving the block ends the span (with what passed) even when the helper closes the HTTP
    response rather than the stream. Sync and async."""

    __slots__ = ("_manager", "_proxies")

    def __init__(self, manager: Any) -> None:
        self._manager = manager
        self._proxies: list[Any] = []

    def _enter(self, enter: Callable[[], Any]) -> Any:
        token = _opening.set(self._proxies)
        try:
            return enter()
        finally:
            _opening.reset(token)

    def _exited(self) -> None:
        for proxy in self._proxies:
            _finish_stream(proxy._call, proxy._acc, "closed")

    def __enter__(self) -> Any:
        return self._enter(self._manager.__enter__)

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._manager.__exit__(*exc)
        finally:
            self._exited()

    async def __aenter__(self) -> Any:
        token = _opening.set(self._proxies)
        try:
            return await self._manager.__aenter__()
        finally:
            _opening.reset(token)

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._manager.__aexit__(*exc)
        finally:
            self._exited()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


def stream_manager(scope: Scope) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrapper factory for a resource's `stream(...)` helper that returns a context manager: the
    manager comes back in a `StreamManagerProxy` when the client records."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def stream(self: Any, *args: Any, **kwargs: Any) -> Any:
            manager = original(self, *args, **kwargs)
            if not scope.covers(getattr(self, "_client", None)):
                return manager
            return StreamManagerProxy(manager)

        return stream

    return make


__all__ = [
    "Claim", "claim_model_call", "model_call_claimed", "Scope", "patch_method",
    "unpatch_method", "Patches", "Request", "Prepared", "Described", "is_raw", "Accumulator", "CallSpec", "Call", "traced", "count_attempts",
    "StreamProxy", "AsyncStreamProxy", "StreamManagerProxy", "stream_manager",
]
