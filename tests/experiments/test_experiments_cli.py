"""`tracewire experiments list|show|compare` and `tracewire datasets list|show|add`, run as the command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import tracewire


def _cli(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracewire.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "TRACEWIRE_DB": db, "NO_COLOR": "1"}, timeout=60)


def _normal(text: str) -> str:
    text = re.sub(r"\d+(\.\d+)? (ms|s)\b", "<t>", text)
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<when>", text)


def exact(input: Any, output: Any, expected: Any) -> bool:
    return bool(output == expected)


def _two_runs(db: str) -> tuple[Any, Any]:
    tracewire.init(db=db)
    ds = tracewire.dataset("words", items=[{"id": w, "input": w, "expected": w.upper()}
                                           for w in ("alpha", "beta", "gamma")])

    def v2(word: str) -> str:
        if word == "beta":
            raise RuntimeError("beta is down")
        return word.upper()

    a = tracewire.experiment("upper-v1", ds, lambda w: w.upper() if w != "gamma" else w, [exact])
    b = tracewire.experiment("upper-v2", ds, v2, [exact])
    tracewire.shutdown()
    return a, b


def test_experiments_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    a, b = _two_runs(db)

    listed = _cli("experiments", "list", db=db)
    assert listed.returncode == 0 and listed.stderr == f"store: {db}\n"
    assert [" ".join(line.split()) for line in _normal(listed.stdout).splitlines()] == [
        "run started name dataset items errors timeouts scores cost p50",
        f"{b.run_id[:8]} <when> upper-v2 words v1 3 1 0 exact 1.000 - <t>",
        f"{a.run_id[:8]} <when> upper-v1 words v1 3 0 0 exact 0.667 - <t>",
    ]

    shown = _cli("experiments", "show", "upper-v2", db=db)
    assert shown.returncode == 0
    assert _normal(shown.stdout) == f"""\
upper-v2  run {b.run_id}  dataset words v1  3 items
ok 2  errors 1  timeouts 0
exact    mean 1.000  count 2
cost     -
latency  p50 <t>  p95 <t>

item   input  output  exact  status              cost  latency
alpha  alpha  ALPHA   1      ok                  -     <t>
beta   beta   -       -      error RuntimeError  -     <t>
gamma  gamma  GAMMA   1      ok                  -     <t>
"""
    by_id = _cli("experiments", "show", a.run_id[:10], "--json", db=db)
    doc = json.loads(by_id.stdout)
    assert doc["name"] == "upper-v1" and doc["summary"]["scores"] == {"exact": {"mean": 2 / 3, "count": 3}}
    assert [r["scores"] for r in doc["rows"]] == [{"exact": 1.0}, {"exact": 1.0}, {"exact": 0.0}]

    compared = _cli("experiments", "compare", "upper-v1", "upper-v2", db=db)
    assert compared.returncode == 0
    assert _normal(compared.stdout) == f"""\
A  upper-v1  run {a.run_id}  dataset words v1  3 items
B  upper-v2  run {b.run_id}  dataset words v1  3 items

regression 1  improvement 1  changed 0  added 0  removed 0  same 1

change       item   input  exact       status                   cost  latency
regression   beta   beta   1 → -       ok → error RuntimeError  -     <t> → <t>
improvement  gamma  gamma  0 → 1 (+1)  ok                       -     <t> → <t>
same         alpha  alpha  1           ok                       -     <t> → <t>

aggregates (A → B)
  exact     mean 0.667 → 1.000 (+0.333)  count 3 → 2
  errors    0 → 1 (+1)
  timeouts  0 → 0 (+0)
  cost      - → -
  latency   p50 <t> → <t>  p95 <t> → <t>
"""
    as_json = json.loads(_cli("experiments", "compare", "upper-v1", "upper-v2", "--json", db=db).stdout)
    assert as_json["counts"] == {"regression": 1, "improvement": 1, "changed": 0, "added": 0, "removed": 0, "same": 1}
    assert as_json["aggregates"]["errors"] == {"a": 0, "b": 1}

    missing = _cli("experiments", "show", "upper-v9", db=db)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.endswith(f"tracewire: no experiment or run id 'upper-v9' in {db}\n")


def test_datasets_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": "one", "input": "1+1?", "expected": "2"}\n{"id": "two", "input": "2+2?", "expected": "4"}\n')
    more = tmp_path / "more.csv"
    more.write_text("id,input,expected\nthree,3+3?,6\n")

    added = _cli("datasets", "add", "sums", "--file", str(items), db=db)
    assert (added.returncode, added.stdout) == (0, "sums v1: 2 items (2 added)\n")
    assert _cli("datasets", "add", "sums", "--file", str(more), db=db).stdout == "sums v2: 3 items (1 added)\n"
    assert _cli("datasets", "list", db=db).stdout.splitlines()[1].startswith("sums           2      3  20")
    assert _cli("datasets", "show", "sums", db=db).stdout == (
        "sums v2  3 items\n\n"
        "item   input  expected  from trace\n"
        "one    1+1?   2         -\n"
        "two    2+2?   4         -\n"
        "three  3+3?   6         -\n")
    assert _cli("datasets", "show", "sums", "--version", "1", db=db).stdout.splitlines()[0] == "sums v1  2 items"

    # what the user got wrong: one line, and an exit code that says so
    no_file = _cli("datasets", "add", "sums", "--file", str(tmp_path / "none.jsonl"), db=db)
    assert no_file.returncode == 1 and "no such file" in no_file.stderr
    wrong = _cli("datasets", "add", "sums", "--file", str(items), "--expected", "2", db=db)
    assert wrong.returncode == 2 and "--expected goes with --from-trace" in wrong.stderr
    neither = _cli("datasets", "add", "sums", db=db)
    assert neither.returncode == 2 and "one of the arguments --file --from-trace is required" in neither.stderr
