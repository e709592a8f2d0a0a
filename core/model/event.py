"""The event envelope (schema 1): kinds, phases and how a point-event type maps to a kind."""

from __future__ import annotations

from typing import Any, Final

SCHEMA: Final = 1

KINDS: Final = frozenset(
    {"session", "agent", "chain", "llm", "tool", "retriever", "embedding", "reranker", "user", "metric", "custom"}
)
SPAN_KINDS: Final = KINDS - {"user", "metric"}
PHASES: Final = frozenset({"start", "end", "error", "point"})
FRAMEWORKS: Final = frozenset({"langchain", "litellm", "crewai", "llamaindex", "vertex", "manual"})

# Fields whose values are user content: snapshotted on the hot path, made JSON-safe, scrubbed,
# masked and size-capped on the pipeline. `attributes` is scrubbed and made safe but not masked.
CONTENT_FIELDS: Final = ("input", "output", "metadata", "error")

Event = dict[str, Any]

# Memory held by one event in memory beside its content (the dict, ids, strings), measured; what
# queues count per event so that their byte limits are honest bounds on RSS.
ENVELOPE_BYTES: Final = 1300


def point_kind(event_type: str) -> str:
    """`user.input` -> user, `agent.response` -> agent, `metric` -> metric, `log`/other -> custom."""
    head = event_type.split(".", 1)[0]
    return head if head in KINDS else "custom"
