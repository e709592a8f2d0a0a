"""A started operation, as the public API and the adapters hold it; and the envelope's error object."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tracewire.model.context import SpanContext, current_span

UNSET: Any = object()  # "not given": distinct from None, which is a value
CURRENT: Any = object()  # "parent = whatever span is current in this context"


class Recorder(Protocol):
    """What a span reports to: the client."""

    def finish_span(
        self, span: Span, phase: str, output: Any, attributes: Mapping[str, Any] | None,
        error: dict[str, Any] | None, end_ns: int | None, input: Any = UNSET,
    ) -> None: ...

    @property
    def point(self) -> Callable[..., None]: ...


class Span(SpanContext):
    """A started operation. End it once with `end()` or `fail()`; usable as a (async) context manager."""

    __slots__ = (
        "_client", "parent_span_id", "kind", "name", "framework", "start_ns", "tags", "metadata",
        "_done", "_output", "_attrs", "_tokens",
    )

    def __init__(
        self, client: Recorder | None, trace_id: str, span_id: str, parent_span_id: str | None, kind: str,
        name: str, framework: str, start_ns: int, sampled: bool, session_id: str | None,
        user_id: str | None, tags: tuple[str, ...], metadata: dict[str, Any] | None,
    ) -> None:
        SpanContext.__init__(self, trace_id, span_id, sampled, session_id, user_id)
        self._client = client
        self.parent_span_id = parent_span_id
        self.kind = kind
        self.name = name
        self.framework = framework
        self.start_ns = start_ns
        self.tags = tags
        self.metadata = metadata
        self._done = False
        self._output: Any = UNSET
        self._attrs: dict[str, Any] | None = None
        self._tokens: list[Any] | None = None  # context tokens, only for `with` use

    @property
    def ended(self) -> bool:
        return self._done

    def set_output(self, output: Any) -> None:
        self._output = output

    def set_attribute(self, key: str, value: Any) -> None:
        if self._attrs is None:
            self._attrs = {}
        self._attrs[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self._attrs is None:
            self._attrs = {}
        self._attrs.update(attributes)

    def end(
        self, output: Any = UNSET, *, attributes: Mapping[str, Any] | None = None, end_ns: int | None = None,
        input: Any = UNSET,
    ) -> None:
        """`input`: for frameworks that learn a run's real input only at its end (a streamed
        LangChain chain); it replaces the start's."""
        if self._done:
            return
        self._done = True
        if self._client is not None and self.sampled:
            out = self._output if output is UNSET else output
            self._client.finish_span(self, "end", out, attributes, None, end_ns, input)

    def fail(
        self, error: BaseException | Mapping[str, Any] | str, *, attributes: Mapping[str, Any] | None = None,
        end_ns: int | None = None, output: Any = UNSET, input: Any = UNSET,
    ) -> None:
        if self._done:
            return
        self._done = True
        if self._client is not None and self.sampled:
            out = self._output if output is UNSET else output
            self._client.finish_span(self, "error", out, attributes, error_info(error), end_ns, input)

    def record(self, event_type: str, **kwargs: Any) -> None:
        """A point event (`user.input`, `agent.response`, …) inside this span."""
        if self._client is not None:
            self._client.point(event_type, parent=self, **kwargs)

    # context-manager use makes the span current for the block
    def __enter__(self) -> Span:
        if self._tokens is None:
            self._tokens = []
        self._tokens.append(current_span.set(self))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._tokens:
            token = self._tokens.pop()
            try:
                current_span.reset(token)
            except ValueError:  # exited in another context (e.g. a generator finalised elsewhere)
                current_span.set(None)
        if exc is not None and not isinstance(exc, GeneratorExit):
            self.fail(exc)
        else:
            self.end()

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


def error_info(error: BaseException | Mapping[str, Any] | str) -> dict[str, Any]:
    """The envelope's `error` object: {type, message, stacktrace} (+ code where the error has one)."""
    if isinstance(error, BaseException):
        # One str() of the exception (it may be slow): TracebackException takes it once and
        # formats the stack trace from it.
        message: Any = None
        try:
            te = traceback.TracebackException(type(error), error, error.__traceback__)
            message = getattr(te, "_str", None)
            # Whole: a cut here, before scrubbing, could leave half a secret no shape matches.
            # The pipeline caps it (max_string_length) once scrubbed.
            stack: str | None = "".join(te.format())
        except Exception:  # noqa: BLE001
            stack = None
        info: dict[str, Any] = {
            "type": f"{type(error).__module__}.{type(error).__qualname__}".removeprefix("builtins."),
            "message": message if type(message) is str else _safe_str(error),
            "stacktrace": stack,
        }
        code = getattr(error, "code", None) or getattr(error, "status_code", None)
        if callable(code):
            try:
                code = code()
            except Exception:  # noqa: BLE001
                code = None
        if code is not None:
            info["code"] = code if isinstance(code, (int, str)) else _safe_str(code)
        return info
    if isinstance(error, Mapping):
        return {"type": str(error.get("type", "Error")), "message": str(error.get("message", "")),
                "stacktrace": error.get("stacktrace"), **{k: v for k, v in error.items() if k not in ("type", "message", "stacktrace")}}
    return {"type": "Error", "message": str(error), "stacktrace": None}


def _safe_str(obj: Any) -> str:
    try:
        return str(obj)
    except Exception:  # noqa: BLE001
        return f"<{type(obj).__name__}: str() failed>"
