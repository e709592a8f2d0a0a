"""`SpanRegistry`: the adapters' open runs, bounded by count and age, with C-level lookups."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tracewire.adapters.runs import ABANDONED, SpanRegistry


class Run:
    def __init__(self, name: str) -> None:
        self.name = name
        self.failed: Any = None

    def fail(self, error: Any) -> None:
        self.failed = error


def test_put_get_take_and_state() -> None:
    reg: SpanRegistry[Run] = SpanRegistry()
    a, b = Run("a"), Run("b")
    reg.put(1, a)
    reg.put(2, b, state={"buf": []})
    assert reg.get(1) is a and reg.get(3) is None and reg.state(2) == {"buf": []} and len(reg) == 2
    assert reg.take(1, None) is a and reg.take(1, None) is None
    assert reg.pop(2) == (b, {"buf": []}) and reg.pop(2) is None
    assert len(reg) == 0 and a.failed is None and b.failed is None


def test_over_max_open_the_oldest_is_closed_as_unfinished() -> None:
    reg: SpanRegistry[Run] = SpanRegistry(max_open=3)
    runs = [Run(str(i)) for i in range(5)]
    for i, r in enumerate(runs):
        reg.put(i, r)
    assert [r.failed for r in runs] == [ABANDONED, ABANDONED, None, None, None]
    assert len(reg) == 3 and reg.get(0) is None and reg.get(4) is runs[4]


def test_a_key_put_again_is_the_newest() -> None:
    reg: SpanRegistry[Run] = SpanRegistry(max_open=2)
    a, b, c = Run("a"), Run("b"), Run("c")
    reg.put("a", a)
    reg.put("b", b)
    reg.put("a", a)  # a is now newer than b
    reg.put("c", c)
    assert b.failed == ABANDONED and a.failed is None and c.failed is None


def test_stale_runs_are_evicted_at_the_next_put_and_on_evict_decides_how() -> None:
    evicted: list[tuple[Any, Any]] = []
    reg: SpanRegistry[tuple[str, int]] = SpanRegistry(ttl=0.05, on_evict=lambda k, v: evicted.append((k, v)))
    reg.put("old", ("old", 1))
    time.sleep(0.06)
    reg.put("new", ("new", 2))
    assert evicted == [("old", ("old", 1))] and len(reg) == 1 and reg.get("new") == ("new", 2)


def test_with_nothing_aging_the_next_sweep_waits_a_ttl_and_a_stale_run_is_still_closed() -> None:
    reg: SpanRegistry[Run] = SpanRegistry(ttl=0.05)
    reg.spans["gone"] = Run("gone")  # a run whose start the worker takes up after it ended
    reg.take("gone", None)
    reg.born("gone")  # nothing left to age: the sweep that finds this puts the next one a ttl away
    assert not reg._born and reg._next_check > time.monotonic()
    stale = Run("stale")
    reg.put("stale", stale)
    reg.put("fresh", Run("fresh"))
    assert stale.failed is None  # not stale yet, and no sweep was due
    time.sleep(0.06)
    reg.put("late", Run("late"))
    assert stale.failed == ABANDONED and reg.get("stale") is None and reg.get("late") is not None


def test_the_times_of_taken_runs_do_not_pile_up() -> None:
    reg: SpanRegistry[Run] = SpanRegistry()
    keep = Run("long-lived")
    reg.put("keep", keep)  # an old live run in front: the sweep cannot just pop from the front
    for i in range(10_000):
        reg.put(i, Run(str(i)))
        assert reg.take(i, None) is not None
    assert len(reg) == 1 and len(reg._born) <= 2 * len(reg) + 65 and keep.failed is None


def test_close_all_closes_every_open_run_oldest_first() -> None:
    order: list[str] = []
    reg: SpanRegistry[Run] = SpanRegistry(on_evict=lambda k, v: order.append(k))
    for k in ("x", "y", "z"):
        reg.put(k, Run(k))
    reg.take("y", None)
    reg.close_all()
    assert order == ["x", "z"] and len(reg) == 0 and reg._born == {}


@pytest.mark.parametrize("options", [{"max_open": 0}, {"max_open": True}, {"ttl": 0}, {"ttl": "1h"}])
def test_bad_bounds_are_refused_naming_the_setting(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        SpanRegistry(**options)


def test_inserted_directly_the_bounds_hold_and_age_counts_from_born() -> None:
    # a hook inserts into `spans` itself; its worker calls `born` later, or never (a stalled worker)
    reg: SpanRegistry[Run] = SpanRegistry(max_open=3, ttl=0.05)
    runs = {k: Run(k) for k in "abcde"}
    for k in "abcd":
        reg.spans[k] = runs[k]
        if len(reg.spans) > reg.max_open:
            reg.born(k)
    assert runs["a"].failed == ABANDONED and len(reg) == 3  # evicted though never born
    reg.born("b")
    time.sleep(0.06)
    reg.spans["e"] = runs["e"]
    reg.born("e")  # over the bound again (b goes, the oldest inserted); d is stale (born when it went over)
    assert runs["b"].failed == ABANDONED and runs["d"].failed == ABANDONED
    assert runs["c"].failed is None and set(reg.spans) == {"c", "e"}  # c was never born: no age yet
