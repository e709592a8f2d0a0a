"""The read API's search, sorts and facet filters on the real collector, on SQLite and PostgreSQL:
`q` (a phrase of the events' inputs/outputs), `framework`, `meta`, `sort`, `dir`, and the back-fill of
the search index when a database from before it is opened."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from collector_harness import Collector, make_event, start_collector

from tests.server.conftest import fresh_pg_database
from tracewire.model import attributes as A
from tracewire.server.backends import open_store
from tracewire.server.keys import create_key
from tracewire.server.store_sql import MAX_TEXT_CHUNK
from tracewire.wire import NewKey

T0 = 1_700_000_000_000_000_000


def _trace(tid: str, start: int, *, duration: int = 1000, input: Any = None, output: Any = None,
           session: str | None = None, framework: str = "manual", metadata: dict[str, Any] | None = None,
           tokens: tuple[int, int] = (0, 0), cost: float = 0.0, fail: bool = False) -> list[dict[str, Any]]:
    """A root chain span with one LLM call: the call carries the given text, usage and cost."""
    root = {"span_id": f"{tid}-root", "kind": "chain", "name": f"run-{tid}", "session_id": session,
            "framework": framework}
    if metadata is not None:
        root["metadata"] = metadata
    llm = {"span_id": f"{tid}-llm", "parent_span_id": f"{tid}-root", "kind": "llm", "name": "chat",
           "session_id": session, "framework": framework}
    end = "error" if fail else "end"
    return [
        make_event(tid, type="chain.start", phase="start", time=start, input={"task": tid}, **root),
        make_event(tid, type="llm.start", phase="start", time=start + 10, input=input,
                   attributes={A.REQUEST_MODEL: "model-x"}, **llm),
        make_event(tid, type="llm.end", phase="end", time=start + 20, input=None, output=output,
                   attributes={A.USAGE_INPUT_TOKENS: tokens[0], A.USAGE_OUTPUT_TOKENS: tokens[1], A.COST_USD: cost},
                   **llm),
        make_event(tid, type=f"chain.{end}", phase=end, time=start + duration, input=None, **root),
    ]


def _ids(collector: Collector, key: NewKey, **params: Any) -> list[str]:
    r = collector.get("/v1/traces", key, limit=100, **params)
    assert r.status_code == 200, r.text
    return [t["trace_id"] for t in r.json()["traces"]]


@pytest.fixture
def stored(collector: Collector, key: NewKey) -> NewKey:
    batch = [
        *_trace("t-a", T0, duration=5000, input=[{"role": "user", "content": "The Quick  Brown fox"}], output="jumps",
                session="s1", framework="langchain", metadata={"env": "prod", "team": "search"},
                tokens=(100, 50), cost=0.02),
        # the phrase's words in two strings: no phrase spans them
        *_trace("t-b", T0 + 1000, duration=1000, input={"a": "quick", "b": "brown fox"}, session="s1",
                framework="openai", metadata={"env": "dev"}, tokens=(10, 5), cost=0.5),
        # the words with other punctuation between them
        *_trace("t-c", T0 + 2000, duration=9000, output="QUICK-BROWN!!", session="s2", framework="langchain",
                metadata={"env": "prod"}, tokens=(1000, 0), cost=0.001, fail=True),
        *_trace("t-d", T0 + 3000, duration=3000, output="nothing to see", session="s2", tokens=(1, 1), cost=0.0),
    ]
    assert collector.post(key, batch).json()["accepted"] == len(batch)
    # another project holds the same phrase: never listed here
    other = collector.new_key()
    assert collector.post(other, _trace("t-other", T0, output="the quick brown fox")).json()["accepted"] == 4
    return key


def test_phrase_search_matches_the_phrase_as_typed_in_one_string(collector: Collector, stored: NewKey) -> None:
    key = stored
    assert _ids(collector, key, q="quick brown") == ["t-a"]
    assert _ids(collector, key, q="QUICK   brown FOX") == ["t-a"]  # any case, runs of space as one
    assert _ids(collector, key, q="brown fox") == ["t-b", "t-a"]
    assert _ids(collector, key, q="quick-brown") == ["t-c"]
    assert _ids(collector, key, q="!!") == ["t-c"]  # no word to look up: the substring check alone
    assert _ids(collector, key, q="jumps") == ["t-a"]  # outputs too
    assert _ids(collector, key, q="t-d") == ["t-d"]  # the root span's input
    assert _ids(collector, key, q="fox jumps") == []  # input and output are separate strings
    assert _ids(collector, key, q="zebra") == []
    # a batch of duplicates and a new event: only the new one is indexed, and at once
    late = make_event("t-d", type="tool.start", phase="start", time=T0 + 3500, span_id="t-d-tool", kind="tool",
                      input={"q": "a late arrival"}, session_id="s2")
    stored_a = collector.get("/v1/traces/t-a", key).json()["events"]
    doc = collector.post(key, [*stored_a, late]).json()
    assert doc["accepted"] == 1 and doc["duplicate"] == 4, doc
    assert _ids(collector, key, q="late arrival") == ["t-d"]
    # with the other filters, and paged
    assert _ids(collector, key, q="brown", session_id="s1") == ["t-b", "t-a"]
    assert _ids(collector, key, q="brown", status="error") == ["t-c"]
    first = collector.get("/v1/traces", key, q="brown", limit=2).json()
    assert [t["trace_id"] for t in first["traces"]] == ["t-c", "t-b"] and first["next_offset"] == 2
    rest = collector.get("/v1/traces", key, q="brown", limit=2, offset=2).json()
    assert [t["trace_id"] for t in rest["traces"]] == ["t-a"] and rest["next_offset"] is None


def test_long_strings_are_searchable_in_overlapping_pieces(collector: Collector, key: NewKey) -> None:
    """Strings go in as texts of at most MAX_TEXT_CHUNK characters, a longer one in pieces overlapping by
    the longest phrase: a phrase anywhere in it, across a piece's edge too, is found."""
    long = " ".join(f"w{i}" for i in range(40_000))  # ~270 K characters: five pieces
    other = " ".join(f"b{i}" for i in range(5_000))
    events = _trace("t-big", T0, input=[long, other, "the needle in the haystack"], output=long)
    assert collector.post(key, events, gzip=True).json()["accepted"] == 4
    assert _ids(collector, key, q="needle in the haystack") == ["t-big"]
    edge = long[:MAX_TEXT_CHUNK].count(" ")  # the word the first piece ends in
    for i in (0, edge - 5, edge, 20_000, 39_990):  # across the first piece's edge, and the end
        phrase = " ".join(f"w{j}" for j in range(i, min(i + 10, 40_000)))
        assert _ids(collector, key, q=phrase) == ["t-big"], phrase
    assert _ids(collector, key, q="b4999 the needle") == []  # two strings
    assert _ids(collector, key, q="w39999 b0") == []


