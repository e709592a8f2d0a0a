"""The worker's fast path: a plain event is written in one step, with exactly the line the
processors would write; anything they would change goes down their walk instead."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracewire
from tracewire.engine.client import Client
from tracewire.model import codec as _json
from tracewire.pipeline.envelope import Queued
from tracewire.pipeline.redact import REDACTED, Redactor
from tracewire.pipeline.sanitize import Sanitizer
from tracewire.sinks.memory import MemorySink


def _queued(**init: Any) -> tuple[Client, MemorySink]:
    sink = MemorySink()
    # a long interval: the test reads the queue before the worker takes it
    return tracewire.init(sink=[sink], flush_interval=60, batch_size=10_000, **init), sink


def _both_paths(c: Client, item: Queued) -> tuple[str | None, str | None]:
    """(fast line or None, processors' line or None) for copies of one queued item."""
    def copy() -> Queued:
        return Queued(item.event, item.blob, item.size, item.input_json, item.output_json, item.metadata_json)

    fast = c._pipeline.fast_line(copy())
    ev = c._pipeline.prepare(copy())
    return (fast[1] if fast else None), (c._pipeline.serialize(ev)[1] if ev is not None else None)


def _ignoring_fresh_ids(event: dict[str, Any]) -> dict[str, Any]:
    """Each envelope built gets a new event id (and a point its span id)."""
    drop = {"id", "span_id"} if event["phase"] == "point" else {"id"}
    return {k: v for k, v in event.items() if k not in drop}


def test_fast_line_equals_the_processors_line() -> None:
    c, sink = _queued()
    with tracewire.session("s-1", user_id="u-1", tags=["t"], metadata={"team": "search"}):
        with tracewire.span("agent", "plan", input={"q": "weather?", "when": dt.date(2026, 1, 2)},
                            attributes={"n": 3, "ratio": 0.5, "id": uuid.UUID(int=7)}) as s:
            s.record("user.input", input="hello", attributes={"lang": "en"})
            tracewire.record("metric", name="latency", attributes={"ms": 12.5, "nan": float("nan")})
            s.set_output({"answer": ["sunny", 21], "nested": {"a": {"b": [1, 2, None]}}})
    with tracewire.span("tool", "lookup") as t:
        t.fail(ValueError("no such city"))
    items = list(c._queue.items)
    assert len(items) == 6
    for item in items:
        fast, slow = _both_paths(c, item)
        assert fast is not None and slow is not None
        assert _ignoring_fresh_ids(json.loads(fast)) == _ignoring_fresh_ids(json.loads(slow))
    assert c.flush(10)
    assert [e["type"] for e in sink.events] == [
        "agent.start", "user.input", "metric", "agent.end", "tool.start", "tool.error"]
    assert sink.events[2]["attributes"] == {"ms": 12.5, "nan": None}


def test_events_the_processors_would_change_leave_the_fast_path() -> None:
    c, sink = _queued(max_string_length=200)
    tracewire.record("log", name="key", input={"note": "use sk-abcdefghijklmnop1234 here"})
    tracewire.record("log", name="pw", attributes={"db_password": "hunter2"})
    tracewire.record("log", name="bearer", attributes={"h": "Bearer abcdefghijklmnop"})
    tracewire.record("log", name="long", input="x" * 500)
    tracewire.record("log", name="set", attributes={"s": {1, 2}})  # not plain JSON
    for item in list(c._queue.items):
        fast, slow = _both_paths(c, item)
        assert fast is None and slow is not None
    assert c.flush(10)
    by_name = {e["name"]: e for e in sink.events}
    assert "sk-abcdefghijklmnop1234" not in json.dumps(by_name["key"])
    assert by_name["pw"]["attributes"]["db_password"] == "[REDACTED]"
    assert "abcdefghijklmnop" not in by_name["bearer"]["attributes"]["h"]
    assert len(json.dumps(by_name["long"]["input"])) < 500
    assert sorted(by_name["set"]["attributes"]["s"]) == [1, 2]


SECRET = "sk-abcdefghijklmnop1234"


@pytest.mark.parametrize("where", ["name", "session_id", "user_id", "tags", "framework"])
def test_a_secret_in_an_envelope_field_leaves_the_fast_path(where: str) -> None:
    """Each text field of the envelope is checked, also after clean values of it were remembered."""
    c, sink = _queued()
    fields: dict[str, Any] = {"name": "step", "session_id": "s", "user_id": "u", "tags": ["t"], "framework": "app"}
    for value in ("clean", SECRET):  # the first one fills the remembered clean values
        given = {**fields, where: [value] if where == "tags" else value}
        tracewire.record("log", input={"q": 1}, **given)
    clean, leaky = list(c._queue.items)
    assert _both_paths(c, clean)[0] is not None
    fast, slow = _both_paths(c, leaky)
    assert fast is None and slow is not None and SECRET not in slow
    assert c.flush(10)
    assert [SECRET in json.dumps(e) for e in sink.events] == [False, False]


def test_the_fast_path_hands_sinks_the_content_as_its_text() -> None:
    c, _ = _queued()
    with tracewire.session("s", metadata={"team": "search"}):
        tracewire.record("log", name="x", input={"q": "weather?"}, output=["sunny", 21])
    item = list(c._queue.items)[0]
    done = c._pipeline.fast_line(item)
    assert done is not None
    ev, line = done
    stored = json.loads(line)
    for field in ("input", "output", "metadata"):
        assert type(ev[field]) is _json.RawJSON and json.loads(ev[field].text) == stored[field], field
    assert c.flush(10)


def test_a_processor_added_after_init_still_sees_every_event() -> None:
    c, sink = _queued()
    seen: list[str] = []

    def tag(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event["name"])
        event["attributes"]["tagged"] = True
        return event

    c.processors.append(tag)
    tracewire.record("log", name="a", input={"x": 1})
    assert c.flush(10)
    assert seen == ["a"]
    assert sink.events[0]["attributes"] == {"tagged": True}


def test_mask_turns_the_fast_path_off() -> None:
    c, sink = _queued(mask=lambda s: s.replace("Paris", "<city>"))
    tracewire.record("log", name="m", input={"q": "weather in Paris"})
    assert len(c._queue.items) == 1
    assert c._pipeline._fast_ok is False
    assert c.flush(10)
    assert sink.events[0]["input"] == {"q": "weather in <city>"}


_KEY_PARTS = ["api", "key", "Key", "KEY", "token", "Token", "tokens", "access", "auth", "pass", "word", "secret",
              "max", "input", "output", "total", "cached", "count", "cookie", "pwd", "tenant", "id", "jwt", "bearer",
              "ize", "scope", "s"]
_SEPARATORS = ["", "_", "-", ".", " ", "\n", "\\", "é"]
_FRAGMENTS = ["sk-", "sk-proj-", "Bearer ", "basic ", "AKIA", "ASIA", "eyJ", "ghp_", "github_pat_", "glpat-",
              "xoxb-", "AIza", "ya29.", "SG.", "hf_", "-----BEGIN PRIVATE KEY-----", "://u:p@h", "=", ": ", "'",
              '"', "password", "tokens", "Token", "0123456789abcdefXYZ", "ABCDEFGHIJKLMNOP", "é", "\n", " "]

_keys = st.lists(st.sampled_from(_KEY_PARTS) | st.text(max_size=4), min_size=1, max_size=4).flatmap(
    lambda parts: st.lists(st.sampled_from(_SEPARATORS), min_size=len(parts), max_size=len(parts)).map(
        lambda seps: "".join(p + s for p, s in zip(parts, seps, strict=True))))
_texts = st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=8), max_size=8).map("".join)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | _texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys | _texts, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=2000, deadline=None)
@given(_json_values)
def test_the_cheap_check_and_the_full_scrubber_agree(value: Any) -> None:
    """One rule: wherever the fast path's check lets serialized content through untouched, the
    full walk would not have changed a thing in it either."""
    r = Redactor(["tenant_id"])
    if not r.may_need_scrubbing(_json.dumps_strict(value)):
        assert Sanitizer(r, 10**9).value(value, mask=False) == value


