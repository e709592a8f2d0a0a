"""Scores: a judgement of what an agent did, attached to one trace, span or session.

A score is a record of its own (`"type": "score"`, `"schema": 2`), not an event: it may arrive
long after what it judges, from another process, and it is idempotent on its `id` — the same id
twice is one score, and a later write (by the score's own `time`) replaces an earlier one in
every store. docs/scores.md describes the record and where each store keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

SCORE_TYPE: Final = "score"
# Records of schema 2 are schema 1's events plus score records. A collector that knows only
# schema 1 rejects each score record ("unsupported_schema") instead of storing it as an event.
SCORE_SCHEMA: Final = 2
SOURCES: Final = ("code", "human", "llm", "user")
# What the read APIs return for a score, in this order.
FIELDS: Final = ("id", "name", "value", "label", "comment", "trace_id", "span_id", "session_id", "source",
                 "metadata", "time")
MAX_ID_CHARS: Final = 256  # the collector's limit on indexed ids

Value = bool | int | float | None


@dataclass(frozen=True)
class Score:
    """A score as a value: what an evaluator returns, or one row of `LocalStore.scores()`."""

    name: str
    value: Value = None
    label: str | None = None
    comment: str | None = None
    metadata: Mapping[str, Any] | None = None
    id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    session_id: str | None = None
    source: str = "code"
    time: int | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Score:
        """A score from a read API's dict (unknown keys are ignored)."""
        return cls(name=str(row["name"]), value=row.get("value"), label=row.get("label"), comment=row.get("comment"),
                   metadata=row.get("metadata"), id=row.get("id"), trace_id=row.get("trace_id"),
                   span_id=row.get("span_id"), session_id=row.get("session_id"),
                   source=str(row.get("source") or "code"), time=row.get("time"))


def is_score(record: Mapping[str, Any]) -> bool:
    """A score record (a schema-1 point event may be called "score" too: the schema tells them apart)."""
    return record.get("type") == SCORE_TYPE and record.get("schema") == SCORE_SCHEMA


def _id(arg: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"score(): {arg} must be a str, not {type(value).__name__}")
    if not value or len(value) > MAX_ID_CHARS or "\x00" in value:
        raise ValueError(f"score(): {arg} must be 1 to {MAX_ID_CHARS} characters without NUL")
    return value


def check_value(value: Any) -> Value:
    """`value` if it is a score value (a number or a bool); TypeError / ValueError otherwise."""
    if value is None or isinstance(value, bool):
        return value  # type: ignore[no-any-return]
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"score(): value must be a finite number, not {value!r}")
        return value
    raise TypeError(f"score(): value must be a number or a bool (a category goes in label=), not "
                    f"{type(value).__name__}")


def record(
    name: str, value: Any, label: Any, comment: Any, trace_id: Any, span_id: Any, session_id: Any,
    source: Any, id: Any, time_ns: int,
) -> dict[str, Any]:
    """The score record for arguments already resolved to one target; raises TypeError/ValueError
    on arguments that cannot make a score (a programming error, said at the call)."""
    if not isinstance(name, str):
        raise TypeError(f"score(): name must be a str, not {type(name).__name__}")
    if not name.strip() or len(name) > MAX_ID_CHARS:
        raise ValueError(f"score(): name must be 1 to {MAX_ID_CHARS} characters")
    value = check_value(value)
    for arg, text in (("label", label), ("comment", comment)):
        if text is not None and not isinstance(text, str):
            raise TypeError(f"score(): {arg} must be a str, not {type(text).__name__}")
    if value is None and label is None:
        raise ValueError("score(): give a value (number or bool) or a label (a category), or both")
    if source not in SOURCES:
        raise ValueError(f"score(): source must be one of {', '.join(SOURCES)}, not {source!r}")
    return {
        "id": _id("id", id), "schema": SCORE_SCHEMA, "type": SCORE_TYPE, "name": name, "value": value,
        "label": label, "comment": comment, "trace_id": _id("trace_id", trace_id),
        "span_id": _id("span_id", span_id), "session_id": _id("session_id", session_id), "source": source,
        "time": time_ns,
    }


def target(trace_id: str | None, span_id: str | None, session_id: str | None) -> str:
    """`span`, `trace` or `session`: what a well-formed record scores."""
    return "span" if span_id else "trace" if trace_id else "session"


def row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record as the read APIs return it: FIELDS, nothing else."""
    out = {k: record.get(k) for k in FIELDS}
    if out["source"] is None:
        out["source"] = "code"
    return out


def check_record(record: Any) -> str | None:
    """Why a score record cannot be stored (`missing_field:name`, `invalid_field:value`…), else None.
    The collector's check: the SDK builds only records that pass it."""
    if not isinstance(record, dict):
        return "not_an_object"
    for f in ("id", "name", "time"):
        if record.get(f) is None:
            return f"missing_field:{f}"
    for f in ("id", "name", "trace_id", "span_id", "session_id"):
        v = record.get(f)
        if v is not None and (type(v) is not str or not v or len(v) > MAX_ID_CHARS or "\x00" in v):
            return f"invalid_field:{f}"
    t = record["time"]
    if type(t) is not int or not 0 <= t <= 2**63 - 1:
        return "invalid_field:time"
    if not (record.get("trace_id") or record.get("session_id")):
        return "missing_field:trace_id"  # a span's score carries its trace too
    if record.get("span_id") and not record.get("trace_id"):
        return "missing_field:trace_id"
    v = record.get("value")
    if v is not None and (type(v) not in (int, float, bool) or (type(v) is float and not math.isfinite(v))):
        return "invalid_field:value"
    for f in ("label", "comment", "source"):
        if record.get(f) is not None and type(record[f]) is not str:
            return f"invalid_field:{f}"
    if record.get("metadata") is not None and type(record["metadata"]) is not dict:
        return "invalid_field:metadata"
    return None


def value_text(score: Mapping[str, Any]) -> str:
    """`0.75`, `true`: a score's value (4 significant digits), or "" when it has only a label."""
    v = score.get("value")
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:.4g}" if isinstance(v, (int, float)) else ""


def by_span(scores: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], dict[str, list[Mapping[str, Any]]]]:
    """A trace's scores split: the trace's own, and its spans' by span id."""
    own: list[Mapping[str, Any]] = []
    spans: dict[str, list[Mapping[str, Any]]] = {}
    for sc in scores:
        if sc.get("span_id"):
            spans.setdefault(str(sc["span_id"]), []).append(sc)
        else:
            own.append(sc)
    return own, spans
