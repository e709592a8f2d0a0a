"""experiment(): bounded concurrency, an item that raises and one that times out recorded as such while
the rest are scored, evaluator errors, aggregates as documented, bad arguments refused by name."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tracewire.experiments import Score, load_run
from tracewire.read.fold import tree
from tracewire.read.local import LocalStore


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "store.db")
    tracewire.init(db=path)
    yield path
    tracewire.shutdown()


def exact(input: Any, output: Any, expected: Any) -> bool:
    return bool(output == expected)


def test_items_run_concurrently(db: str) -> None:
    ds = tracewire.dataset("sleepy", items=[{"input": n, "expected": n} for n in range(4)])

    def task(n: int) -> int:
        time.sleep(0.2)
        return n

    t0 = time.perf_counter()
    run = tracewire.experiment("parallel", ds, task, [exact], concurrency=4)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.6, elapsed  # one after another would take 0.8 s
    assert run.summary["scores"] == {"exact": {"mean": 1.0, "count": 4}}
    # the latency of each item is its trace's duration: about the 0.2 s it slept
    assert all(190 <= (r.latency or 0) < 600 for r in run.rows), [r.latency for r in run.rows]


def test_failing_and_slow_items_are_recorded_and_the_rest_scored(db: str) -> None:
    release = threading.Event()
    items = [{"id": f"i{n}", "input": n, "expected": n * 2} for n in range(6)]
    ds = tracewire.dataset("doubles", items=items)

    def task(n: int) -> int:
        if n == 1:
            raise ValueError("no double for 1")
        if n == 2:
            release.wait(10)  # far past the timeout; let go when the test ends
        return n * 2 if n != 5 else 0

    def picky(input: Any, output: Any, expected: Any) -> Score:
        if input == 4:
            raise KeyError("picky has no opinion on 4")
        return Score("picky", value=0.5, comment="always half")

    def grade(input: Any, output: Any, expected: Any) -> str:
        return "good" if output == expected else "bad"

    try:
        run = tracewire.experiment("doubling", ds, task, [exact, picky, grade], concurrency=4, timeout=0.5)
    finally:
        release.set()
    by_id = {r.item_id: r for r in run.rows}
    assert by_id["i1"].status == "error" and by_id["i1"].error == {"type": "ValueError", "message": "no double for 1"}
    assert by_id["i2"].status == "timeout" and by_id["i2"].error == {"type": "timeout",
                                                                      "message": "no result within 0.5 s"}
    assert by_id["i1"].scores == {} == by_id["i2"].scores  # failed items are not evaluated
    assert by_id["i0"].scores == {"exact": 1.0, "picky": 0.5, "grade": "good"}
    assert by_id["i5"].scores == {"exact": 0.0, "picky": 0.5, "grade": "bad"}
    assert by_id["i4"].scores == {"exact": 1.0, "grade": "good"}
    assert by_id["i4"].evaluator_errors == {"picky": "KeyError: 'picky has no opinion on 4'"}

    s = run.summary
    assert (s["items"], s["ok"], s["errors"], s["timeouts"]) == (6, 4, 1, 1)
    # means over the items that returned only: errors and timeouts are counted apart, not as zeros
    assert s["scores"] == {"exact": {"mean": 0.75, "count": 4}, "picky": {"mean": 0.5, "count": 3},
                           "grade": {"mean": None, "count": 4}}
    assert s["evaluator_errors"] == {"picky": 1}
    # latency percentiles leave out the item cut off by the timeout
    finished = sorted(r.latency or 0 for r in run.rows if r.status != "timeout")
    assert s["latency_ms"] == {"p50": finished[2], "p95": finished[4]}

    # the traces say the same: the failure's type on the root, "timeout" for the slow one
    tracewire.flush()
    store = LocalStore(db)
    (failed,) = tree(store.trace_events(by_id["i1"].trace_id or ""))
    assert failed.status == "error" and failed.error and failed.error["type"] == "ValueError"
    (slow,) = tree(store.trace_events(by_id["i2"].trace_id or ""))
    assert slow.status == "error" and slow.error and slow.error["type"] == "timeout"
    store.close()

    # what the store kept reads back as the run
    again = load_run("doubling", db)
    assert again.run_id == run.run_id and again.summary == s
    assert [(r.item_id, r.status, r.scores, r.error) for r in again.rows] == [
        (r.item_id, r.status, r.scores, r.error) for r in run.rows]


def test_async_task_and_a_task_returning_a_coroutine(db: str) -> None:
    ds = tracewire.dataset("echo", items=[{"input": w, "expected": w.upper()} for w in ("a", "b", "c")])

    async def shout(word: str) -> str:
        await asyncio.sleep(0.01)
        with tracewire.span("tool", "upper") as sp:
            sp.set_output(word.upper())
        return word.upper()

    for task in (shout, lambda w: shout(w)):
        run = tracewire.experiment("shout", ds, task, [exact])
        assert [r.output for r in run.rows] == ["A", "B", "C"]
        assert run.summary["scores"]["exact"] == {"mean": 1.0, "count": 3}
    tracewire.flush()
    store = LocalStore(db)
    (root,) = tree(store.trace_events(run.rows[0].trace_id or ""))
    assert [(c.kind, c.name) for c in root.children] == [("tool", "upper")]  # nested under the item's root
    store.close()


def test_experiment_is_callable_from_a_running_event_loop(db: str) -> None:
    ds = tracewire.dataset("loop", items=[{"input": 1, "expected": 1}])

    async def app() -> float:
        run = tracewire.experiment("inside-loop", ds, lambda x: x, [exact])
        return float(run.summary["scores"]["exact"]["mean"])

    assert asyncio.run(app()) == 1.0


@pytest.mark.parametrize(("kwargs", "names"), [
    ({"concurrency": 0}, "concurrency"),
    ({"timeout": -1}, "timeout"),
    ({"evaluators": [42]}, "evaluators[0]"),
    ({"evaluators": [exact, exact]}, "named 'exact'"),
    ({"task": "not a function"}, "task"),
    ({"data": [{"input": 1}]}, "data"),
    ({"name": ""}, "name"),
])
def test_bad_arguments_are_refused_naming_them(db: str, kwargs: dict[str, Any], names: str) -> None:
    args: dict[str, Any] = {"name": "bad", "data": tracewire.dataset("bad", items=[{"input": 1}]),
                            "task": lambda x: x, "evaluators": [exact], **kwargs}
    with pytest.raises(ValueError, match=re.escape(names)):
        tracewire.experiment(args.pop("name"), args.pop("data"), args.pop("task"), **args)



def test_scores_go_to_the_item_trace_as_tracewire_scores(db: str) -> None:
    """Each evaluator's result is a score on the item's trace, read back as any score is; a second
    recording of the same row updates its scores (their ids are the run's, the item's and the name)."""
    ds = tracewire.dataset("scored", items=[{"id": "one", "input": 1, "expected": 1}])
    run = tracewire.experiment("scored", ds, lambda x: x, [exact, lambda i, o, e: "fine"])
    assert tracewire.flush(10)
    trace_id = run.rows[0].trace_id
    store = LocalStore(db)
    try:
        got = [(r["name"], r["value"], r["label"], r["trace_id"], r["span_id"], r["source"], r["metadata"], r["id"])
               for r in store.scores(trace_ids=[trace_id])]
    finally:
        store.close()
    meta = {"experiment": "scored", "run_id": run.run_id, "item_id": "one"}
    assert sorted(got) == sorted([
        ("exact", 1.0, None, trace_id, None, "code", meta, f"{run.run_id}:one:exact"),
        ("<lambda>", None, "fine", trace_id, None, "code", meta, f"{run.run_id}:one:<lambda>"),
    ])
