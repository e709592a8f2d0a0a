"""`Client.defer`: an adapter's span building runs on the worker, in order; `flush()` waits for it
and for what it records; refused work is counted; content is fixed when the hook fires."""

from __future__ import annotations

import threading
from typing import Any

import tracewire
from tracewire.engine.client import UNSET, Client, thaw
from tracewire.engine.stats import balanced
from tracewire.sinks.memory import MemorySink


def _client(**init: Any) -> tuple[Client, MemorySink]:
    sink = MemorySink()
    # a long interval: nothing runs until flush() asks
    return tracewire.init(sink=[sink], flush_interval=60, **init), sink


def test_deferred_work_runs_on_the_worker_in_order_and_flush_waits_for_its_events() -> None:
    c, sink = _client()
    ran: list[tuple[int, int]] = []

    def open_and_close(i: int, input: Any) -> None:
        ran.append((i, threading.get_ident()))
        span = c.start_span("tool", f"t{i}", input=thaw(input), parent=None, start_ns=1_000 + i)
        span.end({"i": i}, end_ns=2_000 + i)

    for i in range(50):
        assert c.defer(open_and_close, i, c.frozen({"n": i}))
    assert ran == []  # nothing ran on the caller's thread
    assert c.flush(10)
    assert [i for i, _ in ran] == list(range(50))
    assert {t for _, t in ran} == {c._queue.worker_ident} and c._queue.worker_ident != threading.get_ident()
    starts = [e for e in sink.events if e["phase"] == "start"]
    assert [(e["name"], e["input"], e["time"]) for e in starts] == [(f"t{i}", {"n": i}, 1_000 + i) for i in range(50)]
    assert len(sink.events) == 100
    s = c.stats()
    assert s["emitted"] == s["written"] == 100 and balanced(s)


def test_work_refused_when_the_queue_is_full_is_counted_and_the_rest_still_runs() -> None:
    c, sink = _client(queue_max_events=3)
    made = []

    def point(i: int) -> None:
        made.append(i)
        c.point("log", name=f"p{i}", parent=None)

    accepted = [c.defer(point, i) for i in range(5)]
    assert accepted == [True, True, True, False, False]
    assert c.stats()["dropped"] == {"queue_full": 2}
    assert c.flush(10)  # the loss happened before the call: flush() reports only losses while it waits
    assert made == [0, 1, 2] and sorted(e["name"] for e in sink.events) == ["p0", "p1", "p2"]
    s = c.stats()
    assert (s["emitted"], s["written"], s["dropped"]) == (5, 3, {"queue_full": 2}) and balanced(s)


def test_deferred_work_counts_its_bytes_against_the_queue_limit_until_it_runs() -> None:
    from tracewire.engine.client import DEFER_UNIT

    c, sink = _client(queue_max_bytes=10 * DEFER_UNIT)
    made: list[int] = []
    small = [c.defer(made.append, i) for i in range(4)]  # counted DEFER_UNIT each
    big = c.defer(made.append, 100, size=5 * DEFER_UNIT)  # four units over the flat count
    assert c.stats()["queued_bytes"] == 4 * DEFER_UNIT + 5 * DEFER_UNIT
    too_big = c.defer(made.append, 200, size=2 * DEFER_UNIT)  # 9 + 2 units > 10: refused
    forced = c.defer(made.append, 300, size=2 * DEFER_UNIT, force=True)  # an end whose start was admitted
    assert small == [True] * 4 and big and not too_big and forced
    assert c.flush(10)
    assert made == [0, 1, 2, 3, 100, 300]
    s = c.stats()
    assert s["queued_bytes"] == 0 and s["dropped"] == {"queue_full": 1} and balanced(s)


def test_events_made_by_deferred_work_follow_the_queue_full_policy() -> None:
    c, sink = _client(queue_max_events=3, queue_full_policy="drop_oldest")

    def five() -> None:
        for i in range(5):
            c.point("log", name=f"p{i}", parent=None)

    assert c.defer(five)
    assert not c.flush(10)  # events were lost while it waited: it says so
    assert sorted(e["name"] for e in sink.events) == ["p2", "p3", "p4"]  # the oldest made way
    s = c.stats()
    assert (s["emitted"], s["written"], s["dropped"]) == (5, 3, {"queue_full": 2}) and balanced(s)


