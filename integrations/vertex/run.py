"""One recorded call: the agent span of a conversational call, its retrieval steps, its answer,
and what a stream has delivered so far."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from google.api_core import exceptions as api_errors  # (guarded by the package __init__)

from tracewire.adapters import (
    UNSET,
    Client,
    Span,
    active_client,
    current_session,
    current_span,
    error_info,
    hook_failed,
)
from tracewire.integrations.vertex import extract as T
from tracewire.model import attributes as A
from tracewire.model.genai import ttft_ms

FRAMEWORK = "vertex"
_TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED"})


class Options:
    """What `wrap()` was given, for every call of the wrapped client."""

    __slots__ = ("session_id", "user_id", "tags", "metadata")

    def __init__(self, session_id: str | None, user_id: str | None, tags: Sequence[str] | None,
                 metadata: Mapping[str, Any] | None) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.tags = list(tags) if tags else None
        self.metadata = dict(metadata) if metadata else None



class Run:
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
    def start(cls, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], opts: Options) -> Run | None:
        try:
            client = active_client()
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
                attributes=attrs, framework=FRAMEWORK, tags=opts.tags, metadata=opts.metadata,
                session_id=opts.session_id or (None if given else resource_session),
                user_id=opts.user_id or (None if user_given else info.user),
            )
            if info.query:
                client.point("user.input", input=info.query if capture else UNSET, parent=span, framework=FRAMEWORK)
            return cls(client, span, info, session_from_response=not given and resource_session is None)
        except Exception as exc:  # noqa: BLE001 - never break the host
            hook_failed(FRAMEWORK, "start", exc)
            return None

    # ---------------------------------------------------------- outcomes
    def fail(self, exc: BaseException) -> None:
        try:
            if self.span.ended:
                return
            if isinstance(exc, api_errors.GoogleAPICallError):
                info = error_info(exc)
                status = grpc_status(exc)
                if status:
                    info["grpc_code"] = status
                attrs = {A.ERROR_CODE: exc.code} if exc.code is not None else None
                self.span.fail(info, attributes=attrs, output=self._partial_output())
            else:
                self.span.fail(exc, output=self._partial_output())
        except Exception as err:  # noqa: BLE001
            hook_failed(FRAMEWORK, "fail", err)

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
            hook_failed(FRAMEWORK, "finish", exc)
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
            hook_failed(FRAMEWORK, "observe", exc)
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
            hook_failed(FRAMEWORK, "stream_done", exc)
            self.span.end()

    def stream_raised(self, exc: BaseException) -> None:
        """The stream's iteration raised: its end (Stop[Async]Iteration), else a failure."""
        if isinstance(exc, (StopIteration, StopAsyncIteration)):
            self.stream_done()
        else:
            self.fail(exc)

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
                framework=FRAMEWORK, start_ns=now,
                attributes={A.STEP: number, T.STEP_STATE: T.enum_name(step, "state")},
            )
            count = len(docs) if docs is not None else len(action.observation.search_results)
            child.end(docs if docs is not None else UNSET, attributes={A.DOCUMENT_COUNT: count}, end_ns=now)
        attrs = T.answer_attributes(fields)
        client.point("agent.response", output=T.answer_output(text, fields) if capture else UNSET,
                     attributes=attrs, parent=span, time_ns=now, framework=FRAMEWORK)
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
                parent=span, framework=FRAMEWORK, start_ns=now,
            )
            child.end(docs if docs is not None else UNSET, attributes={A.DOCUMENT_COUNT: len(results)}, end_ns=now)
        attrs = T.converse_attributes(resp)
        text = T.converse_text(resp.reply)
        client.point("agent.response", output=T.converse_output(resp) if capture else UNSET,
                     attributes=attrs, parent=span, time_ns=now, framework=FRAMEWORK)
        span.end(text if capture else UNSET, attributes=attrs)

    def _adopt_session(self, session: str | None) -> None:
        """A session the service created (`…/sessions/-`) becomes the recorded session."""
        if session and self.session_from_response and not T.is_placeholder(session):
            self.span.session_id = session
            self.span.set_attribute(A.CONVERSATION_ID, session)


def grpc_status(exc: Any) -> str | None:
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

