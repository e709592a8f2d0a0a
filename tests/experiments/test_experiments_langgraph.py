"""A 20-item dataset run twice through a real LangGraph agent (scripted chat model at the model boundary),
the second time with some answers changed: each item's trace is the agent's normal trace under the
experiment's root, and `tracewire experiments compare` lists exactly the items whose score changed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage

import tracewire
from tests.langchain.lc_fakes import ChatScripted, usage
from tracewire.cli.main import main
from tracewire.integrations.langchain import TracewireCallbackHandler
from tracewire.read.fold import tree
from tracewire.read.local import LocalStore

CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Egypt", "Cairo"),
            ("Peru", "Lima"), ("Kenya", "Nairobi"), ("Chile", "Santiago"), ("Cuba", "Havana"), ("Iran", "Tehran"),
            ("Iraq", "Baghdad"), ("Mali", "Bamako"), ("Oman", "Muscat"), ("Laos", "Vientiane"), ("Fiji", "Suva"),
            ("Chad", "N'Djamena"), ("Togo", "Lome"), ("Niger", "Niamey"), ("Nepal", "Kathmandu"),
            ("Qatar", "Doha")]
ITEMS = [{"id": f"q{n:02d}", "input": f"Capital of {country}?", "expected": city, "metadata": {"region": "world"}}
         for n, (country, city) in enumerate(CAPITALS, 1)]
CITY = dict(CAPITALS)
# Version 1 gets Peru wrong; version 2 gets it right, gets Italy and Togo wrong, and rambles about Cuba.
WRONG_V1 = {"Peru": "Cusco"}
WRONG_V2 = {"Italy": "Milan", "Togo": "Kara"}
VERBOSE_V2 = {"Cuba"}


def responder(wrong: dict[str, str], verbose: set[str]) -> Any:
    def respond(messages: list[BaseMessage]) -> AIMessage:
        country = str(messages[-1].content).removeprefix("Capital of ").rstrip("?")
        city = wrong.get(country, CITY[country])
        if country in verbose:
            return AIMessage(f"The capital of {country}, a lovely island nation, is {city}.",
                             usage_metadata=usage(20, 30))
        return AIMessage(f"{city}.", usage_metadata=usage(20, 8))

    return respond


def agent_task(wrong: dict[str, str], verbose: set[str]) -> Any:
    agent = create_agent(ChatScripted(respond=responder(wrong, verbose)), tools=[])

    def task(question: str) -> str:
        result = agent.invoke({"messages": [("user", question)]}, config={"callbacks": [TracewireCallbackHandler()]})
        return str(result["messages"][-1].content)

    return task


def correct(input: Any, output: str, expected: str) -> bool:
    return expected.lower() in output.lower()


def concise(input: Any, output: str, expected: Any) -> float:
    return 1.0 if len(output) <= 20 else 0.5


def _normal(text: str) -> str:
    """Latencies vary from run to run: each becomes <t>."""
    return re.sub(r"\d+(\.\d+)? (ms|s)\b", "<t>", text)


def test_two_runs_of_a_langgraph_agent_compare_item_by_item(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "store.db")
    tracewire.init(db=db)
    ds = tracewire.dataset("capitals", items=ITEMS)
    assert (ds.name, ds.version, len(ds)) == ("capitals", 1, 20)

    v1 = tracewire.experiment("agent-v1", ds, agent_task(WRONG_V1, set()), evaluators=[correct, concise],
                              concurrency=4)
    v2 = tracewire.experiment("agent-v2", ds, agent_task(WRONG_V2, VERBOSE_V2), evaluators=[correct, concise],
                              concurrency=4)
    assert tracewire.shutdown()

    # the results, item by item
    assert [r.item_id for r in v1.rows] == [f"q{n:02d}" for n in range(1, 21)]
    assert all(r.status == "ok" and r.error is None for r in v1.rows + v2.rows)
    assert v1.rows[5].output == "Cusco." and v1.rows[5].scores == {"correct": 0.0, "concise": 1.0}
    assert v2.rows[8].scores == {"correct": 1.0, "concise": 0.5}
    assert v1.summary["scores"] == {"correct": {"mean": 0.95, "count": 20}, "concise": {"mean": 1.0, "count": 20}}
    assert v2.summary["scores"] == {"correct": {"mean": 0.9, "count": 20}, "concise": {"mean": 0.975, "count": 20}}
    # cost from the traces' LLM calls (gpt-4o-mini: $0.15 / $0.60 per million tokens)
    assert v1.rows[0].cost == pytest.approx((20 * 0.15 + 8 * 0.60) / 1e6)
    assert v2.rows[8].cost == pytest.approx((20 * 0.15 + 30 * 0.60) / 1e6)
    assert v1.summary["cost_usd"] == pytest.approx(20 * 7.8e-6)
    assert all(r.latency is not None and r.latency > 0 for r in v1.rows)

    # each item's trace: the experiment's root over the agent's own spans, linked to the run and item
    store = LocalStore(db)
    (root,) = tree(store.trace_events(v1.rows[2].trace_id or ""))
    assert (root.kind, root.name, root.status) == ("chain", "experiment:agent-v1", "ok")
    assert root.attributes["tracewire.experiment.name"] == "agent-v1"
    assert root.attributes["tracewire.experiment.run_id"] == v1.run_id
    assert root.attributes["tracewire.experiment.item_id"] == "q03"
    assert root.input == "Capital of Italy?" and root.output == "Rome."
    (agent,) = root.children
    assert (agent.kind, agent.name) == ("agent", "LangGraph")
    assert [(c.kind, c.name, [(g.kind, g.name) for g in c.children]) for c in agent.children] == [
        ("chain", "model", [("llm", "ChatScripted")])]
    assert len({r.trace_id for r in v1.rows + v2.rows}) == 40
    store.close()

    assert main(["experiments", "compare", "agent-v1", "agent-v2", "--db", db]) == 0
    out, err = capsys.readouterr()
    assert err == f"store: {db}\n"
    assert _normal(out) == f"""\
