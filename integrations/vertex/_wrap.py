"""`wrap(client)`: a stand-in for a ConversationalSearchService client that records each
conversational call, and otherwise is the client.

The stand-in forwards every attribute to the wrapped client and reports the client's class (so
`isinstance` holds); only `converse_conversation`, `answer_query`, `stream_answer_query` and
`get_answer` are instrumented, and they return exactly what the client returned (streams are
handed back as stand-ins of the library's stream objects, yielding the same messages).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import tracewire
from tracewire.adapters.base import require
from tracewire.engine.client import UNSET, Client, Span, error_info
from tracewire.integrations.vertex import _translate as T
from tracewire.model import attributes as A
from tracewire.model.context import current_session, current_span
from tracewire.model.genai import ttft_ms

C = TypeVar("C")
_FRAMEWORK = "vertex"
INSTRUMENTED = ("converse_conversation", "answer_query", "stream_answer_query", "get_answer")
_TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED"})


class _Options:
    __slots__ = ("session_id", "user_id", "tags", "metadata")

    def __init__(self, session_id: str | None, user_id: str | None, tags: Sequence[str] | None,
                 metadata: Mapping[str, Any] | None) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.tags = list(tags) if tags else None
        self.metadata = dict(metadata) if metadata else None


def wrap(client: C, *, session_id: str | None = None, user_id: str | None = None,
         tags: Sequence[str] | None = None, metadata: Mapping[str, Any] | None = None) -> C:
    """Record `client`'s conversational calls (a v1/v1beta/v1alpha ConversationalSearchServiceClient
    or ...AsyncClient). Use the returned client exactly as the original.

    `session_id` / `user_id` override the conversation/session resource and the request's
    `user_pseudo_id` as the recorded session and user; `tags` and `metadata` go on every call's span.
    """
    require("google.api_core.exceptions", "vertex")
    if isinstance(client, _ClientProxy):  # re-wrapping replaces the options, never stacks
        client = client._tw_target
    if not any(hasattr(client, m) for m in INSTRUMENTED):
        raise TypeError(f"wrap() takes a ConversationalSearchService client, got {type(client).__name__}")
    opts = _Options(session_id, user_id, tags, metadata)
    proxy_type = _AsyncClientProxy if hasattr(type(client), "__aenter__") else _SyncClientProxy
    return proxy_type(client, opts)  # type: ignore[return-value]


class _ClientProxy:
    __slots__ = ("_tw_target", "_tw_opts", "_tw_methods", "__weakref__")
    _tw_async = False

    def __init__(self, target: Any, opts: _Options) -> None:
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
def _sync_method(method: str, original: Any, opts: _Options) -> Any:
    streams = method == "stream_answer_query"

    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        run = _Run.start(method, args, kwargs, opts)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            if run is not None:
                run.fail(exc)
            raise
        if run is None:
            return result
        if streams:
            return _StreamProxy(result, run)
        run.finish(result)
        return result

    return call


def _async_method(method: str, original: Any, opts: _Options) -> Any:
    @functools.wraps(original)
    async def call(*args: Any, **kwargs: Any) -> Any:
        run = _Run.start(method, args, kwargs, opts)
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


def _async_stream_method(original: Any, opts: _Options) -> Any:
    # The library's method is a plain function returning an awaitable that resolves to the
    # stream; keep that shape (and its synchronous argument errors).
    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        pending = original(*args, **kwargs)
        return _open_stream(pending, args, kwargs, opts)

    return call


async def _open_stream(pending: Any, args: tuple[Any, ...], kwargs: dict[str, Any], opts: _Options) -> Any:
    run = _Run.start("stream_answer_query", args, kwargs, opts)
    try:
        stream = await pending
    except BaseException as exc:
        if run is not None:
            run.fail(exc)
        raise
    return stream if run is None else _AsyncStreamProxy(stream, run)


# ------------------------------------------------------------------ one recorded call
class _Run:
    """The agent span of one call, and what a stream has delivered so far."""

    __slots__ = ("client", "span", "method", "info", "session_from_response", "parts", "first_ns", "latest",
                 "capture")

    def __init__(self, client: Client, span: Span, info: T.RequestInfo, session_from_response: bool) -> None:
        self.client = client
        self.span = span
        self.method = info.method
        self.info = info
        self.session_from_response = session_from_response
        self.capture = client.capture_content
        self.parts: list[str] = []
        self.first_ns: int | None = None
        self.latest: dict[str, Any] = {}

    @classmethod
    def start(cls, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], opts: _Options) -> _Run | None:
        try:
            client = tracewire.get_client()
        except Exception:  # noqa: BLE001 - a bad environment must not break the call
            return None
        if client.disabled:
            return None
        try:
            request = args[0] if args else kwargs.get("request")
            info = T.RequestInfo(method, request, kwargs)
            # what the user set (wrap() arguments, then an enclosing session or span) wins over
            # the resource names and user_pseudo_id of the request
            sess, outer = current_session.get(), current_span.get()
            given = opts.session_id is not None or bool(
                (sess and sess.session_id) or (outer and outer.session_id))
            user_given = opts.user_id is not None or bool((sess and sess.user_id) or (outer and outer.user_id))
            resource_session = None if T.is_placeholder(info.session) else info.session
            attrs: dict[str, Any] = {
                A.OPERATION_NAME: "invoke_agent", A.PROVIDER_NAME: T.PROVIDER, A.AGENT_NAME: info.agent_name,
                T.METHOD: method,
            }
            if info.agent_id:
                attrs[A.AGENT_ID] = info.agent_id
            if resource_session:
                attrs[A.CONVERSATION_ID] = resource_session
            if info.model:
                attrs[A.REQUEST_MODEL] = info.model
            if method == "stream_answer_query":
                attrs[A.STREAMING] = True
            capture = client.capture_content
            span = client.start_span(
                "agent", info.agent_name, input=info.query if capture and info.query else UNSET,
                attributes=attrs, framework=_FRAMEWORK, tags=opts.tags, metadata=opts.metadata,
                session_id=opts.session_id or (None if given else resource_session),
                user_id=opts.user_id or (None if user_given else info.user),
            )
            if info.query:
                client.point("user.input", input=info.query if capture else UNSET, parent=span, framework=_FRAMEWORK)
            return cls(client, span, info, session_from_response=not given and resource_session is None)
        except Exception as exc:  # noqa: BLE001 - never break the host
            client.report_error("vertex:start", exc)
            return None

    # ---------------------------------------------------------- outcomes
    def fail(self, exc: BaseException) -> None:
        try:
            if self.span.ended:
                return
            api_errors = require("google.api_core.exceptions", "vertex")
            if isinstance(exc, api_errors.GoogleAPICallError):
                info = error_info(exc)
                status = _grpc_status(exc)
                if status:
                    info["grpc_code"] = status
                attrs = {A.ERROR_CODE: exc.code} if exc.code is not None else None
                self.span.fail(info, attributes=attrs, output=self._partial_output())
            else:
                self.span.fail(exc, output=self._partial_output())
        except Exception as err:  # noqa: BLE001
            self.client.report_error("vertex:fail", err)

    def finish(self, result: Any) -> None:
        try:
            if self.method == "converse_conversation":
                self._finish_converse(result)
            elif self.method == "get_answer":
                answer = T.raw(result)
                self._finish_answer(answer.answer_text, T.answer_fields(answer), None)
            else:
                pb = T.raw(result)
                self._finish_answer(pb.answer.answer_text, T.answer_fields(pb.answer), pb.session.name)
        except Exception as exc:  # noqa: BLE001
            self.client.report_error("vertex:finish", exc)
            self.span.end()

    # ---------------------------------------------------------- streams
    def observe(self, message: Any) -> bool:
        """Take one streamed message; True once the answer reached a terminal state."""
        try:
            pb = T.raw(message)
            answer = pb.answer
            text = answer.answer_text
            fields = T.answer_fields(answer)
            if pb.session.name:
                fields["session"] = pb.session.name
            self.latest.update(fields)
            terminal = fields.get("state") in _TERMINAL_STATES
            if text:
                if self.first_ns is None:
                    self.first_ns = time.time_ns()
                # streamed messages carry the next part; a terminal message repeating the whole
                # answer replaces the parts instead of doubling them
                if terminal and self.parts and text.startswith("".join(self.parts)):
                    self.parts = [text]
                else:
                    self.parts.append(text)
            if terminal:
                self.stream_done()
            return terminal
        except Exception as exc:  # noqa: BLE001
            self.client.report_error("vertex:observe", exc)
            return False

    def stream_done(self, unfinished: bool = False) -> None:
        if self.span.ended:
            return
        try:
            extra = ttft_ms(self.span.start_ns, self.first_ns)
            if unfinished:
                extra[A.UNFINISHED] = True
            latest = self.latest
            self._finish_answer("".join(self.parts), latest, latest.get("session"), extra)
        except Exception as exc:  # noqa: BLE001
            self.client.report_error("vertex:stream_done", exc)
            self.span.end()

    def _partial_output(self) -> Any:
        return "".join(self.parts) if self.parts and self.capture else UNSET

    # ---------------------------------------------------------- recording
    def _finish_answer(self, text: str | None, fields: Mapping[str, Any], session: str | None,
                       extra: Mapping[str, Any] | None = None) -> None:
        now = time.time_ns()
        self._adopt_session(session)
        client, span, capture = self.client, self.span, self.capture
        # the service reports its steps with the answer, untimed: they are placed at its arrival
        for number, step, action in T.step_searches(fields.get("steps")):
            docs = T.observation_documents(action) if capture else None
            child = client.start_span(
                "retriever", "search", input=T.search_input(step, action) if capture else UNSET, parent=span,
                framework=_FRAMEWORK, start_ns=now,
                attributes={A.STEP: number, T.STEP_STATE: T.enum_name(step, "state")},
            )
            count = len(docs) if docs is not None else len(action.observation.search_results)
            child.end(docs if docs is not None else UNSET, attributes={A.DOCUMENT_COUNT: count}, end_ns=now)
        attrs = T.answer_attributes(fields)
        client.point("agent.response", output=T.answer_output(text, fields) if capture else UNSET,
                     attributes=attrs, parent=span, time_ns=now, framework=_FRAMEWORK)
        if fields.get("name"):
            attrs[A.RESPONSE_ID] = fields["name"]
        if extra:
            attrs.update(extra)
        span.end(text if capture else UNSET, attributes=attrs)

    def _finish_converse(self, result: Any) -> None:
        now = time.time_ns()
        resp = T.raw(result)
        self._adopt_session(resp.conversation.name)
        client, span, capture = self.client, self.span, self.capture
        results = resp.search_results
        if results:
            docs = T.search_result_documents(results) if capture else None
            child = client.start_span(
                "retriever", "search", input={"query": self.info.query} if capture and self.info.query else UNSET,
                parent=span, framework=_FRAMEWORK, start_ns=now,
            )
            child.end(docs if docs is not None else UNSET, attributes={A.DOCUMENT_COUNT: len(results)}, end_ns=now)
        attrs = T.converse_attributes(resp)
        text = T.converse_text(resp.reply)
        client.point("agent.response", output=T.converse_output(resp) if capture else UNSET,
                     attributes=attrs, parent=span, time_ns=now, framework=_FRAMEWORK)
        span.end(text if capture else UNSET, attributes=attrs)

    def _adopt_session(self, session: str | None) -> None:
        """A session the service created (`…/sessions/-`) becomes the recorded session."""
        if session and self.session_from_response and not T.is_placeholder(session):
            self.span.session_id = session
            self.span.set_attribute(A.CONVERSATION_ID, session)


def _grpc_status(exc: Any) -> str | None:
    """The gRPC status name: from the exception, else from a REST error body's `status`."""
    code = getattr(exc, "grpc_status_code", None)
    if code is not None:
        return str(getattr(code, "name", code))
    response = getattr(exc, "response", None)
    if response is None or not hasattr(response, "json"):
        return None
    try:
        payload = response.json()
    except Exception:  # noqa: BLE001 - not a JSON body
        return None
    status = payload.get("error", {}).get("status") if isinstance(payload, dict) else None
    return status if isinstance(status, str) else None