def test_a_failing_deferred_call_is_counted_and_does_not_stop_the_others() -> None:
    c, sink = _client()

    def boom() -> None:
        raise RuntimeError("adapter bug")

    c.defer(boom)
    c.defer(c.point, "log")
    assert c.flush(10)
    assert [e["name"] for e in sink.events] == ["log"]
    assert list(c.stats()["internal_errors"]) == ["deferred:test_a_failing_deferred_call_is_counted_and_does_not_stop_the_others.<locals>.boom"]


def test_frozen_content_is_fixed_when_frozen_even_for_objects_json_cannot_take() -> None:
    c, sink = _client()

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    plain = {"messages": [{"role": "user", "content": "hi"}]}
    odd = {"obj": Opaque(), "items": [1, 2]}
    fp, fo = c.frozen(plain), c.frozen(odd)
    assert type(fp) is str and type(fo) is tuple
    assert c.frozen(UNSET) is UNSET and c.frozen(None) is None
    plain["messages"].append({"role": "assistant", "content": "mutated later"})
    odd["items"].append(3)
    c.defer(lambda: c.point("log", name="a", input=thaw(fp), output=thaw(fo), parent=None))
    assert c.flush(10)
    ev = sink.events[0]
    assert ev["input"] == {"messages": [{"role": "user", "content": "hi"}]}
    assert ev["output"]["items"] == [1, 2] and "opaque" in ev["output"]["obj"]


def test_secrets_in_deferred_content_are_scrubbed_like_any_other() -> None:
    c, sink = _client()
    frozen = c.frozen({"api_key": "sk-live-0123456789abcdefghij", "q": "hello"})
    c.defer(lambda: c.point("log", name="s", input=thaw(frozen), parent=None))
    assert c.flush(10)
    line = str(sink.events[0])
    assert "sk-live-0123456789abcdefghij" not in line and "hello" in line


def test_held_content_keeps_its_containers_as_they_were_and_its_objects_as_they_are() -> None:
    from collections import OrderedDict

    from tracewire.model.codec import Snapshot
    from tracewire.model.content import HELD_BYTES, held_size, hold

    obj = object()
    value = {"x": [1, {"y": [2]}], "t": (1, [3]), "o": OrderedDict(k=[1]), "obj": obj}
    held = hold(value)
    value["x"][1]["y"].append(9)
    value["t"][1].append(9)
    value["o"]["k"].append(9)
    value["x"].append(5)
    value["new"] = 1
    assert held == {"x": [1, {"y": [2]}], "t": (1, [3]), "o": {"k": [1]}, "obj": obj}
    assert held["obj"] is obj and type(held["o"]) is dict
    long = list(range(100))
    snap = hold(long)
    long.append(100)
    assert type(snap) is Snapshot and snap.text == "[" + ",".join(map(str, range(100))) + "]"
    assert hold([obj] * 40) == [obj] * 40  # not JSON: copied instead
    assert (held_size("abc"), held_size(snap), held_size(held), held_size(None)) == (3, len(snap.text), HELD_BYTES, 0)


def test_work_deferred_from_many_threads_while_the_worker_takes_it_runs_exactly_once() -> None:
    # callers append without the lock while the worker pops from the same deque
    sink = MemorySink()
    c = tracewire.init(sink=[sink], flush_interval=0.001, batch_size=7)
    ran: list[tuple[int, int]] = []

    def caller(t: int) -> None:
        for i in range(2_000):
            assert c.defer(ran.append, (t, i))

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert c.flush(30)
    assert len(ran) == 8_000 and len(set(ran)) == 8_000
    for t in range(4):  # each caller's work ran in the order it was deferred
        assert [i for tt, i in ran if tt == t] == list(range(2_000))
    s = c.stats()
    assert s["queued_bytes"] == 0 and s["dropped"] == {} and balanced(s)