A  agent-v1  run {v1.run_id}  dataset capitals v1  20 items
B  agent-v2  run {v2.run_id}  dataset capitals v1  20 items

regression 3  improvement 1  changed 0  added 0  removed 0  same 16

change       item  input               correct     concise         status  cost                    latency
regression   q03   Capital of Italy?   1 → 0 (-1)  1               ok      $0.0000078              <t> → <t>
regression   q09   Capital of Cuba?    1           1 → 0.5 (-0.5)  ok      $0.0000078 → $0.000021  <t> → <t>
regression   q17   Capital of Togo?    1 → 0 (-1)  1               ok      $0.0000078              <t> → <t>
improvement  q06   Capital of Peru?    0 → 1 (+1)  1               ok      $0.0000078              <t> → <t>
same         q01   Capital of France?  1           1               ok      $0.0000078              <t> → <t>
same         q02   Capital of Japan?   1           1               ok      $0.0000078              <t> → <t>
same         q04   Capital of Spain?   1           1               ok      $0.0000078              <t> → <t>
same         q05   Capital of Egypt?   1           1               ok      $0.0000078              <t> → <t>
same         q07   Capital of Kenya?   1           1               ok      $0.0000078              <t> → <t>
same         q08   Capital of Chile?   1           1               ok      $0.0000078              <t> → <t>
same         q10   Capital of Iran?    1           1               ok      $0.0000078              <t> → <t>
same         q11   Capital of Iraq?    1           1               ok      $0.0000078              <t> → <t>
same         q12   Capital of Mali?    1           1               ok      $0.0000078              <t> → <t>
same         q13   Capital of Oman?    1           1               ok      $0.0000078              <t> → <t>
same         q14   Capital of Laos?    1           1               ok      $0.0000078              <t> → <t>
same         q15   Capital of Fiji?    1           1               ok      $0.0000078              <t> → <t>
same         q16   Capital of Chad?    1           1               ok      $0.0000078              <t> → <t>
same         q18   Capital of Niger?   1           1               ok      $0.0000078              <t> → <t>
same         q19   Capital of Nepal?   1           1               ok      $0.0000078              <t> → <t>
same         q20   Capital of Qatar?   1           1               ok      $0.0000078              <t> → <t>

aggregates (A → B)
  correct   mean 0.950 → 0.900 (-0.050)  count 20 → 20
  concise   mean 1.000 → 0.975 (-0.025)  count 20 → 20
  errors    0 → 0 (+0)
  timeouts  0 → 0 (+0)
  cost      $0.000156 → $0.0001692
  latency   p50 <t> → <t>  p95 <t> → <t>
"""

    # the same comparison from the results themselves, and as JSON
    assert _normal(v1.compare(v2).text()) == _normal(out)
    assert main(["experiments", "compare", "agent-v1", "agent-v2", "--db", db, "--json"]) == 0
    doc = __import__("json").loads(capsys.readouterr().out)
    assert [(i["item_id"], i["change"], i["deltas"]) for i in doc["items"][:4]] == [
        ("q03", "regression", {"correct": -1.0, "concise": 0.0}),
        ("q09", "regression", {"correct": 0.0, "concise": -0.5}),
        ("q17", "regression", {"correct": -1.0, "concise": 0.0}),
        ("q06", "improvement", {"correct": 1.0, "concise": 0.0}),
    ]
    assert doc["counts"]["same"] == 16
