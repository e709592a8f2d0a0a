"""Item-level evaluators: `fn(input, output, expected) -> float | bool | str | Score`, named by the
function (or its `name` attribute). A bool counts as 1 or 0; a string is a label without a value. An
evaluator that raises, or returns anything else, is recorded as that evaluator's error on the item: the
run goes on and the other evaluators still score it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tracewire.engine import state

Evaluator = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class ItemScore:
    """What one evaluator said about one item."""

    name: str
    value: float | None
    label: str | None = None
    comment: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def shown(self) -> float | str | None:
        """The number when there is one, else the label: what a row's `scores` hold."""
        return self.value if self.value is not None else self.label


def evaluator_name(fn: Evaluator) -> str:
    name = getattr(fn, "name", None) or getattr(fn, "__name__", None) or type(fn).__name__
    return str(name)


def check_evaluators(evaluators: Sequence[Any]) -> list[Evaluator]:
    """The evaluators, each callable and named once; a ValueError names the one that is not."""
    seen: set[str] = set()
    for n, fn in enumerate(evaluators):
        if not callable(fn):
            raise ValueError(f"evaluators[{n}] is not callable: {fn!r}")
        name = evaluator_name(fn)
        if name in seen:
            raise ValueError(f"evaluators[{n}]: two evaluators are named {name!r}; give one a `name` attribute")
        seen.add(name)
    return list(evaluators)


def _as_score(name: str, result: Any) -> ItemScore:
    if isinstance(result, bool):
        return ItemScore(name, 1.0 if result else 0.0)
    if isinstance(result, (int, float)):
        if not math.isfinite(result):
            raise ValueError(f"returned {result!r}, which is not a finite number")
        return ItemScore(name, float(result))
    if isinstance(result, str):
        return ItemScore(name, None, label=result)
    if hasattr(result, "name") and (hasattr(result, "value") or hasattr(result, "label")):  # a Score
        value = getattr(result, "value", None)
        label = getattr(result, "label", None)
        if value is None and label is None:
            raise ValueError("returned a Score with neither value nor label")
        score = _as_score(str(getattr(result, "name", None) or name), value if value is not None else label)
        comment = getattr(result, "comment", None)
        return ItemScore(score.name, score.value, label if label is not None else score.label,
                         None if comment is None else str(comment), getattr(result, "metadata", None))
    raise TypeError(f"returned {type(result).__name__}; an evaluator returns a float, bool, str or Score")


def evaluate(evaluators: Sequence[Evaluator], input: Any, output: Any,
             expected: Any) -> tuple[list[ItemScore], dict[str, str]]:
    """Every evaluator on one item: the scores, and the errors by evaluator name ("Type: message")."""
    scores: list[ItemScore] = []
    errors: dict[str, str] = {}
    for fn in evaluators:
        name = evaluator_name(fn)
        try:
            scores.append(_as_score(name, fn(input, output, expected)))
        except Exception as exc:  # noqa: BLE001 - one evaluator's bug is that item's evaluator error, not a crash
            errors[name] = f"{type(exc).__name__}: {exc}"
    return scores, errors


# ==== compatibility with tracewire.score / tracewire.Score ==============================================
# Scores are also recorded on each item's trace through `tracewire.score`, when this tracewire has it.
# Until then `Score` is the local stand-in below and nothing is recorded on the trace (the experiment's
# own tables still hold every value). Remove this block once `tracewire.score` and `tracewire.Score` exist.
@dataclass(frozen=True)
class Score:
    """An evaluator's result with a name, a value and/or a label, and an optional comment."""

    name: str
    value: float | None = None
    label: str | None = None
    comment: str | None = None
    metadata: dict[str, Any] | None = None


def record_scores(trace_id: str, scores: Sequence[ItemScore], metadata: dict[str, Any]) -> None:
    """Each score on the item's trace through `tracewire.score`, if there is one; never raises."""
    # Looked up on the loaded package rather than imported: the package imports this module.
    score = getattr(sys.modules.get("tracewire"), "score", None)
    if score is None:
        return
    for s in scores:
        try:
            score(s.name, s.value, label=s.label, comment=s.comment, trace_id=trace_id, source="code",
                  metadata={**(s.metadata or {}), **metadata})
        except Exception as exc:  # noqa: BLE001 - recording a score never breaks the run
            (state.client or state.get_client()).report_error("experiment", exc)
# ==== end of compatibility block =========================================================================
