"""Exact trees for the recorder API: nesting in threads, tasks, generators, decorators."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

import tracewire
from tests.conftest import Recorder, shape


def test_sync_nesting_exact_tree(recorder: Recorder) -> None:
    with tracewire.span("agent", "root") as root:
        with tracewire.span("chain", "plan"):
            with tracewire.span("llm", "model"):
                pass
        with tracewire.span("tool", "search", input={"q": "x"}) as tool:
            tool.set_output(["r1"])
        tracewire.record("agent.response", output="done")
    (r,) = recorder.tree()
    assert shape(r) == ("agent", "root", [
        ("chain", "plan", [("llm", "model", [])]),
        ("tool", "search", []),
        ("agent", "agent.response", []),
    ])
    spans = {s.name: s for s in recorder.spans()}
    assert spans["plan"].parent_span_id == root.span_id
    assert spans["model"].parent_span_id == spans["plan"].span_id
    assert spans["search"].input == {"q": "x"} and spans["search"].output == ["r1"]
    assert {s.trace_id for s in spans.values()} == {root.trace_id}
    assert all(s.status in ("ok", "point") for s in spans.values())


async def test_async_gather_children_get_the_right_parent(recorder: Recorder) -> None:
    @tracewire.trace("tool")
    async def fetch(i: int) -> int:
        await asyncio.sleep(0.001 * (3 - i))
        with tracewire.span("llm", f"inner-{i}"):
            await asyncio.sleep(0)
        return i * 10

    async with tracewire.span("agent", "root"):
        results = await asyncio.gather(fetch(0), fetch(1), fetch(2))
    assert results == [0, 10, 20]
    (r,) = recorder.tree()
    assert r.name == "root"
    assert sorted(shape(c) for c in r.children) == [
        ("tool", "test_async_gather_children_get_the_right_parent.<locals>.fetch", [("llm", f"inner-{i}", [])])
        for i in range(3)
    ]
    outputs = sorted(c.output for c in r.children)
    inners = {c.children[0].name: c.input["i"] for c in r.children}
    assert outputs == [0, 10, 20] and inners == {"inner-0": 0, "inner-1": 1, "inner-2": 2}


def test_thread_with_copied_context_keeps_parent(recorder: Recorder) -> None:
    with tracewire.span("agent", "root") as root:
        ctx = contextvars.copy_context()

        def work() -> None:
            with tracewire.span("tool", "in-thread"):
                pass

        t = threading.Thread(target=ctx.run, args=(work,))
        t.start()
        t.join()
        plain = threading.Thread(target=work)  # no copied context: a new trace
        plain.start()
        plain.join()
    spans = {s.name: s for s in recorder.spans()}
    in_thread = [s for s in recorder.spans() if s.name == "in-thread"]
    assert len(in_thread) == 2
    copied = [s for s in in_thread if s.parent_span_id == root.span_id]
    orphan = [s for s in in_thread if s.parent_span_id is None]
    assert len(copied) == 1 and len(orphan) == 1
    assert copied[0].trace_id == spans["root"].trace_id != orphan[0].trace_id


def test_generators_span_ends_when_exhausted_or_closed(recorder: Recorder) -> None:
    @tracewire.trace("chain", name="numbers")
    def numbers(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            with tracewire.span("tool", f"step-{i}"):
                pass
            yield i

    with tracewire.span("agent", "root"):
        assert list(numbers(2)) == [0, 1]
        gen = numbers(5)
        assert next(gen) == 0
        # between steps the consumer's context is its own, not the generator's span
        with tracewire.span("tool", "consumer-side"):
            pass
        gen.close()
    (r,) = recorder.tree()
    assert shape(r) == ("agent", "root", [
        ("chain", "numbers", [("tool", "step-0", []), ("tool", "step-1", [])]),
        ("chain", "numbers", [("tool", "step-0", [])]),
        ("tool", "consumer-side", []),
    ])
    full, closed = r.children[0], r.children[1]
    assert full.output == [0, 1] and full.status == "ok"
    assert closed.output == [0] and closed.status == "ok"


async def test_async_generator_span(recorder: Recorder) -> None:
    @tracewire.trace("llm", name="stream")
    async def stream():  # type: ignore[no-untyped-def]
        for tok in ("a", "b"):
            await asyncio.sleep(0)
            yield tok

    async with tracewire.span("agent", "root"):
        got = [t async for t in stream()]
    assert got == ["a", "b"]
    (r,) = recorder.tree()
    assert shape(r) == ("agent", "root", [("llm", "stream", [])])
    assert r.children[0].output == ["a", "b"]


def test_decorated_function_that_raises_reraises_the_same_exception(recorder: Recorder) -> None:
    boom = ValueError("boom")

    @tracewire.trace("tool")
    def fails(x: int) -> None:
        raise boom

    @tracewire.trace("agent", name="outer")
    def outer() -> None:
        fails(1)

    with pytest.raises(ValueError) as info:
        outer()
    assert info.value is boom
    (r,) = recorder.tree()
    assert shape(r) == ("agent", "outer", [("tool", "test_decorated_function_that_raises_reraises_the_same_exception.<locals>.fails", [])])
    for s in (r, r.children[0]):
        assert s.status == "error"
        assert s.error["type"] == "ValueError" and s.error["message"] == "boom"
        assert "raise boom" in s.error["stacktrace"]
    assert r.children[0].input == {"x": 1}


async def test_async_decorated_raise(recorder: Recorder) -> None:
    @tracewire.trace("tool", name="afail")
    async def afail() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await afail()
    (s,) = recorder.spans()
    assert (s.kind, s.name, s.status, s.error["type"]) == ("tool", "afail", "error", "KeyError")


async def test_session_applies_to_every_event_sync_and_async(recorder: Recorder) -> None:
    with tracewire.session(session_id="s-1", user_id="u-1", tags=["t1"], metadata={"env": "test"}):
        with tracewire.span("agent", "a", tags=["own"], metadata={"k": 1}):
            tracewire.record("user.input", input="hi")
    async with tracewire.session(session_id="s-2"):
        await asyncio.sleep(0)
        tracewire.record("metric", name="latency", attributes={"value": 1.5})
    evs = recorder.events()
    first = [e for e in evs if e["session_id"] == "s-1"]
    assert len(first) == 3
    assert all(e["user_id"] == "u-1" and "t1" in e["tags"] and e["metadata"]["env"] == "test" for e in first)
    start = next(e for e in first if e["type"] == "agent.start")
    assert start["tags"] == ["t1", "own"] and start["metadata"] == {"env": "test", "k": 1}
    (metric,) = [e for e in evs if e["session_id"] == "s-2"]
    assert (metric["type"], metric["kind"], metric["phase"], metric["name"]) == ("metric", "metric", "point", "latency")
    assert metric["attributes"] == {"value": 1.5} and metric["parent_span_id"] is None


def test_point_event_kinds_and_envelope(recorder: Recorder) -> None:
    for t in ("user.input", "agent.response", "user.feedback", "metric", "log", "my.custom"):
        tracewire.record(t, input="x")
    evs = recorder.events()
    assert [(e["type"], e["kind"], e["phase"]) for e in evs] == [
        ("user.input", "user", "point"), ("agent.response", "agent", "point"),
        ("user.feedback", "user", "point"), ("metric", "metric", "point"), ("log", "custom", "point"),
        ("my.custom", "custom", "point"),
    ]
    ids = [e["id"] for e in evs]
    assert ids == sorted(ids) and len(set(ids)) == 6  # UUIDv7: time-ordered
    assert all(e["id"][14] == "7" for e in evs)
    assert [e["seq"] for e in evs] == sorted(e["seq"] for e in evs)
    assert len({e["trace_id"] for e in evs}) == 6  # outside any span: a trace of its own each
    for e in evs:
        assert e["schema"] == 1 and e["framework"] == "manual" and isinstance(e["time"], int)
        assert len(e["trace_id"]) == 32 and len(e["span_id"]) == 16
        # a new trace's id starts with its ms timestamp (appends to the store's trace index)
        assert int(e["trace_id"][:12], 16) == e["time"] // 1_000_000
    assert len({e["trace_id"][12:] for e in evs}) == 6  # then 80 random bits


def test_explicit_parent_and_timestamps_for_adapters(recorder: Recorder) -> None:
    client = tracewire.get_client()
    root = client.start_span("agent", "graph", parent=None, start_ns=1_000, framework="langchain")
    child = client.start_span("llm", "model", parent=root, start_ns=2_000, framework="langchain")
    child.end(output="hi", end_ns=5_000)
    child.end(output="ignored")  # a second end is ignored
    root.fail(RuntimeError("x"), end_ns=9_000)
    spans = {s.name: s for s in recorder.spans()}
    assert spans["model"].parent_span_id == root.span_id
    assert (spans["model"].start_ns, spans["model"].end_ns, spans["model"].output) == (2_000, 5_000, "hi")
    assert (spans["graph"].status, spans["graph"].end_ns) == ("error", 9_000)
    assert len(recorder.events()) == 4


def test_sampling_is_per_trace(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tracewire.sinks.memory import MemorySink

    sink = MemorySink()
    client = tracewire.init(sink=[sink], sample_rate=0.5, flush_interval=0.01)
    for i in range(200):
        with tracewire.span("agent", f"t{i}"):
            with tracewire.span("tool", "child"):
                tracewire.record("log", input="x")
    assert client.flush(5)
    by_trace: dict[str, list[dict]] = {}
    for e in sink.events:
        by_trace.setdefault(e["trace_id"], []).append(e)
    assert 60 < len(by_trace) < 140  # about half the traces
    assert all(len(v) == 5 for v in by_trace.values())  # a kept trace is kept whole
    st = client.stats()
    assert st["sampled_out"] == (200 - len(by_trace)) * 3  # two starts and one point per dropped trace
    assert st["emitted"] == st["written"] == len(by_trace) * 5


def test_capture_content_off_keeps_content_out(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tracewire.sinks.memory import MemorySink

    sink = MemorySink()
    client = tracewire.init(sink=[sink], capture_content=False)
    with tracewire.span("tool", "t", input={"secret plan": 1}, metadata={"m": 1}) as s:
        s.set_output("answer")
    tracewire.record("user.input", input="hello")
    assert client.flush(5)
    for e in sink.events:
        assert "input" not in e and "output" not in e
    # metadata is the user's own labelling, not captured content: it stays
    assert [e["metadata"] for e in sink.events] == [{"m": 1}, {"m": 1}, None]
    assert len(sink.events) == 3


def test_disabled_is_a_noop(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRACEWIRE_DISABLED", "1")
    client = tracewire.init()
    with tracewire.span("agent", "a") as s:
        tracewire.record("user.input", input="x")
    assert s.ended
    assert client.stats()["emitted"] == 0 and client.sinks == []
    assert tracewire.flush(1)


def test_ids_do_not_follow_the_global_random_seed(recorder: Recorder) -> None:
    import random

    random.seed(42)
    with tracewire.span("agent", "a") as first:
        pass
    random.seed(42)
    with tracewire.span("agent", "a") as second:
        pass
    assert first.trace_id != second.trace_id and first.span_id != second.span_id
    assert len({e["id"] for e in recorder.events()}) == 4


def test_a_root_spans_ids_lead_with_its_start_ms_and_are_opentelemetry_shaped(recorder: Recorder) -> None:
    import time

    before = time.time_ns() // 1_000_000
    roots = [recorder.client.start_span("agent", f"r{i}") for i in range(50)]
    after = time.time_ns() // 1_000_000
    with roots[0]:
        child = recorder.client.start_span("tool", "c")
        child.end()
    for r in roots[1:]:
        r.end()
    for r in roots:
        assert len(r.trace_id) == 32 and len(r.span_id) == 16 and int(r.span_id, 16) != 0
        assert before <= int(r.trace_id[:12], 16) <= after
    assert len({r.trace_id for r in roots}) == 50 and len({r.span_id for r in roots}) == 50
    # the span id is not the trace id's random tail: drawn apart from it
    assert all(r.span_id != r.trace_id[16:] for r in roots)
    assert child.trace_id == roots[0].trace_id and child.parent_span_id == roots[0].span_id
    by_span = {e["span_id"]: e for e in recorder.events() if e["phase"] == "start"}
    assert by_span[roots[3].span_id]["trace_id"] == roots[3].trace_id
    assert by_span[roots[3].span_id]["parent_span_id"] is None