def test_framework_and_metadata_filters(collector: Collector, stored: NewKey) -> None:
    key = stored
    assert _ids(collector, key, framework="langchain") == ["t-c", "t-a"]
    assert _ids(collector, key, framework="openai") == ["t-b"]
    assert _ids(collector, key, framework="LangChain") == []  # exact, as the local viewer's
    assert _ids(collector, key, meta="env=prod") == ["t-c", "t-a"]
    assert _ids(collector, key, meta=["env=prod", "team=search"]) == ["t-a"]  # every one must match
    assert _ids(collector, key, meta=" env = dev ") == ["t-b"]
    assert _ids(collector, key, meta="env=") == []
    assert _ids(collector, key, meta="env=prod", framework="langchain", q="quick") == ["t-c", "t-a"]
    assert _ids(collector, key, meta="env=prod", tag="none") == []


@pytest.mark.parametrize(("sort", "order"), [
    ("start", ["t-d", "t-c", "t-b", "t-a"]),
    ("latency", ["t-c", "t-a", "t-d", "t-b"]),
    ("tokens", ["t-c", "t-a", "t-b", "t-d"]),
    ("cost", ["t-b", "t-a", "t-c", "t-d"]),
])
def test_sorts_both_ways_and_paging_over_the_order(collector: Collector, stored: NewKey, sort: str,
                                                   order: list[str]) -> None:
    key = stored
    assert _ids(collector, key, sort=sort) == order
    assert _ids(collector, key, sort=sort, dir="desc") == order
    assert _ids(collector, key, sort=sort, dir="asc") == order[::-1]
    pages = []
    offset: int | None = 0
    while offset is not None:
        doc = collector.get("/v1/traces", key, sort=sort, dir="asc", limit=3, offset=offset).json()
        pages.append([t["trace_id"] for t in doc["traces"]])
        offset = doc["next_offset"]
    assert pages == [order[::-1][:3], order[::-1][3:]]
    # sorted, and filtered by what only folding a trace tells
    assert _ids(collector, key, sort=sort, dir="asc", status="ok") == [t for t in order[::-1] if t != "t-c"]
    assert _ids(collector, key, sort=sort, framework="langchain") == [t for t in order if t in ("t-a", "t-c")]


