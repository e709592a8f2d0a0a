"""Hostile payloads: whatever goes in, nothing reaches the caller and every event is valid JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import sqlite3
import uuid
from typing import Any

import pydantic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracewire


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: float
    y: Any = None


class Model(pydantic.BaseModel):
    name: str
    score: float


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    def __str__(self) -> str:
        raise RuntimeError("str exploded")


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("no pickling")


def _cycle() -> Any:
    a: dict[str, Any] = {"name": "loop"}
    a["self"] = a
    b: list[Any] = [a]
    a["list"] = b
    return a


def _deep(n: int) -> Any:
    v: Any = "bottom"
    for _ in range(n):
        v = {"d": [v]}
    return v


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=50),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=4),  # lone surrogates
    st.binary(max_size=40), st.datetimes(), st.dates(), st.uuids(), st.decimals(allow_nan=True),
    st.sampled_from([Color.RED, math.nan, -math.inf, print, type]),
    st.builds(BadRepr), st.builds(Unpicklable), st.builds(object),
    st.builds(Point, st.floats(), st.text(max_size=5)),
    st.builds(Model, name=st.text(max_size=10), score=st.floats(allow_nan=False)),
    st.integers(min_value=1, max_value=5).map(lambda n: "x" * (70_000 * n)),  # huge strings
    st.integers(min_value=60, max_value=200).map(_deep),  # deeper than the walk's limit
    st.just(0).map(lambda _: _cycle()),
)
keys = st.one_of(st.text(max_size=10), st.integers(), st.tuples(st.integers(), st.text(max_size=3)), st.none(),
                 st.sampled_from([Color.RED, 1.5, frozenset({1})]))
payloads = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4),
        st.sets(st.integers(), max_size=3), st.tuples(children, children), st.frozensets(st.text(max_size=3), max_size=3),
    ),
    max_leaves=12,
)

PER_EXAMPLE = 20
EXAMPLES = 520  # 520 * 20 = 10,400 payloads


def test_hostile_payloads_never_raise_and_land_as_valid_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "hostile.db"
    client = tracewire.init(sink="sqlite", db=str(db), queue_max_events=1_000_000,
                            queue_max_bytes=2**31, max_event_bytes=256 * 1024)
    fed = 0

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(payloads, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    def feed(batch: list[Any]) -> None:
        nonlocal fed
        for i, p in enumerate(batch):
            if i % 2:
                tracewire.record("log", input=p, output=p, metadata={"p": p})
            else:
                with tracewire.span("tool", "hostile", input=p) as s:
                    s.set_output(p)
            fed += 1

    feed()  # any exception from tracewire would fail the test here
    assert fed >= 10_000
    assert client.flush(120)
    stats = client.stats()
    assert stats["dropped"] == {} and stats["pending"] == 0
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT body FROM events").fetchall()
    assert len(rows) == stats["written"] == stats["emitted"]
    assert len(rows) == fed // 2 * 2 + fed // 2  # spans: start + end; logs: one point
    for (body,) in rows:
        e = json.loads(body, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # no NaN/Infinity
        assert e["schema"] == 1 and len(body.encode()) <= 300 * 1024


def test_specific_hostile_values_are_recorded_faithfully(recorder) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime(2026, 1, 2, 3, 4, 5)
    uid = uuid.UUID(int=7)
    tracewire.record("log", input={
        "nan": math.nan, "inf": math.inf, "when": now, "id": uid, "dec": decimal.Decimal("1.5"),
        "color": Color.RED, "pt": Point(1.0, "a"), "model": Model(name="m", score=2.0), "raw": b"\xff\x00",
        "text_bytes": b"hello", (1, 2): "tuple-key", 3: "int-key", "bad": BadRepr(), "set": {3, 1, 2},
        "cycle": _cycle(), "surrogate": "a\ud800b", "big": "y" * 100_000, "deep": _deep(100),
    })
    (e,) = recorder.events()
    v = e["input"]
    assert v["nan"] is None and v["inf"] is None
    assert v["when"] == "2026-01-02T03:04:05" and v["id"] == str(uid) and v["dec"] == "1.5"
    assert v["color"] == "red" and v["pt"] == {"x": 1.0, "y": "a"} and v["model"] == {"name": "m", "score": 2.0}
    assert v["raw"] == {"$bytes_b64": "/wA=", "length": 2} and v["text_bytes"] == "hello"
    assert v["(1, 2)"] == "tuple-key" and v["3"] == "int-key"
    assert v["bad"].startswith("<") and v["bad"].endswith("BadRepr (repr failed: RuntimeError)>")
    assert v["set"] == [1, 2, 3]
    assert v["cycle"]["self"] == "<cycle: dict>" and v["cycle"]["list"] == ["<cycle: dict>"]
    assert v["surrogate"] == "a?b"
    assert v["big"].startswith("y" * 1000) and v["big"].endswith("[truncated, original length 100000]")
    assert "<max depth 64 reached" in json.dumps(v["deep"]) and "bottom" not in json.dumps(v["deep"])


def test_snapshot_is_taken_when_recorded(recorder) -> None:  # type: ignore[no-untyped-def]
    messages = [{"role": "user", "content": "first"}]
    with tracewire.span("llm", "m", input=messages):
        messages.append({"role": "assistant", "content": "mutated later"})
        messages[0]["content"] = "rewritten"
    start = recorder.events()[0]
    assert start["input"] == [{"role": "user", "content": "first"}]


def test_mask_runs_on_every_string(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tracewire.sinks.memory import MemorySink

    sink = MemorySink()
    client = tracewire.init(sink=[sink], mask=lambda s: s.replace("alice", "[NAME]"))
    with tracewire.span("tool", "t", input={"who": ["alice", {"n": "alice b"}]}, metadata={"owner": "alice"}) as s:
        s.set_output("bye alice")
        s.fail(ValueError("alice not found"))
    assert client.flush(5)
    blob = json.dumps(sink.events)
    assert "alice" not in blob
    err = sink.events[1]
    assert err["error"]["message"] == "[NAME] not found" and err["output"] == "bye [NAME]"
    assert sink.events[0]["input"] == {"who": ["[NAME]", {"n": "[NAME] b"}]}


def test_event_size_cap_marks_what_was_cut(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tracewire.sinks.memory import MemorySink

    sink = MemorySink()
    client = tracewire.init(sink=[sink], max_event_bytes=8192, max_string_length=4000)
    tracewire.record("log", input=["z" * 3000 for _ in range(10)], output="small")
    assert client.flush(5)
    (e,) = sink.events
    assert e["output"] == "small"
    assert e["input"]["original_bytes"] > 30_000 and len(e["input"]["$truncated"]) < 8192


def test_failing_processor_is_counted_and_withholds_the_content(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tracewire.sinks.memory import MemorySink

    def explode(event: dict) -> dict:
        raise RuntimeError("processor bug")

    def drop_logs(event: dict) -> dict | None:
        return None if event["type"] == "log" else event

    def tag(event: dict) -> dict:
        event["tags"].append("seen")
        return event

    sink = MemorySink()
    client = tracewire.init(sink=[sink], processors=[explode, drop_logs, tag])
    tracewire.record("log", input="dropped")
    tracewire.record("user.input", input={"kept": True})
    assert client.flush(5)
    (e,) = sink.events
    # privacy fails closed: a processor that failed may have been the one meant to hide something
    assert e["type"] == "user.input" and e["tags"] == ["seen"] and "input" not in e
    assert e["attributes"] == {"tracewire.withheld": "processor:explode failed"}
    st_ = client.stats()
    assert st_["internal_errors"] == {"processor:explode": 2}
    assert st_["withheld"]["events"] == 2
    assert st_["dropped"] == {"filtered": 1} and st_["written"] == 1 and st_["emitted"] == 2


def test_record_passes_every_keyword_through_and_keeps_a_stray_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`record` hands its keywords on by position: each must land in its own field."""
    from tracewire.sinks.memory import MemorySink

    sink = MemorySink()
    client = tracewire.init(sink=[sink])
    parent = client.start_span("agent", "root")
    tracewire.record("user.feedback", name="thumbs", input={"q": 1}, output="fine", attributes={"score": 5},
                     parent=parent, time_ns=1_700_000_000_123_456_789, framework="custom-fw", tags=["t1"],
                     metadata={"m": "v"}, session_id="s-1", user_id="u-1", error=ValueError("bad"))
    tracewire.record("log", input="x", imput="typo")  # not raised: recorded, the stray keyword in metadata
    tracewire.record("metric", value=3, output=1, metadata={"unit": "s"})
    parent.end()
    assert client.flush(5)
    st_ = client.stats()
    tracewire.shutdown()
    (e,) = [e for e in sink.events if e["type"] == "user.feedback"]
    assert (e["name"], e["input"], e["output"], e["attributes"]) == ("thumbs", {"q": 1}, "fine", {"score": 5})
    assert (e["parent_span_id"], e["trace_id"]) == (parent.span_id, parent.trace_id)
    assert (e["time"], e["framework"], e["tags"], e["metadata"]) == (1_700_000_000_123_456_789, "custom-fw", ["t1"],
                                                                     {"m": "v"})
    assert (e["session_id"], e["user_id"]) == ("s-1", "u-1")
    assert e["error"]["type"] == "ValueError" and e["error"]["message"] == "bad"
    assert [x["type"] for x in sink.events] == ["agent.start", "user.feedback", "log", "metric", "agent.end"]
    (log,) = [x for x in sink.events if x["type"] == "log"]
    assert (log["input"], log["metadata"]) == ("x", {"imput": "typo"})
    (metric,) = [x for x in sink.events if x["type"] == "metric"]
    assert (metric["output"], metric["metadata"]) == (1, {"value": 3, "unit": "s"})
    assert st_["internal_errors"] == {"record": 2} and st_["emitted"] == st_["written"] == 5
