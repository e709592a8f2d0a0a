"""`tracewire.experiment`: run a task over every item of a dataset, score the outputs, keep the run.

Each item runs in a trace of its own whose root span is `experiment:<name>` (kind `chain`), carrying
the experiment's name, run id and the item's id as attributes; whatever the task records — a LangGraph
agent's spans, an OpenAI call — nests beneath it as it always does. Items run `concurrency` at a time:
an async task on one event loop, a sync task each in a thread of its own (so a task that never returns
can be left behind at its timeout). One item failing or timing out never stops the others.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tracewire.engine import state
from tracewire.experiments import store as S
from tracewire.experiments.datasets import Dataset, DatasetItem
from tracewire.experiments.evaluators import check_evaluators, evaluate, record_scores
from tracewire.experiments.result import ExperimentResult
from tracewire.experiments.rows import ERROR, OK, TIMEOUT, Row, aggregate
from tracewire.tracing import span

# Attributes of each item's root span.
EXPERIMENT_NAME = "tracewire.experiment.name"
EXPERIMENT_RUN_ID = "tracewire.experiment.run_id"
EXPERIMENT_ITEM_ID = "tracewire.experiment.item_id"
EXPERIMENT_DATASET = "tracewire.experiment.dataset"
EXPERIMENT_DATASET_VERSION = "tracewire.experiment.dataset_version"


@dataclass
class _Outcome:
    trace_id: str | None
    status: str
    output: Any
    error: dict[str, str] | None
    wall_ms: float


def _check(name: Any, data: Any, task: Any, concurrency: Any, timeout: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"experiment name must be a non-empty string, got {name!r}")
    if not isinstance(data, Dataset):
        raise ValueError(f"experiment data must be a tracewire.dataset(...), got {type(data).__name__}")
    if not callable(task):
        raise ValueError(f"experiment task must be callable, got {task!r}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"experiment concurrency must be an integer of at least 1, got {concurrency!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"experiment timeout must be a number of seconds above 0, or None; got {timeout!r}")


def experiment(
    name: str, data: Dataset, task: Callable[[Any], Any], evaluators: Sequence[Callable[[Any, Any, Any], Any]] = (),
    *, concurrency: int = 4, timeout: float | None = None, db: str | None = None,
) -> ExperimentResult:
    """Run `task(item.input)` (sync or async) for every item of `data`, at most `concurrency` at once and
    each for at most `timeout` seconds; score each output with `evaluators` (`fn(input, output, expected)`);
    store the run beside the dataset (or in `db`) and return it. Bad arguments are a ValueError naming
    the argument; nothing a task or an evaluator raises escapes."""
    _check(name, data, task, concurrency, timeout)
    checked = check_evaluators(evaluators)
    run_id = uuid.uuid4().hex
    attributes = {EXPERIMENT_NAME: name, EXPERIMENT_RUN_ID: run_id, EXPERIMENT_DATASET: data.name,
                  EXPERIMENT_DATASET_VERSION: data.version}
    started = time.time_ns()
    outcomes = _run_all(data.items, task, concurrency, timeout, f"experiment:{name}", attributes)
    ended = time.time_ns()
    client = state.client or state.get_client()
    client.flush(30)  # the traces' latency and cost are read back from the store
    measured = _from_traces([o.trace_id for o in outcomes])
    rows: list[Row] = []
    for position, (item, o) in enumerate(zip(data.items, outcomes, strict=True)):
        latency, cost = measured.get(o.trace_id or "", (o.wall_ms, None))
        row = Row(item.id, position, item.input, o.output, item.expected, o.trace_id, o.status, o.error,
                  latency=latency, cost=cost)
        if o.status == OK and checked:
            scores, row.evaluator_errors = evaluate(checked, item.input, o.output, item.expected)
            row.scores = {s.name: s.shown for s in scores}
            if o.trace_id:
                record_scores(o.trace_id, scores, {"experiment": name, "run_id": run_id, "item_id": item.id})
        rows.append(row)
    result = ExperimentResult(name, run_id, data.name, data.version, started, ended, rows, aggregate(rows),
                              S.store_path(db) if db else data.db)
    _save(result)
    return result


# -- running ---------------------------------------------------------------------------------------------
def _is_async(task: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(task) or inspect.iscoroutinefunction(type(task).__call__)


def _run_all(items: Sequence[DatasetItem], task: Callable[[Any], Any], concurrency: int, timeout: float | None,
             span_name: str, attributes: dict[str, Any]) -> list[_Outcome]:
    import asyncio

    is_async = _is_async(task)

    def in_thread(arg: Any) -> asyncio.Future[Any]:
        """`task(arg)` in a daemon thread, in this context (the item's span current): a sync task that
        outlives its timeout is left to finish on its own instead of holding up the run."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        ctx = contextvars.copy_context()

        def settle(result: Any, exc: BaseException | None) -> None:
            if not fut.done():
                fut.set_exception(exc) if exc is not None else fut.set_result(result)

        def work() -> None:
            try:
                result, exc = ctx.run(task, arg), None
            except BaseException as e:  # noqa: BLE001 - handed to the waiting item as its outcome
                result, exc = None, e
            try:
                loop.call_soon_threadsafe(settle, result, exc)
            except RuntimeError:  # the run ended (this item timed out) and its loop is closed
                pass

        threading.Thread(target=work, name="tracewire-experiment-task", daemon=True).start()
        return fut

    async def call(arg: Any) -> Any:
        out = task(arg) if is_async else await in_thread(arg)
        if inspect.isawaitable(out):  # a sync callable handing back a coroutine: `lambda x: agent.ainvoke(x)`
            out = await out
        return out

    async def one(sem: asyncio.Semaphore, item: DatasetItem) -> _Outcome:
        async with sem:
            t0 = time.perf_counter()
            with span("chain", span_name, input=item.input, attributes={**attributes, EXPERIMENT_ITEM_ID: item.id},
                      parent=None) as sp:
                try:
                    output = await asyncio.wait_for(call(item.input), timeout)
                except TimeoutError:
                    error = {"type": TIMEOUT, "message": f"no result within {timeout:g} s"}
                    sp.fail(error)
                    return _Outcome(sp.trace_id, TIMEOUT, None, error, (time.perf_counter() - t0) * 1000)
                except Exception as exc:  # noqa: BLE001 - one failing item never stops the run
                    sp.fail(exc)
                    return _Outcome(sp.trace_id, ERROR, None, {"type": type(exc).__name__, "message": str(exc)},
                                    (time.perf_counter() - t0) * 1000)
                sp.set_output(output)
            return _Outcome(sp.trace_id, OK, output, None, (time.perf_counter() - t0) * 1000)

    async def main() -> list[_Outcome]:
        sem = asyncio.Semaphore(concurrency)
        return list(await asyncio.gather(*(one(sem, item) for item in items)))

    # A loop of its own in a thread of its own: experiment() works the same called from a notebook
    # or an async app whose loop is already running in this thread.
    done: list[list[_Outcome]] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(asyncio.run(main()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=run, name="tracewire-experiment")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return done[0]


def _from_traces(trace_ids: Sequence[str | None]) -> dict[str, tuple[float | None, float | None]]:
    """(latency ms, cost USD) of each trace found in the client's SQLite store: the trace's duration and
    the sum of its LLM calls' cost. A trace not there (another sink) keeps the measured time, cost None."""
    import os

    from tracewire.read.local import LocalStore

    path = S.store_path(None)
    if not os.path.exists(path):
        return {}
    store = LocalStore(path)
    out: dict[str, tuple[float | None, float | None]] = {}
    try:
        for tid in trace_ids:
            if not tid:
                continue
            s = store.summary(tid)
            if s["spans"]:
                out[tid] = (s["duration_ms"], s["cost_usd"])
    finally:
        store.close()
    return out


def _save(result: ExperimentResult) -> None:
    dumps, safe = S.dumps, S.safe
    run = (result.run_id, result.name, result.dataset, result.dataset_version, result.started_ns, result.ended_ns,
           dumps(result.summary))
    rows = [(r.position, r.item_id, r.trace_id, r.status, dumps(safe(r.input)), dumps(safe(r.output)),
             dumps(safe(r.expected)), dumps(r.error), dumps(safe(r.scores)), dumps(r.evaluator_errors), r.latency,
             r.cost) for r in result.rows]
    with S.opened(result.db or S.store_path(None), write=True) as conn:
        S.insert_run(conn, run, rows)
