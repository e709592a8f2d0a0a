"""The worker's pace: it holds the GIL in short slices, so the app's threads never wait long for it.

The worker shares the interpreter lock with the app. Left to itself it keeps the lock until the
interpreter takes it away, after the switch interval (5 ms): a thread of the app that wants the
lock back meanwhile (LangGraph handing a tool to its pool thread, a run resuming after a model
call) waits that long, several times per run while a pass is under way, and the app's slowest
runs show it. So the worker checks the clock between pieces of work and, past `SLICE_S` of work,
sleeps `REST_S`: a thread of the app waiting for the lock takes it then, and a pass's extra wall
time is a fraction of its work (no CPU is added). Not while the queue is more than half full:
then the app is outpacing the worker, and the worker catches up first.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SLICE_S = 0.0005  # the longest stretch of the worker's work between two chances for the app
REST_S = 0.00005  # long enough for a waiting thread to be woken and take the lock

_clock = time.perf_counter
_sleep = time.sleep


class Pacer:
    """`pace()` between two pieces of the worker's work; `start()` when a pass begins.
    `pressed()`: the app is outpacing the worker (its queue is filling up); the worker then works
    on without resting, since what a full queue drops weighs more than what the app waits."""

    __slots__ = ("_until", "_pressed")

    def __init__(self, pressed: Callable[[], bool]) -> None:
        self._until = 0.0
        self._pressed = pressed

    def start(self) -> None:
        self._until = _clock() + SLICE_S

    def __call__(self) -> None:
        if _clock() >= self._until:
            if not self._pressed():
                _sleep(REST_S)  # releases the lock; a thread waiting for it runs
            self._until = _clock() + SLICE_S
