"""An LLM as judge: an evaluator that asks a model to grade each answer against criteria.

The model is any `ask(prompt) -> str` (your LLM client, a LangChain chat model's `invoke`, …), so
this module imports no framework. The reply must hold `score: <0..1>`; the rest of its line, or the
next line, becomes the score's comment. A reply without a score is that evaluator's error on the item.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tracewire.model.score import Score

PROMPT = """You are grading an answer.
Criteria: {criteria}
Question: {input}
Expected answer: {expected}
Answer to grade: {output}
Reply with "score: " and a number from 0 (fails the criteria) to 1 (meets them) on the first line,
then one line saying why."""

_SCORE = re.compile(r"score\s*[:=]\s*(\d+(?:\.\d+)?)", re.I)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def llm_judge(ask: Callable[[str], Any], criteria: str, *, name: str = "judge",
              prompt: str = PROMPT) -> Callable[[Any, Any, Any], Score]:
    """An evaluator named `name` that sends `prompt` (filled with criteria, input, expected, output)
    to `ask` and reads the score in [0, 1] from the reply (a string, or an object with `.content`)."""
    if not callable(ask):
        raise ValueError(f"llm_judge: ask must be callable, got {ask!r}")
    if not isinstance(criteria, str) or not criteria.strip():
        raise ValueError("llm_judge: criteria must be a non-empty string")

    def judge(input: Any, output: Any, expected: Any) -> Score:
        reply = ask(prompt.format(criteria=criteria, input=_text(input), expected=_text(expected),
                                  output=_text(output)))
        text = str(getattr(reply, "content", reply))
        m = _SCORE.search(text)
        if m is None or not 0 <= float(m.group(1)) <= 1:
            raise ValueError(f"the judge's reply holds no score from 0 to 1: {text[:200]!r}")
        rest = (text[m.end():].strip(" .\n") or "").splitlines()
        return Score(name, float(m.group(1)), comment=rest[0].strip() if rest else None)

    judge.name = name  # type: ignore[attr-defined]  # how the experiment names its scores
    return judge
