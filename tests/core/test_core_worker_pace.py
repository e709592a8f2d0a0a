"""The worker holds the GIL in short slices, and the cheap scrubbing check still catches every
key word a user adds, whatever anchor it shares its start with."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

import tracewire
from tracewire.engine.stats import balanced
from tracewire.pipeline.redact import REDACTED, Redactor
from tracewire.sinks.memory import MemorySink


@pytest.fixture
def long_switch_interval() -> Iterator[None]:
    """The interpreter's forced hand-over of the GIL made rare: a thread waiting for it gets it
    only when the holder lets it go itself, which is what is measured."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(2.0)
    yield
    sys.setswitchinterval(before)


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_an_app_thread_waits_at_most_a_slice_while_the_worker_runs_a_long_backlog(
    long_switch_interval: None,
) -> None:
    sink = MemorySink()
    c = tracewire.init(sink=[sink], flush_interval=60)
    for _ in range(300):  # 0.3 s of pure Python on the worker: no I/O in it that would let go of the GIL
        assert c.defer(_busy, 0.001)
    late: list[float] = []
    stop = threading.Event()

    def app() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            time.sleep(0.001)
            late.append(time.perf_counter() - t0 - 0.001)

    probe = threading.Thread(target=app)
    probe.start()
    started = time.perf_counter()
    try:
        assert c.flush(30)
    finally:
        stop.set()
        probe.join()
    took = time.perf_counter() - started
    assert took >= 0.3  # the backlog really ran while the app thread wanted the GIL
    assert len(late) > 20
    # Without the slices the app thread waits for the whole backlog (the switch interval is 2 s).
    assert max(late) < 0.15, (max(late), took)
    assert balanced(c.stats())


def test_the_cheap_check_catches_added_key_words_that_start_like_an_anchor() -> None:
    # `za` anchors the Google key shape (`aiza`), `uth` the word `auth`, `ken` the word `token`:
    # a key word added that starts the same way must still be found by the fast path.
    for word in ("zabbix", "uthash", "kenobi"):
        r = Redactor([word])
        text = f'{{"{word}":"hello"}}'
        assert r.may_need_scrubbing(text)
        assert r.scrub_text(f"{word}=hello") == f"{word}={REDACTED}"


def test_an_added_key_word_is_scrubbed_on_the_way_to_the_sink() -> None:
    sink = MemorySink()
    c = tracewire.init(sink=[sink], redact_keys=["kenobi"])
    tracewire.record("log", name="probe", input={"kenobi": "hello there", "plain": "kept"})
    assert c.flush(10)
    (event,) = sink.events
    assert event["input"] == {"kenobi": REDACTED, "plain": "kept"}