def test_bad_values_are_refused_with_a_reason(collector: Collector, key: NewKey) -> None:
    for params in ({"sort": "size"}, {"dir": "up"}, {"meta": "no-equals"}, {"meta": "=v"}, {"q": "a\x00b"},
                   {"framework": "x\x00"}, {"q": "x" * 1001}):
        r = collector.get("/v1/traces", key, **params)
        assert r.status_code == 400, (params, r.text)
        err = r.json()["error"]
        assert err["code"] == "bad_request" and err["message"], params


def test_openapi_documents_the_new_parameters(collector: Collector) -> None:
    spec = collector.http.get(collector.url + "/openapi.json", timeout=30).json()
    params = {p["name"]: p for p in spec["paths"]["/v1/traces"]["get"]["parameters"]}
    assert {"q", "framework", "meta", "sort", "dir"} <= set(params)
    assert "phrase" in params["q"]["description"]


def test_a_database_from_before_search_is_back_filled_on_start(
        request: pytest.FixtureRequest, collector: Collector, tmp_path: Path) -> None:
    """The search migration on a database that already holds events: they become searchable shortly after
    the collector starts (a back-fill in the background), and new events at once."""
    drop = None
    if collector.backend == "sqlite":
        db = f"sqlite:///{tmp_path}/old.db"
    else:
        db, drop = fresh_pg_database(request.getfixturevalue("pg_admin_dsn"))
    try:
        store = open_store(db)
        key = create_key(store, "old-project", ("ingest", "read"))
        store.close()
        c = start_collector(collector.backend, db, tmp_path)
        try:
            events = [e for i in range(30) for e in _trace(f"old-{i}", T0 + i, output=f"answer number {i}",
                                                           framework="langchain")]
            assert c.post(key, events).json()["accepted"] == len(events)
        finally:
            c.close()
        # back to the state the search migration leaves a database of older events in: none indexed yet
        store = open_store(db)
        with store._conn() if collector.backend == "sqlite" else store._pool.connection() as conn:  # type: ignore[attr-defined]
            for table in ("event_text", "trace_facets"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("UPDATE search_backfill SET upto = (SELECT max(seq) FROM events), done = 0")
        store.close()

        c = start_collector(collector.backend, db, tmp_path)
        try:
            deadline = time.monotonic() + 30
            while _ids(c, key, q="answer number 7") != ["old-7"] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _ids(c, key, q="answer number 7") == ["old-7"]
            assert _ids(c, key, q="answer number") == [f"old-{i}" for i in reversed(range(30))]
            assert len(_ids(c, key, framework="langchain")) == 30
            assert c.post(key, _trace("new", T0 + 100, output="fresh answer")).json()["accepted"] == 4
            assert _ids(c, key, q="fresh answer") == ["new"]
        finally:
            c.close()
        store = open_store(db)
        assert not store.search_backfill_pending()  # type: ignore[attr-defined]
        store.close()
    finally:
        if drop is not None:
            drop()
