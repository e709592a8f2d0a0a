"""Vertex AI Agent Builder (google-cloud-discoveryengine): record conversational search calls.

    from google.cloud import discoveryengine_v1
    from tracewire.integrations.vertex import wrap

    client = wrap(discoveryengine_v1.ConversationalSearchServiceClient(), user_id="u-1")
    client.answer_query(request=...)   # same arguments, same return value, now recorded

Instrumented: `converse_conversation`, `answer_query`, `stream_answer_query`, `get_answer`, for
v1, v1beta and v1alpha, sync and async clients. Everything else passes through untouched.
"""

from __future__ import annotations

from tracewire.adapters import require

# 0.13: ConversationalSearchService with answer_query (stream_answer_query, later, is wrapped when present).
SUPPORTED = "google-cloud-discoveryengine>=0.13"  # the same requirement as in pyproject's extra

require("google.api_core.exceptions", "vertex", SUPPORTED)

from tracewire.integrations.vertex.hooks import INSTRUMENTED, wrap  # noqa: E402

__all__ = ["wrap", "INSTRUMENTED"]
