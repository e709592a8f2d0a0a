"""The library's stream objects, handed back as stand-ins that record what the caller reads."""

from __future__ import annotations

from typing import Any

from tracewire.integrations.vertex.run import Run


class _Proxy:
    """Stands in for the library's stream object: everything but iteration is the target's."""

    __slots__ = ("_tw_target", "_tw_run", "_tw_iter")

    def __init__(self, target: Any, run: Run) -> None:
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

    def _tw_started(self, it: Any) -> Any:
        object.__setattr__(self, "_tw_iter", it)
        return it

    def __del__(self) -> None:
        # dropped before the end (the caller broke out): record what arrived, marked unfinished
        try:
            self._tw_run.stream_done(unfinished=True)
        except Exception:  # noqa: BLE001  # pragma: no cover
            pass


class StreamProxy(_Proxy):
    """The library's sync stream, observed while the caller iterates it."""

    __slots__ = ()

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:  # the sync twin of AsyncStreamProxy.__anext__
        it = self._tw_iter
        if it is None:
            it = self._tw_started(iter(self._tw_target))
        try:
            message = next(it)
        except BaseException as exc:
            self._tw_run.stream_raised(exc)
            raise
        self._tw_run.observe(message)
        return message


class AsyncStreamProxy(_Proxy):
    """The library's async stream (a grpc.aio call), observed while the caller reads it."""

    __slots__ = ()

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:  # the async twin of StreamProxy.__next__
        it = self._tw_iter
        if it is None:
            it = self._tw_started(self._tw_target.__aiter__())
        try:
            message = await it.__anext__()
        except BaseException as exc:
            self._tw_run.stream_raised(exc)
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


def _eof() -> Any:
    from grpc import aio

    return aio.EOF
