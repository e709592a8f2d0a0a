"""The queue, the worker and the counters: policies, retries, flush, balance."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import tracewire
from tracewire.engine.stats import balanced
from tracewire.sinks.base import BaseSink, Batch, WriteResult
from tracewire.sinks.memory import MemorySink


class Gate(BaseSink):
    """Blocks writes until opened; counts what it saw."""

    name = "gate"

    def __init__(self) -> None:
        self.open = threading.Event()
        self.seen: list[str] = []

    def write(self, batch: Batch) -> WriteResult:
        self.open.wait(10)
        self.seen += [e["name"] for e in batch.decoded()]
        return WriteResult.success()


def test_drop_newest_counts_refused_events() -> None:
    gate = Gate()
    client = tracewire.init(sink=[gate], queue_max_events=10, batch_size=5, flush_interval=0.01)
    tracewire.record("log", name="first")
    assert not client.flush(0.2)  # the worker holds "first" at the gate
    for i in range(30):
        tracewire.record("log", name=f"e{i}")
    s = client.stats()
    assert s["dropped"] == {"queue_full": 20} and s["pending"] == 11 and balanced(s)
    gate.open.set()
    assert client.flush(5)
    assert gate.seen == ["first"] + [f"e{i}" for i in range(10)]
    s = client.stats()
    assert (s["written"], s["dropped"], s["pending"], s["emitted"]) == (11, {"queue_full": 20}, 0, 31)


def test_drop_oldest_keeps_the_newest() -> None:
    gate = Gate()
    client = tracewire.init(sink=[gate], queue_max_events=10, queue_full_policy="drop_oldest", flush_interval=0.01)
    tracewire.record("log", name="first")
    assert not client.flush(0.2)
    for i in range(30):
        tracewire.record("log", name=f"e{i}")
    gate.open.set()
    assert client.flush(5)
    assert gate.seen == ["first"] + [f"e{i}" for i in range(20, 30)]
    assert client.stats()["dropped"] == {"queue_full": 20}


def test_queue_bytes_limit() -> None:
    gate = Gate()
    client = tracewire.init(sink=[gate], queue_max_bytes=20_000, flush_interval=0.01)
    tracewire.record("log", name="first")
    assert not client.flush(0.2)
    for i in range(20):
        tracewire.record("log", name=f"e{i}", input="x" * 3000)
    s = client.stats()
    assert s["queued_bytes"] <= 20_000 and s["dropped"]["queue_full"] >= 14 and balanced(s)
    gate.open.set()
    assert client.flush(5)


class Flaky(BaseSink):
    name = "flaky"

    def __init__(self, failures: int, permanent: bool = False) -> None:
        self.failures = failures
        self.permanent = permanent
        self.mem = MemorySink()
        self.calls = 0

    def write(self, batch: Batch) -> WriteResult:
        self.calls += 1
        if self.calls <= self.failures:
            if self.permanent:
                return WriteResult.permanent("rejected", indexes=[0])
            raise ConnectionError("sink down")
        return self.mem.write(batch)


def test_retryable_failures_are_retried_then_written() -> None:
    sink = Flaky(failures=2)
    client = tracewire.init(sink=[sink], flush_interval=0.01)
    for i in range(5):
        tracewire.record("log", name=f"e{i}")
    assert client.flush(10)
    s = client.stats()
    assert s["written"] == 5 and s["retries"] == {"flaky": 2} and s["internal_errors"] == {"sink:flaky": 2}
    assert [e["name"] for e in sink.mem.events] == [f"e{i}" for i in range(5)]


def test_permanent_failure_of_one_event_is_counted_the_rest_written() -> None:
    sink = Flaky(failures=1, permanent=True)
    client = tracewire.init(sink=[sink], flush_interval=0.01, batch_size=100)
    for i in range(5):
        tracewire.record("log", name=f"e{i}")
    assert client.flush(10) is False  # one event was not written: flush says so
    s = client.stats()
    assert s["written"] == 4 and s["dropped"] == {"flaky:rejected": 1} and balanced(s)
    tracewire.record("log", name="after")
    assert client.flush(10) is True  # nothing lost since


def test_two_sinks_get_the_same_events() -> None:
    a, b = MemorySink(), MemorySink()
    client = tracewire.init(sink=[a, b])
    with tracewire.span("agent", "x"):
        pass
    assert client.flush(5)
    assert a.events == b.events and len(a.events) == 2


def test_flush_true_only_when_everything_before_is_written() -> None:
    gate = Gate()
    client = tracewire.init(sink=[gate], flush_interval=0.01)
    tracewire.record("log", name="a")
    assert client.flush(0.1) is False
    gate.open.set()
    assert client.flush(5) is True and gate.seen == ["a"]


def test_shutdown_then_recording_is_a_noop() -> None:
    sink = MemorySink()
    tracewire.init(sink=[sink])
    tracewire.record("log", name="before")
    assert tracewire.shutdown()
    tracewire.record("log", name="after")
    with tracewire.span("agent", "after"):
        pass
    assert [e["name"] for e in sink.events] == ["before"]
    assert tracewire.stats()["emitted"] == 0


def test_a_stalled_worker_makes_record_wait_for_its_commit(tmp_path: Path) -> None:
    """The kill -9 bound holds in time: once the worker's commit is half an interval overdue (here:
    deferred work that sleeps, as a descheduled thread or a stalled disk would), record() waits for
    the commit instead of returning events that a kill would take."""
    client = tracewire.init(sink="http", endpoint="http://127.0.0.1:9", spool_dir=str(tmp_path / "spool"),
                            commit_interval=0.02)
    tracewire.record("log", name="before")
    assert _wait(lambda: client.stats()["delivery"]["http"]["committed"] == 1)
    stall = threading.Event()
    client.defer(lambda: stall.wait(0.4))  # the worker is busy for 0.4 s
    client._queue.wake.set()
    waits: list[float] = []
    returned: list[float] = []
    for i in range(40):
        t = time.monotonic()
        tracewire.record("log", name=f"e{i}")
        now = time.monotonic()
        waits.append(now - t)
        returned.append(now)
        committed = client.stats()["delivery"]["http"]["committed"]
        # what a kill could take now is only what returned within the bound (30 ms, + 50 ms slack
        # for this thread's own scheduling); the stall alone would leave 400 ms of events
        old = sum(r < now - 0.08 for r in returned)
        assert committed >= 1 + old, (i, committed, old)
        time.sleep(0.005)
    assert max(waits) >= 0.2, waits  # a record() waited out the stall
    assert sum(w >= 0.2 for w in waits) == 1, waits  # once: the worker then caught up
    tracewire.shutdown(0.5)  # no collector here: what is committed stays in the spool


def test_without_a_spool_record_never_waits_for_the_worker() -> None:
    gate = Gate()
    client = tracewire.init(sink=[gate], flush_interval=0.01)
    tracewire.record("log", name="first")  # the worker holds it at the gate
    time.sleep(0.1)
    t = time.monotonic()
    for i in range(20):
        tracewire.record("log", name=f"e{i}")
    assert time.monotonic() - t < 0.1
    gate.open.set()
    assert client.flush(5)


def _wait(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return False
