"""Item-level evaluators: `fn(input, output, expected) -> float | bool | str | Score`, named by the
function (or its `name` attribute). A bool counts as 1 or 0; a string is a label without a value. An
evaluator that raises, or returns anything else, is recorded as that evaluator's error on the item: the
run goes on and the other evaluators still score it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tracewire.engine import state
from tracewire.model.score import Score
from tracewire.tracing import score

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
    if isinstance(result, Score):
        value, label = result.value, result.label
        if value is None and label is None:
            raise ValueError("returned a Score with neither value nor label")
        item = _as_score(result.name or name, value if value is not None else label)
        meta = dict(result.metadata) if result.metadata is not None else None
        return ItemScore(item.name, item.value, label if label is not None else item.label,
                         None if result.comment is None else str(result.comment), meta)
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


def record_scores(trace_id: str, scores: Sequence[ItemScore], metadata: dict[str, Any]) -> None:
    """Each score on the item's trace, as `tracewire.score` records it; never raises. The id is the
    run's, the item's and the score's name: recording a row again updates its scores."""
    for s in scores:
        try:
            score(s.name, s.value, label=s.label, comment=s.comment, trace_id=trace_id, source="code",
                  metadata={**(s.metadata or {}), **metadata},
                  id=f"{metadata.get('run_id')}:{metadata.get('item_id')}:{s.name}")
        except Exception as exc:  # noqa: BLE001 - recording a score never breaks the run
            (state.client or state.get_client()).report_error("experiment", exc)
