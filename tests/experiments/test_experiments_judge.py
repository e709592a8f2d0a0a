"""llm_judge: a chat model (scripted at the model boundary) grades each answer; a reply without a
score is that evaluator's error on the item, not a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage

import tracewire
from tests.langchain.lc_fakes import ChatScripted, usage
from tracewire.experiments import llm_judge


def grade(messages: list[BaseMessage]) -> AIMessage:
    prompt = str(messages[-1].content)
    if "Answer to grade: Lima" in prompt:
        return AIMessage("score: 1\nNames the capital.", usage_metadata=usage(60, 6))
    if "Answer to grade: Cusco" in prompt:
        return AIMessage("Score: 0.2 - a city in Peru, but not its capital.", usage_metadata=usage(60, 12))
    return AIMessage("I would rather not say.", usage_metadata=usage(60, 5))


def test_a_scripted_model_judges_each_answer(tmp_path: Path) -> None:
    tracewire.init(db=str(tmp_path / "store.db"))
    judge = llm_judge(ChatScripted(respond=grade).invoke, "names the capital city", name="capital")
    # the task answers with the item's input: three candidate answers to one question
    ds = tracewire.dataset("peru", items=[{"id": a.lower(), "input": a, "expected": "Lima"}
                                          for a in ("Lima", "Cusco", "Arequipa")])
    run = tracewire.experiment("judged", ds, lambda answer: answer, [judge])
    assert [(r.item_id, r.scores) for r in run.rows] == [("lima", {"capital": 1.0}), ("cusco", {"capital": 0.2}),
                                                         ("arequipa", {})]
    assert run.rows[2].evaluator_errors == {
        "capital": "ValueError: the judge's reply holds no score from 0 to 1: 'I would rather not say.'"}
    assert run.summary["scores"] == {"capital": {"mean": pytest.approx(0.6), "count": 2}}
    tracewire.shutdown()


def test_the_judge_is_checked_when_it_is_made() -> None:
    with pytest.raises(ValueError, match="ask must be callable"):
        llm_judge("gpt-4o", "is polite")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="criteria must be a non-empty string"):
        llm_judge(str, " ")
