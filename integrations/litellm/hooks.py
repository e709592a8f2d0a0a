"""`TracewireLogger`: a LiteLLM CustomLogger recording every completion / embedding as a span.

The span starts in `log_pre_api_call`, which LiteLLM runs in the calling thread (or, for
`acompletion`, an executor thread running a copy of the caller's context), so its parent is the
tracewire span current at the call. It ends in the success / failure hook, which may run on a
LiteLLM logging thread or LiteLLM's async logging worker; the two meet by `litellm_call_id`.
The open-call state is module-wide, so two registered loggers (or one registered in several of
LiteLLM's callback lists) still record each call once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from litellm.integrations.custom_logger import CustomLogger  # (guarded by the package __init__)

from tracewire.adapters import (
    CURRENT,
    UNSET,
    Adapter,
    Recent,
    Span,
    SpanRegistry,
    active_client,
    at_exit,
    hook_failed,
)
from tracewire.adapters.sdk import Claim, claim_model_call
from tracewire.integrations.litellm import extract as X

_FRAMEWORK = "litellm"


class CallOwner(Protocol):
    """Another integration that already records this LLM call (CrewAI's event bus): the logger
    hands it LiteLLM's data instead of starting a second span for the same request."""

    def claim(self) -> Any | None:
        """Called in the calling thread; a token if the current call is the owner's, else None."""

    def finish(self, token: Any, attributes: dict[str, Any], output: Any, error: dict[str, Any] | None,
               metadata: dict[str, Any] | None, end_ns: int | None) -> None: ...


# a dict for its order and its one-call, idempotent insert and removal
_owners: dict[CallOwner, None] = {}
_lock = threading.Lock()
_open: SpanRegistry[Span] = SpanRegistry(max_open=10_000, ttl=3600.0)  # litellm_call_id -> Span
_joined: Recent[str, tuple[CallOwner, Any]] = Recent(10_000)  # litellm_call_id -> (owner, token)
_done: Recent[str, str] = Recent(10_000)  # litellm_call_id -> "success" | "failure", recent calls
# litellm_call_id -> its claim on the model SDK call LiteLLM makes next in the pre-call hook's
# context (tracewire.adapters.sdk's rule): used up by that call, released at the end at the latest
_claims: Recent[str, Claim] = Recent(10_000)


def add_call_owner(owner: CallOwner) -> None:
    """Hand `owner` the calls it claims (once, however often added); `LiteLLMAdapter(owner=...)` does this."""
    _owners[owner] = None


def remove_call_owner(owner: CallOwner) -> None:
    _owners.pop(owner, None)


def _claim() -> tuple[CallOwner, Any] | None:
    for owner in list(_owners):
        token = owner.claim()
        if token is not None:
            return owner, token
    return None


class TracewireLogger(CustomLogger):  # type: ignore[misc]
    """`litellm.callbacks.append(TracewireLogger())`: every call becomes an `llm` / `embedding` span."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        at_exit(_drain_at_exit)

    # LiteLLM passes these as keyword arguments: the parameter names must stay exactly these.
    def log_pre_api_call(self, model, messages, kwargs):  # type: ignore[no-untyped-def]
        try:
            _start(model, messages, kwargs)
        except Exception as exc:  # noqa: BLE001 - never break the host
            hook_failed(_FRAMEWORK, "pre_api_call", exc)

    def log_success_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
        _finish_safely(kwargs, response_obj, "success")

    def log_failure_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
        _finish_safely(kwargs, response_obj, "failure")

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
        _finish_safely(kwargs, response_obj, "success")

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
        _finish_safely(kwargs, response_obj, "failure")


def _start(model: Any, messages: Any, kwargs: Mapping[str, Any]) -> None:
    cid = kwargs.get("litellm_call_id")
    if not isinstance(cid, str):
        return
    with _lock:
        if _done.get(cid) == "success" or _open.get(cid) is not None or cid in _joined:
            return  # a second logger instance / callback list: already recorded
        _done.pop(cid, None)  # a retry after a failed attempt is a new attempt
        _claims.remember(cid, claim_model_call(once=True))
        joined = _claim()
        if joined is not None:
            _joined.remember(cid, joined)
            return
        _open.put(cid, _start_span(model, messages, kwargs.get("input"), kwargs.get("call_type"),
                                   kwargs.get("custom_llm_provider"), kwargs.get("optional_params"),
                                   X.to_ns(kwargs.get("start_time")), bool(kwargs.get("stream"))))


def _start_span(model: Any, messages: Any, raw_input: Any, call_type: Any, provider: Any,
                params: Any, start_ns: int | None, stream: bool) -> Span:
    client = active_client()
    kind = X.kind_of(call_type)
    attrs = X.request_attributes(model, provider, params if isinstance(params, Mapping) else None, call_type)
    if stream:
        attrs[X.A.STREAMING] = True
    content: Any = UNSET
    if client.capture_content:
        content = raw_input if kind == "embedding" and raw_input is not None else X.input_messages(messages)
    return client.start_span(kind, str(model or kind), input=content, parent=CURRENT, attributes=attrs,
                             framework=_FRAMEWORK, start_ns=start_ns)


def _finish_safely(kwargs: Any, response_obj: Any, phase: str) -> None:
    try:
        _finish(kwargs, response_obj, phase)
    except Exception as exc:  # noqa: BLE001 - never break the host
        hook_failed(_FRAMEWORK, phase, exc)


def _finish(kwargs: Mapping[str, Any], response_obj: Any, phase: str) -> None:
    cid = kwargs.get("litellm_call_id")
    if not isinstance(cid, str):
        return
    slo = kwargs.get("standard_logging_object")
    slo = slo if isinstance(slo, Mapping) else {}
    with _lock:
        if _done.get(cid) == phase:
            return  # LiteLLM fires both the sync and the async failure hook for some errors
        _done.remember(cid, phase)
        claim = _claims.pop(cid, None)
        if claim is not None:
            claim.release()
        entry = _open.pop(cid)
        joined = _joined.pop(cid, None)
    span = entry[0] if entry else None
    if span is None and joined is None:
        # No pre-call hook (unknown provider, cache hit): the call still becomes one span.
        joined = _claim()
        if joined is None:
            span = _start_span(slo.get("model"), slo.get("messages"), None, slo.get("call_type"),
                               slo.get("custom_llm_provider"), slo.get("model_parameters"),
                               X.to_ns(slo.get("startTime")), bool(slo.get("stream")))
    client = active_client()
    start_ns = span.start_ns if span is not None else None
    if phase == "success":
        attrs, output, meta, end_ns = X.success(slo, response_obj, start_ns, client.capture_content)
        error = None
    else:
        exc = kwargs.get("exception")
        attrs, error, meta, end_ns = X.failure(slo, exc if isinstance(exc, BaseException) else None, start_ns)
        output = None
    if joined is not None:
        owner, token = joined
        owner.finish(token, attrs, output, error, meta, end_ns)
        return
    assert span is not None
    if meta:
        span.metadata = {**(span.metadata or {}), **meta}
    if error is not None:
        span.fail(error, attributes=attrs, end_ns=end_ns)
    else:
        span.end(UNSET if output is None else output, attributes=attrs, end_ns=end_ns)


def _drain_at_exit() -> None:
    """LiteLLM drains its async logging worker in an exit hook that runs after tracewire's: run it
    first, so an `acompletion` finished just before exit is still recorded."""
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

        GLOBAL_LOGGING_WORKER._flush_on_exit()
    except Exception:  # noqa: BLE001  # pragma: no cover - best effort at exit
        pass


async def drain() -> None:
    """Wait until LiteLLM's async logging worker has run every pending success/failure callback
    (call before an event loop that ran `acompletion` ends, e.g. at the end of `main()`)."""
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

    for _ in range(3):  # LiteLLM enqueues from a task it has just created: let it run first
        await asyncio.sleep(0)
    await GLOBAL_LOGGING_WORKER.flush()


# Every list LiteLLM may hold a logger in: it copies `callbacks` into the per-event ones on each call.
_ALL_LISTS = ("callbacks", "input_callback", "success_callback", "failure_callback",
              "_async_success_callback", "_async_failure_callback", "service_callback")


class LiteLLMAdapter(Adapter):
    """A TracewireLogger attached to LiteLLM's callback lists `lists`. `owner`: an adapter that
    already records some of these calls (CrewAI), handed LiteLLM's data for them (`CallOwner`)."""

    framework = _FRAMEWORK

    def __init__(self, lists: Sequence[str] = ("callbacks",), owner: CallOwner | None = None) -> None:
        self.lists = tuple(lists)
        self.owner = owner
        self.logger = TracewireLogger()

    def setup(self) -> None:
        import litellm

        for name in self.lists:
            cbs = getattr(litellm, name, None)
            if isinstance(cbs, list) and self.logger not in cbs:
                cbs.append(self.logger)
        if self.owner is not None:
            add_call_owner(self.owner)

    def teardown(self) -> None:
        # Calls still open stay open: the open-call table is shared with every other logger, and
        # their end hooks still come (or the table's bounds close them).
        import litellm

        for name in _ALL_LISTS:
            cbs = getattr(litellm, name, None)
            if isinstance(cbs, list):
                cbs[:] = [c for c in cbs if c is not self.logger]
        if self.owner is not None:
            remove_call_owner(self.owner)


def instrument() -> None:
    """Record every LiteLLM call (idempotent): a TracewireLogger in `litellm.callbacks`."""
    LiteLLMAdapter.install()


def uninstrument() -> None:
    """Remove the logger `instrument()` added."""
    LiteLLMAdapter.uninstall()