@pytest.mark.parametrize("key", ["apiapi\x1f{tokens", "api\n tokens", "access\t-tokens"])
def test_a_tokens_key_behind_an_escape_goes_down_the_full_walk(key: str) -> None:
    """The word before `tokens` is hidden by an escape in serialized text: the cheap check cannot
    tell a qualifier from none, so it must not let the value through unchecked."""
    r = Redactor(["tenant_id"])
    assert Sanitizer(r, 10**9).value({key: []}, mask=False) == {key: REDACTED}
    assert r.may_need_scrubbing(_json.dumps_strict({key: []}))


@pytest.mark.parametrize("sep", ['.', '"', "_", "-", "\\", "x"])
@pytest.mark.parametrize("word", ["input", "output", "total", "prompt", "completion", "reasoning", "cached", "max",
                                  "access", "api", "refresh", "xinput", "input_api"])
def test_usage_counts_are_read_in_one_step_as_the_walk_reads_them(word: str, sep: str) -> None:
    """`.input_tokens"` and its kin (every LLM event's usage) pass without the character walk; a
    key the full walk would scrub never does, whatever stands before `_tokens`."""
    r = Redactor()
    for key in (f"a{sep}{word}_tokens", f"{word}_tokens", f"x{sep}{word}_tokens{sep}n"):
        text = _json.dumps_strict({key: 1})
        if Sanitizer(r, 10**9).value({key: "v"}, mask=False) != {key: "v"}:
            assert r.may_need_scrubbing(text), key
    assert r.may_need_scrubbing(_json.dumps_strict({f"{word}_tokens": 1})) is (
        word in ("access", "api", "refresh"))
    if sep in '."_' and word in ("input", "output", "total", "cached"):
        assert not r.may_need_scrubbing(_json.dumps_strict({f"gen_ai.usage{sep}{word}_tokens": 1}))


@settings(max_examples=150, deadline=None)
@given(_json_values, _keys)
def test_the_fast_path_stores_what_the_processors_would(value: Any, key: str) -> None:
    stored = []
    for fast in (True, False):
        c, sink = _queued()
        if not fast:
            c.processors.append(lambda e: e)  # any user processor turns the fast path off
        tracewire.record("log", name="n", input={key: value}, metadata={"m": value})
        assert c.flush(10)
        stored.append({k: sink.events[0].get(k) for k in ("input", "metadata", "name", "tags")})
        tracewire.shutdown()
    assert stored[0] == stored[1]


def test_adapter_snapshot_is_recorded_like_the_data(recorder) -> None:  # type: ignore[no-untyped-def]
    data = {"messages": [{"role": "user", "content": "hi"}], "n": 1}
    with recorder.client.start_span("chain", "pre", input=_json.serialize_with(data, str)) as s:
        s.set_output(_json.serialize_with(["done"], str))
    start, end = recorder.events()
    assert start["input"] == data
    assert end["output"] == ["done"]
