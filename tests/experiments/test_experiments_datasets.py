"""Datasets: from code, JSONL, CSV and recorded traces; versions; ids that survive versions; what is
stored is scrubbed like event content; bad items refused naming what is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tracewire.cli.main import main
from tracewire.experiments import add_items, item_from_trace, items_from_file


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "store.db")
    tracewire.init(db=path)
    yield path
    tracewire.shutdown()


def test_versions_follow_the_items(db: str) -> None:
    items: list[dict[str, Any]] = [{"input": "2+2?", "expected": "4"}, {"input": "3+3?", "expected": "6"}]
    v1 = tracewire.dataset("math", items=items)
    assert (v1.version, [i.input for i in v1]) == (1, ["2+2?", "3+3?"])
    assert tracewire.dataset("math", items=items).version == 1  # the same items: the same version
    v2 = tracewire.dataset("math", items=[*items, {"input": "4+4?", "expected": "8"}])
    assert v2.version == 2 and len(v2) == 3
    v3 = v2.add([{"input": "5+5?", "expected": "10", "metadata": {"level": "easy"}}])
    assert (v3.version, len(v3), v3.items[-1].metadata) == (3, 4, {"level": "easy"})
    # an item keeps its id in every version, so runs on different versions line up
    assert [i.id for i in v1] == [i.id for i in v3.items[:2]]
    assert len({i.id for i in v3}) == 4
    # loading: the newest, or a given version
    assert tracewire.dataset("math").version == 3
    assert [i.input for i in tracewire.dataset("math", version=1)] == ["2+2?", "3+3?"]
    with pytest.raises(LookupError, match="no dataset 'math' version 9"):
        tracewire.dataset("math", version=9)
    with pytest.raises(LookupError, match="no dataset 'nothing'"):
        tracewire.dataset("nothing")
    # a run records the version it ran on
    run = tracewire.experiment("sums", tracewire.dataset("math", version=2), lambda q: "4")
    assert (run.dataset, run.dataset_version, len(run.rows)) == ("math", 2, 3)


def test_repeated_inputs_get_distinct_ids_and_given_ids_are_kept(db: str) -> None:
    ds = tracewire.dataset("dups", items=[{"input": "x"}, {"input": "x"}, {"id": "mine", "input": "y"}])
    first, second, mine = (i.id for i in ds)
    assert second == f"{first}-2" and mine == "mine"


@pytest.mark.parametrize(("items", "message"), [
    (["just text"], "dataset item 0: expected a dict"),
    ([{"expected": 1}], "dataset item 0: 'input' is missing"),
    ([{"input": 1, "expectd": 2}], "dataset item 0: unknown key 'expectd'"),
    ([{"input": 1, "metadata": [1]}], "dataset item 0: 'metadata' must be a dict"),
    ([{"input": 1, "id": "a"}, {"input": 2, "id": "a"}], "dataset item 1: id 'a' is used twice"),
])
def test_bad_items_are_refused_naming_the_item(db: str, items: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tracewire.dataset("bad", items=items)


def test_secrets_in_items_are_scrubbed_before_they_are_stored(db: str) -> None:
    ds = tracewire.dataset("secrets", items=[{"input": {"question": "hi", "api_key": "sk-live-1234567890abcdef"},
                                              "expected": "Bearer abcdefghijklmnopqrstuvwxyz0123456789"}])
    stored = tracewire.dataset("secrets").items[0]
    assert stored.input == {"question": "hi", "api_key": "[REDACTED]"} == ds.items[0].input
    assert stored.expected == "Bearer [REDACTED]"


def test_items_from_jsonl_and_csv(tmp_path: Path, db: str) -> None:
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text('{"input": {"q": "capital of France?"}, "expected": "Paris", "id": "fr"}\n\n'
                     '{"input": "capital of Peru?", "expected": "Lima", "metadata": {"continent": "SA"}}\n')
    csv_file = tmp_path / "items.csv"
    csv_file.write_text('id,input,expected,metadata,difficulty\n'
                        'jp,"capital of Japan, please?",Tokyo,"{""continent"": ""Asia""}",easy\n'
                        ',capital of Chad?,,,hard\n')
    assert items_from_file(jsonl) == [
        {"input": {"q": "capital of France?"}, "expected": "Paris", "id": "fr"},
        {"input": "capital of Peru?", "expected": "Lima", "metadata": {"continent": "SA"}}]
    assert items_from_file(csv_file) == [
        {"id": "jp", "input": "capital of Japan, please?", "expected": "Tokyo",
         "metadata": {"continent": "Asia", "difficulty": "easy"}},
        {"input": "capital of Chad?", "expected": None, "metadata": {"difficulty": "hard"}}]
    ds = add_items("capitals", items_from_file(jsonl))
    ds = add_items("capitals", items_from_file(csv_file))
    assert ds.version == 2 and [i.id for i in ds][:3] == ["fr", ds.items[1].id, "jp"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": 1}\n{"input": \n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not JSON"):
        items_from_file(bad)
    with pytest.raises(ValueError, match="needs an 'input' column"):
        (tmp_path / "x.csv").write_text("question,answer\nq,a\n")
        items_from_file(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="a dataset file is .jsonl or .csv"):
        items_from_file(tmp_path / "items.txt")


def test_items_from_recorded_traces(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with tracewire.span("agent", "support-bot", input={"question": "refund?"}) as sp:
        sp.set_output({"answer": "Refunds take 5 days."})
    with tracewire.span("agent", "support-bot", input={"question": "hours?"}) as other:
        other.set_output({"answer": "9 to 5."})
    assert tracewire.flush()

    item = item_from_trace(sp.trace_id[:20])  # a unique prefix
    assert item == {"input": {"question": "refund?"}, "expected": {"answer": "Refunds take 5 days."},
                    "metadata": {"trace_name": "agent support-bot"}, "source_trace_id": sp.trace_id}
    assert item_from_trace(other.trace_id, expected="9am-5pm")["expected"] == "9am-5pm"

    # the same through the command line, with --expected read as JSON when it is JSON
    assert main(["datasets", "add", "support", "--from-trace", sp.trace_id, "--db", db]) == 0
    assert main(["datasets", "add", "support", "--from-trace", other.trace_id, "--expected", '{"answer": "9-5"}',
                 "--db", db]) == 0
    out, _ = capsys.readouterr()
    assert out == "support v1: 1 item (1 added)\nsupport v2: 2 items (1 added)\n"
    ds = tracewire.dataset("support")
    assert [(i.input, i.expected, i.source_trace_id) for i in ds] == [
        ({"question": "refund?"}, {"answer": "Refunds take 5 days."}, sp.trace_id),
        ({"question": "hours?"}, {"answer": "9-5"}, other.trace_id)]
    assert main(["datasets", "add", "support", "--from-trace", "ffffffffffff", "--db", db]) == 1
    assert "no trace" in capsys.readouterr().err


def test_dataset_json_view(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    tracewire.dataset("tiny", items=[{"id": "a", "input": "hello", "expected": "hi", "metadata": {"k": 1}}])
    assert main(["datasets", "show", "tiny", "--json", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out) == {"name": "tiny", "version": 1, "items": [
        {"id": "a", "input": "hello", "expected": "hi", "metadata": {"k": 1}, "source_trace_id": None}]}
