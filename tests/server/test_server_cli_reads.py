"""`tracewire traces/show/sessions/export --server`: filters, totals, sessions, id prefixes and short ids
answered by the real collector's read API (SQLite and PostgreSQL), over events the SDK's http sink sent."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from collector_harness import Collector

import tracewire
from tests.runs import agent_run
from tracewire.cli.main import main

TWIN_A = "abcd0000000000000000000000000001"
TWIN_B = "abcd0000000000000000000000000002"
LONE = "abcd1111111111111111111111111111"


def _fill(collector: Collector, key: Any, spool: Path) -> None:
    client = tracewire.init(sink="http", endpoint=collector.url, api_key=key.api_key,
                            signing_key=key.signing_secret, spool_dir=str(spool), flush_interval=0.01)
    try:
        runs = ((TWIN_A, "twin-a", "s-1", "ada", ["prod"], "gpt-4o-mini", False),
                (TWIN_B, "twin-b", "s-1", "ada", ["prod", "eu"], "gpt-4o", True),
                (LONE, "lone", "s-2", "bob", [], "claude-3-5-haiku", False))
        for trace_id, name, session, user, tags, model, fail in runs:
            with tracewire.session(session_id=session, user_id=user, tags=tags):
                agent_run(name, model, (1000, 100), 0.001, fail=fail, parent=tracewire.SpanContext(trace_id, "00000000000000aa"))
            time.sleep(0.002)
        assert client.flush(10)
        collector.wait_for(key.project, 14)
    finally:
        tracewire.shutdown()
    assert collector.count(key.project) == 14


@pytest.fixture
def remote(collector: Collector, key: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    _fill(collector, key, tmp_path / "spool")
    monkeypatch.setenv("TRACEWIRE_API_KEY", key.api_key)
    return collector.url


def _cli(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*args, "--server", url])
    out, err = capsys.readouterr()
    assert err.startswith(f"collector: {url}\n")
    return code, out, err


def _ids(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines()[1:-1]]


def test_traces_filters_totals_and_short_ids(remote: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, remote, "traces")
    assert code == 0 and _ids(out) == ["abcd1111", TWIN_B, TWIN_A]  # twins need every character
    assert re.split(r"\s{2,}", out.splitlines()[-1]) == ["total", "3 traces", "3", "3,000 / 300", "$0.003",
                                                         "1 error"]
    assert re.split(r"\s{2,}", out.splitlines()[2])[-1] == "error (tool get_weather)"
    assert _ids(_cli(capsys, remote, "traces", "--tag", "prod", "--tag", "eu")[1]) == [TWIN_B]
    assert _ids(_cli(capsys, remote, "traces", "--model", "GPT-4O")[1]) == [TWIN_B, TWIN_A]
    assert _ids(_cli(capsys, remote, "traces", "--status", "ok")[1]) == ["abcd1111", TWIN_A]
    assert _ids(_cli(capsys, remote, "traces", "--session", "s-2")[1]) == ["abcd1111"]
    assert _ids(_cli(capsys, remote, "traces", "--user", "ada", "--name", "twin-a")[1]) == [TWIN_A]
    assert _ids(_cli(capsys, remote, "traces", "--since", "2999-01-01")[1]) == []
    assert _ids(_cli(capsys, remote, "traces", "--full-ids")[1])[0] == LONE


def test_prefixes(remote: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, remote, "show", "abcd1")
    assert code == 0 and out.splitlines()[0] == f"trace   {LONE}  agent lone"
    code, out, err = _cli(capsys, remote, "show", "abcd")
    assert code == 2 and err.splitlines()[-1] == (
        f"tracewire: ambiguous id 'abcd': 3 traces match ({TWIN_A} twin-a, {TWIN_B} twin-b, abcd1111 lone)")
    code, _, err = _cli(capsys, remote, "show", "9999")
    assert (code, err.splitlines()[-1]) == (1, "tracewire: no trace matches '9999'")
    code, out, _ = _cli(capsys, remote, "export", "--trace", "abcd1")
    assert code == 0 and {json.loads(x)["trace_id"] for x in out.splitlines()} == {LONE}


def test_sessions(remote: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, remote, "sessions")
    rows = [re.split(r"\s{2,}", x) for x in out.splitlines()[1:]]
    assert code == 0 and [r[:2] + r[4:] for r in rows] == [["s-2", "bob", "1", "1", "1,000 / 100", "$0.001", "0"],
                                                           ["s-1", "ada", "2", "2", "2,000 / 200", "$0.002", "1"]]
    assert [r[0] for r in (re.split(r"\s{2,}", x) for x in _cli(capsys, remote, "sessions", "--user", "ada")[1]
                           .splitlines()[1:])] == ["s-1"]


def test_the_trace_ids_endpoint(collector: Collector, key: Any, remote: str) -> None:
    r = collector.get("/v1/trace-ids", key, prefix="abcd00")
    assert r.status_code == 200 and r.json() == {"prefix": "abcd00", "count": 2, "traces": [
        {"trace_id": TWIN_A, "short_id": TWIN_A, "name": "twin-a"},
        {"trace_id": TWIN_B, "short_id": TWIN_B, "name": "twin-b"}]}
    assert collector.get("/v1/trace-ids", key, prefix="ab").status_code == 400  # too short to be a prefix
    other = collector.new_key()  # another project sees none of them
    assert collector.get("/v1/trace-ids", other, prefix="abcd").json()["count"] == 0
