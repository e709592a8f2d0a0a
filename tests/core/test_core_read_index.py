"""The local store's read model (tracewire.read.index): built in place in a store written without it,
caught up from its watermark as the app goes on writing, answering exactly what folding the events says,
rebuilt when its version changes, and safe with two indexers and a writer on the same file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

import tracewire
from tracewire.model import attributes as A
from tracewire.read import index
from tracewire.read.index import TraceIndex
from tracewire.read.local import IndexMissing, LocalStore
from tracewire.read.query import TraceQuery


def _record(db: str, n: int, first: int = 0) -> None:
    client = tracewire.init(sink="sqlite", db=db)
    for i in range(first, first + n):
        with tracewire.session(session_id=f"s-{i % 3}", user_id=f"u-{i % 2}"):
            try:
                with tracewire.span("agent", f"turn {i:03d}", tags=["even" if i % 2 == 0 else "odd"],
                                    metadata={"team": "red" if i % 4 == 0 else "blue"}):
                    with tracewire.span("llm", "chat", input=[{"role": "user", "content": f"question number {i}"}],
                                        attributes={A.REQUEST_MODEL: "gpt-4o-mini" if i % 3 else "claude-3-5-haiku",
                                                    A.USAGE_INPUT_TOKENS: 10 * i, A.USAGE_OUTPUT_TOKENS: 3,
                                                    A.COST_USD: 0.0001 * ((i * 7) % 11)}) as llm:
                        llm.set_output({"role": "assistant", "content": f"answer number {i}"})
                    if i % 10 == 9:
                        with tracewire.span("tool", "lookup"):
                            raise TimeoutError("lookup timed out")
            except TimeoutError:
                pass
    assert client.flush(10)
    tracewire.shutdown()


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "store.db")
    _record(path, 40)
    return path


def _ids(rows: list[dict[str, object]]) -> list[object]:
    return [r["trace_id"] for r in rows]


def test_an_existing_store_gains_the_read_model_and_it_agrees_with_the_fold(db: str) -> None:
    store = LocalStore(db)
    try:
        folded = store.list_traces(100)  # never indexed: read by folding events
        assert len(folded) == 40 and store.index_lag() is None
        with pytest.raises(IndexMissing, match="read model"):
            store.list_traces(10, query=TraceQuery(text="question"))
        conn = sqlite3.connect(db)
        assert not index.has_tables(conn)  # reading alone never writes the store
        conn.close()
        ix = TraceIndex(db)
        try:
            assert ix.catch_up(10**6) == 0
        finally:
            ix.stop()
        assert store.index_lag() == 0
        indexed = store.list_traces(100)
        assert [{k: v for k, v in r.items() if k not in ("frameworks", "events")} for r in indexed] == folded
        assert all(r["frameworks"] == ["manual"] and r["events"] >= 4 for r in indexed)
        for q in (TraceQuery(status="error"), TraceQuery(tags=("odd",)), TraceQuery(model="CLAUDE"),
                  TraceQuery(user_id="u-1", session_id="s-1"), TraceQuery(name="turn 01")):
            assert _ids(store.list_traces(100, query=q)) == [r["trace_id"] for r in folded if q.matches(r)
                                                              and (q.user_id is None or r["user_id"] == q.user_id)
                                                              and (q.session_id is None or r["session_id"] == q.session_id)]
        assert len(store.list_traces(100, query=TraceQuery(status="error"))) == 4
        assert len(store.list_traces(100, query=TraceQuery(meta=(("team", "red"),)))) == 10
        assert store.list_traces(100, query=TraceQuery(meta=(("team", "green"),))) == []
        # a short page scans the order's index testing each row, a long one starts from the rarest
        # condition's matches: the same traces either way
        red = TraceQuery(meta=(("team", "red"),), sort="cost")
        assert _ids(store.list_traces(2, query=red)) == _ids(store.list_traces(100, query=red))[:2]
        both = TraceQuery(tags=("even",), model="claude", status="ok")
        assert _ids(store.list_traces(1, 1, query=both)) == _ids(store.list_traces(100, query=both))[1:2]
        assert _ids(store.list_traces(100, query=both)) == [r["trace_id"] for r in folded if both.matches(r)]
        assert len(store.list_traces(100, query=both)) == 7  # turns 0, 6, ... 36
        assert len(store.list_traces(100, query=TraceQuery(framework="manual"))) == 40
        # sorts: by the summaries' own figures, ties by start; paging cuts the same order
        by_cost = store.list_traces(100, query=TraceQuery(sort="cost"))
        assert [r["cost_usd"] for r in by_cost] == sorted((r["cost_usd"] for r in folded), reverse=True)
        cheap = store.list_traces(100, query=TraceQuery(sort="tokens", descending=False))
        assert [r["input_tokens"] for r in cheap] == sorted(r["input_tokens"] for r in folded)
        slow = store.list_traces(100, query=TraceQuery(sort="latency"))
        assert [r["duration_ms"] for r in slow] == sorted((r["duration_ms"] for r in folded), reverse=True)
        assert _ids(store.list_traces(7, 14, query=TraceQuery(sort="cost"))) == _ids(by_cost[14:21])
        oldest = store.list_traces(100, query=TraceQuery(sort="start", descending=False))
        assert _ids(oldest) == list(reversed(_ids(folded)))
    finally:
        store.close()


def test_substring_filters_past_their_vocabulary(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name or model filter is matched against the distinct values first; with too many of them it
    tests each row instead, with the same result."""
    ix = TraceIndex(db)
    ix.catch_up(10**6)
    ix.stop()
    store = LocalStore(db)
    try:
        q = TraceQuery(name="TURN 00")
        listed = _ids(store.list_traces(100, query=q))
        assert len(listed) == 10
        assert store.list_traces(100, query=TraceQuery(name="nobody")) == []
        monkeypatch.setattr(index, "MAX_VOCABULARY", 3)
        assert _ids(store.list_traces(100, query=q)) == listed
        assert len(store.list_traces(100, query=TraceQuery(model="gpt"))) == 26
    finally:
        store.close()


