"""Health and metrics answers that never wait behind ingestion: a store call on a thread of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

HEALTH_TIMEOUT_S = 0.1  # /healthz and /metrics wait this long for the store before answering from the last check
HEALTH_MAX_AGE_S = 1.0  # a store check this recent is answered from directly (a new one starts meanwhile)
HEALTH_STALL_S = 5.0  # a store check running this long means the store is not answering


class Probe:
    """A store call for /healthz and /metrics on a thread of its own, one call in flight at a time: they never
    queue behind ingestion or reads. Every caller starts a fresh call if none is running; an answer under
    `max_age` old is returned at once (no thread hand-off: under load each one costs a wait for the GIL),
    else the caller waits at most `timeout` and then gets the last answer. A call running longer than
    `HEALTH_STALL_S` counts as a failure: a hung database does not look healthy. `invalidate()` says the
    store changed: answers from calls begun before it are not reused."""

    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self._fn = fn
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._future: Future[tuple[bool, Any]] | None = None
        self._started = 0.0
        self.last: tuple[bool, Any] | None = None
        self._last_begun = self._last_at = 0.0
        self._stale_since = -1.0

    def invalidate(self) -> None:
        self._stale_since = time.monotonic()

    def _call(self) -> tuple[bool, Any]:
        begun = time.monotonic()
        try:
            result: tuple[bool, Any] = (True, self._fn())
        except Exception as exc:  # noqa: BLE001 - any failure of the store means "not ready", never a 500
            result = (False, exc)
        self.last, self._last_begun, self._last_at = result, begun, time.monotonic()
        return result

    async def get(self, timeout: float, max_age: float = HEALTH_MAX_AGE_S) -> tuple[bool, Any] | None:
        now = time.monotonic()
        fut = self._future
        if fut is None or fut.done() or self._started < self._stale_since:  # (queued behind one that is too old)
            fut = self._future = self._pool.submit(self._call)
            self._started = now
        elif now - self._started > HEALTH_STALL_S:
            return (False, TimeoutError(f"the store has not answered for {now - self._started:.0f} s"))
        if self.last is not None and self._last_begun >= self._stale_since and now - self._last_at <= max_age:
            return self.last
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), timeout)
        except TimeoutError:
            return self.last

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
