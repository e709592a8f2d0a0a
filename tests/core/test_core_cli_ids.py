"""Trace ids on the command line: unique prefixes work like git's, lists show the shortest unique prefix."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tracewire.read.local import LocalStore
from tracewire.read.query import short_id

# Time-led ids share their first characters; these share more than any two real ones would.
TWIN_A = "abcd0000000000000000000000000001"
TWIN_B = "abcd0000000000000000000000000002"
LONE = "abcd1111111111111111111111111111"
OTHER = "fe00000000000000000000000000000f"


FRESH: dict[str, str] = {}  # db path -> the id a trace got from the recorder


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "ids.db")
    tracewire.init(db=path)
    for trace_id, name in ((TWIN_A, "twin-a"), (TWIN_B, "twin-b"), (LONE, "lone"), (OTHER, "other")):
        # a span joining a trace whose id is given (as an outside caller's context would)
        with tracewire.span("agent", name, parent=tracewire.SpanContext(trace_id, "00000000000000aa")):
            pass
    with tracewire.span("agent", "fresh") as fresh:
        pass
    assert tracewire.shutdown()
    FRESH[path] = fresh.trace_id
    return path


def test_short_ids_grow_only_as_far_as_neighbours_share(db: str) -> None:
    store = LocalStore(db)
    assert store.short_id(TWIN_A) == TWIN_A and store.short_id(TWIN_B) == TWIN_B  # 31 shared characters
    assert store.short_id(LONE) == "abcd1111"  # at least 8
    assert store.short_id(OTHER) == "fe000000"
    assert short_id("0123456789ab", "0123456789aa", None) == "0123456789ab"
    assert short_id("0123456789ab", "01234567", "0123456799") == "012345678"


def test_traces_lists_short_ids_and_full_ids_on_request(db: str, cli: Any) -> None:
    r = cli("traces", db=db)
    ids = [line.split()[0] for line in r.out.splitlines()[1:-1]]
    fresh = FRESH[db]
    assert sorted(ids) == sorted([TWIN_A, TWIN_B, "abcd1111", "fe000000", fresh[:8]])
    full = cli("traces", "--full-ids", db=db).out.splitlines()[1:-1]
    assert sorted(line.split()[0] for line in full) == sorted([TWIN_A, TWIN_B, LONE, OTHER, fresh])


def test_a_unique_prefix_names_its_trace(db: str, cli: Any) -> None:
    r = cli("show", "abcd1", db=db)
    assert r.code == 0 and r.out.splitlines()[0] == f"trace   {LONE}  agent lone"
    assert cli("show", "FE00", db=db).out.splitlines()[0] == f"trace   {OTHER}  agent other"  # any case
    exported = cli("export", "--trace", "abcd1", db=db)
    assert exported.code == 0 and {json.loads(x)["trace_id"] for x in exported.out.splitlines()} == {LONE}


def test_an_ambiguous_prefix_exits_2_listing_the_candidates(db: str, cli: Any) -> None:
    r = cli("show", "abcd", db=db)
    assert r.code == 2 and r.out == ""
    assert r.err.splitlines()[-1] == (f"tracewire: ambiguous id 'abcd': 3 traces match ({TWIN_A} twin-a, "
                                      f"{TWIN_B} twin-b, abcd1111 lone)")
    r = cli("export", "--trace", "abcd0000", db=db)
    assert r.code == 2 and "ambiguous id 'abcd0000': 2 traces match" in r.err


def test_no_match_exits_1_and_a_bad_prefix_exits_2(db: str, cli: Any) -> None:
    r = cli("show", "9999", db=db)
    assert (r.code, r.err.splitlines()[-1]) == (1, "tracewire: no trace matches '9999'")
    r = cli("show", "abc", db=db)
    assert r.code == 2 and re.search(r"give at least 4 hex characters", r.err)
    assert cli("show", "zzzz", db=db).code == 2
