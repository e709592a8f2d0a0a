"""The trace list's search, filters, sorts and live rows over HTTP, on a store recorded through the `sqlite`
sink: every query string parameter against what the recorded traces hold."""

from __future__ import annotations

import datetime as dt
import re
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

import tracewire
from tracewire.model import attributes as A
from tracewire.read.local import LocalStore

PROMPTS = {4: "Please cancel the blue kettle subscription today", 5: "The kettle is blue; cancel my subscription"}


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200
        return str(r.read().decode())


def _names(html: str) -> list[str]:
    return re.findall(r'class="trace-link" href="[^"]+">([^<]+)</a>', html)


def _indexed(db: Path) -> None:
    """Wait for the viewer's background indexer to hold every event: a page asked while its round is
    running reads what is indexed so far (and says so), which is not what these tests check."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        store = LocalStore(str(db))
        try:
            if store.index_lag() == 0:
                return
        finally:
            store.close()
        time.sleep(0.05)
    raise AssertionError("the viewer did not index the store")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Ten agent turns with an LLM call each: tags, models, costs, tokens, metadata and prompts differ;
    turn 6 fails, turn 3 also carries a point event of another framework."""
    db = tmp_path / "tracewire.db"
    client = tracewire.init(sink="sqlite", db=str(db))
    for i in range(10):
        with tracewire.session(session_id=f"s-{i % 2}", user_id=f"u-{i % 3}"):
            try:
                with tracewire.span("agent", f"agent {i}", tags=["prod"] if i % 2 == 0 else ["beta"],
                                    metadata={"team": "red" if i < 5 else "blue"}):
                    prompt = PROMPTS.get(i, f"Where is my parcel, order ord-{i:04d}?")
                    with tracewire.span("llm", "chat", input=[{"role": "user", "content": prompt}], attributes={
                            A.REQUEST_MODEL: "claude-3-5-haiku" if i % 3 == 0 else "gpt-4o-mini",
                            A.USAGE_INPUT_TOKENS: 100 * ((i * 3) % 10), A.USAGE_OUTPUT_TOKENS: 10,
                            A.COST_USD: 0.001 * ((i * 7) % 10)}) as llm:
                        llm.set_output({"role": "assistant", "content": f"Reply {i}"})
                    if i == 3:
                        tracewire.record("log", name="handoff", output="passed on", framework="crewai")
                    if i == 6:
                        with tracewire.span("tool", "lookup_order"):
                            raise TimeoutError("order service timed out")
            except TimeoutError:
                pass
    assert client.flush(10)
    tracewire.shutdown()
    return db