def test_search_is_a_phrase_in_inputs_or_outputs(db: str) -> None:
    ix = TraceIndex(db)
    ix.catch_up(10**6)
    ix.stop()
    store = LocalStore(db)
    try:
        def names(text: str) -> list[object]:
            return [r["name"] for r in store.list_traces(100, query=TraceQuery(text=text))]

        assert names("question number 17") == ["turn 017"]  # an LLM call's input
        assert names("ANSWER  number 3") == ["turn 003"]  # its output; any case, any run of spaces
        assert names("number 17 question") == []  # the same words in another order are not the phrase
        assert len(names("number")) == 40
        assert names("question number 1") == ["turn 001"]  # a phrase, not a prefix of a longer number
        assert names("turn 017") == []  # a span's name is not its input or output
        assert names("content") == []  # the messages' keys are not searched, their values are
        assert len(store.list_traces(100, query=TraceQuery(text="number", status="error"))) == 4
        assert names("%") == [] and names('"') == []
    finally:
        store.close()


def test_it_follows_the_writer_from_its_watermark(tmp_path: Path) -> None:
    db = str(tmp_path / "live.db")
    _record(db, 3)
    ix = TraceIndex(db)
    try:
        ix.catch_up(10**6)
        client = tracewire.init(sink="sqlite", db=db)
        s = tracewire.span("agent", "still running", input="halfway there")
        s.__enter__()
        assert client.flush(10)
        assert ix.catch_up(10**6) == 0
        store = LocalStore(db)
        try:
            top = store.list_traces(1)[0]
            assert (top["name"], top["status"]) == ("still running", "open")
            s.__exit__(None, None, None)
            assert client.flush(10)
            tracewire.shutdown()
            assert store.index_lag() == 1  # the span's end: until then the list falls back to folding
            assert store.list_traces(1)[0]["status"] == "ok"
            assert store.list_traces(1, fresh_within=1)[0]["status"] == "open"  # a caller may allow a lag
            ix.catch_up(10**6)
            assert store.index_lag() == 0 and store.list_traces(1)[0]["status"] == "ok"
            newer = store.newer_traces(TraceQuery(), top["start_ns"] - 1, "", 10)
            assert [r["name"] for r in newer] == ["still running"]
            assert store.newer_traces(TraceQuery(), top["start_ns"], top["trace_id"], 10) == []
        finally:
            store.close()
    finally:
        ix.stop()


def test_bounded_steps_and_a_version_change_rebuild(db: str) -> None:
    ix = TraceIndex(db)
    try:
        left = ix.catch_up(5)
        assert 0 < left < 200
        store = LocalStore(db)
        try:
            assert store.index_lag() == left
            assert len(store.list_traces(100)) == 40  # lagging: answered from the events, complete
            assert len(store.list_traces(100, query=TraceQuery(sort="cost"))) < 40  # what is indexed so far
            assert ix.catch_up(10**6) == 0
            conn = sqlite3.connect(db)
            conn.execute("UPDATE read_state SET value = 0 WHERE name = 'version'")
            conn.commit()
            conn.close()
            assert store.index_lag() is None  # another version's tables are not read
        finally:
            store.close()
    finally:
        ix.stop()
    again = TraceIndex(db)
    try:
        assert again.catch_up(10**6) == 0
        store = LocalStore(db)
        try:
            assert len(store.list_traces(100, query=TraceQuery(sort="cost"))) == 40
        finally:
            store.close()
    finally:
        again.stop()


def test_two_indexers_beside_a_writer(tmp_path: Path) -> None:
    """Two viewers on one file and an app writing: each event is taken in once, and the writer never fails."""
    db = str(tmp_path / "busy.db")
    _record(db, 2)
    a, b = TraceIndex(db), TraceIndex(db)
    a.start(idle_s=0.01)
    b.start(idle_s=0.01)
    try:
        writer = threading.Thread(target=_record, args=(db, 60, 2))
        writer.start()
        writer.join(120)
        assert not writer.is_alive()
    finally:
        a.stop()
        b.stop()
    ix = TraceIndex(db)
    try:
        assert ix.catch_up(10**6) == 0
    finally:
        ix.stop()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM trace_summaries").fetchone()[0] == 62
        assert conn.execute("SELECT COUNT(*) FROM trace_text").fetchone()[0] == 62
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        assert conn.execute("SELECT SUM(events) FROM trace_summaries").fetchone()[0] == events
    finally:
        conn.close()