# ------------------------------------------------------------------ streams handed back to the caller
class _Proxy:
    """Stands in for the library's stream object: everything but iteration is the target's."""

    __slots__ = ("_tw_target", "_tw_run", "_tw_iter")

    def __init__(self, target: Any, run: _Run) -> None:
        object.__setattr__(self, "_tw_target", target)
        object.__setattr__(self, "_tw_run", run)
        object.__setattr__(self, "_tw_iter", None)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self._tw_target)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_tw_"):
            raise AttributeError(name)
        return getattr(self._tw_target, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._tw_target, name, value)

    def __repr__(self) -> str:
        return repr(self._tw_target)


class _StreamProxy(_Proxy):
    """The library's sync stream, observed while the caller iterates it."""

    __slots__ = ()

    def __iter__(self) -> _StreamProxy:
        return self

    def __next__(self) -> Any:
        it = self._tw_iter
        if it is None:
            it = iter(self._tw_target)
            object.__setattr__(self, "_tw_iter", it)
        try:
            message = next(it)
        except StopIteration:
            self._tw_run.stream_done()
            raise
        except BaseException as exc:
            self._tw_run.fail(exc)
            raise
        self._tw_run.observe(message)
        return message

    def __del__(self) -> None:
        # dropped before the end (the caller broke out): record what arrived, marked unfinished
        try:
            self._tw_run.stream_done(unfinished=True)
        except Exception:  # noqa: BLE001  # pragma: no cover
            pass


class _AsyncStreamProxy(_Proxy):
    """The library's async stream (a grpc.aio call), observed while the caller reads it."""

    __slots__ = ()

    def __aiter__(self) -> _AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        it = self._tw_iter
        if it is None:
            it = self._tw_target.__aiter__()
            object.__setattr__(self, "_tw_iter", it)
        try:
            message = await it.__anext__()
        except StopAsyncIteration:
            self._tw_run.stream_done()
            raise
        except BaseException as exc:
            self._tw_run.fail(exc)
            raise
        self._tw_run.observe(message)
        return message

    async def read(self) -> Any:
        """`await stream.read()` reads the same messages; EOF ends the span."""
        try:
            message = await self._tw_target.read()
        except BaseException as exc:
            self._tw_run.fail(exc)
            raise
        if message is _eof():
            self._tw_run.stream_done()
        else:
            self._tw_run.observe(message)
        return message

    def __del__(self) -> None:
        try:
            self._tw_run.stream_done(unfinished=True)
        except Exception:  # noqa: BLE001  # pragma: no cover
            pass


def _eof() -> Any:
    from grpc import aio

    return aio.EOF