def test_every_filter_and_sort(store: Path, viewer: Any) -> None:
    base = viewer(store).url
    _indexed(store)

    def names(**query: str) -> list[str]:
        return _names(_get(base + "?" + urlencode(query)))

    everything = names()
    assert everything == [f"agent {i}" for i in reversed(range(10))]
    page = _get(base)
    assert 'name="q"' in page and ">Search <input" in page
    for field in ("name", "status", "session", "user", "tag", "model", "framework", "meta", "from", "to", "sort", "dir"):
        assert f'name="{field}"' in page, field
    assert names(q="blue kettle subscription") == ["agent 4"]  # a phrase, not the same words in any order
    assert names(q="BLUE   Kettle") == ["agent 4"]
    assert names(q="kettle") == ["agent 5", "agent 4"]
    assert names(q="ord-0007") == ["agent 7"]
    assert names(q="Reply 9") == ["agent 9"]  # outputs too
    assert names(q="parcel", tag="beta") == ["agent 9", "agent 7", "agent 3", "agent 1"]
    assert names(q="no such words anywhere") == []
    assert names(name="agent 1") == ["agent 1"]
    assert names(status="error") == ["agent 6"]
    assert names(status="ok") == [n for n in everything if n != "agent 6"]
    assert names(session="s-1") == ["agent 9", "agent 7", "agent 5", "agent 3", "agent 1"]
    assert names(user="u-2") == ["agent 8", "agent 5", "agent 2"]
    assert names(tag="prod") == ["agent 8", "agent 6", "agent 4", "agent 2", "agent 0"]
    assert names(model="claude") == ["agent 9", "agent 6", "agent 3", "agent 0"]
    assert names(framework="crewai") == ["agent 3"]
    assert names(meta="team=blue") == ["agent 9", "agent 8", "agent 7", "agent 6", "agent 5"]
    assert names(meta="team=green") == []
    assert names(**{"from": "1h"}) == everything and names(to="2020-01-01") == []
    store_ = LocalStore(str(store))
    try:
        rows = {r["name"]: r for r in store_.list_traces(10)}
    finally:
        store_.close()
    middle = dt.datetime.fromtimestamp(rows["agent 5"]["start_ns"] / 1e9, dt.timezone.utc)
    later = (middle - dt.timedelta(microseconds=1)).isoformat()
    assert names(**{"from": later}) == [f"agent {i}" for i in (9, 8, 7, 6, 5)]
    assert names(to=later) == [f"agent {i}" for i in (4, 3, 2, 1, 0)]
    assert names(sort="cost") == [f"agent {i}" for i in (7, 4, 1, 8, 5, 2, 9, 6, 3, 0)]  # cost 0.001·(7i mod 10)
    assert names(sort="cost", dir="asc") == [f"agent {i}" for i in (0, 3, 6, 9, 2, 5, 8, 1, 4, 7)]
    assert names(sort="tokens") == [f"agent {i}" for i in (3, 6, 9, 2, 5, 8, 1, 4, 7, 0)]  # 100·(3i mod 10) in
    latencies = sorted(everything, key=lambda n: (rows[n]["duration_ms"], rows[n]["start_ns"]), reverse=True)
    assert names(sort="latency") == latencies
    assert names(sort="start", dir="asc") == list(reversed(everything))
    sorted_page = _get(base + "?sort=cost&tag=prod")
    assert 'data-sort="cost" href="/?tag=prod&amp;sort=cost&amp;dir=asc">Cost ↓' in sorted_page  # its header reverses it
    assert "data-live" not in sorted_page  # only the newest-first list grows at the top


def test_bad_values_are_said_not_raised(store: Path, viewer: Any) -> None:
    base = viewer(store).url
    page = _get(base + "?" + urlencode({"from": "last tuesday", "meta": "no-equals", "sort": "bogus", "dir": "up"}))
    assert "from: &#x27;last tuesday&#x27; is not a time" in page and "meta: &#x27;no-equals&#x27; is not key=value" in page
    assert len(_names(page)) == 10  # what could not be used is left out


def test_live_rows_after_the_newest_shown(store: Path, viewer: Any) -> None:
    server = viewer(store)
    _indexed(store)
    page = _get(server.url + "?tag=prod")
    after = re.search(r'data-after="([^"]+)"', page)
    live = re.search(r'data-live="([^"]+)"', page)
    assert after and live and live.group(1) == "/live?tag=prod"
    assert _get(server.url + "live?tag=prod&after=" + after.group(1)) == ""
    assert _get(server.url + "live?after=99999999999999999999999:x") == ""  # past any time: nothing, no error
    assert len(_names(_get(server.url + "live?after=garbage"))) == 10  # no usable cursor: from the start
    client = tracewire.init(sink="sqlite", db=str(store))
    for name, tags in (("late prod", ["prod"]), ("late beta", ["beta"])):
        with tracewire.span("agent", name, tags=tags):
            pass
    assert client.flush(10)
    tracewire.shutdown()
    _indexed(store)
    rows = _get(server.url + "live?tag=prod&after=" + after.group(1))
    assert _names(rows) == ["late prod"] and rows.startswith('<tr class="trace ok"')
    assert _names(_get(server.url + "live?after=" + after.group(1))) == ["late beta", "late prod", "agent 9"]  # agent 9 is not tagged prod
