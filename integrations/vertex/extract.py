"""Reading Discovery Engine requests and responses into tracewire's shapes.

Works on messages of any API version (v1, v1beta, v1alpha) and on the plain dicts a caller may
pass as `request`, by field name only: no version-specific imports. Fields a version lacks read as
empty. Responses are read through their raw protobuf (`Message.pb(msg)`, no copy): proto-plus
attribute access costs ~15x more, and a two-step answer is read field by field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# vertex-specific attribute keys (the shared ones live in tracewire.model.attributes)
METHOD = "tracewire.vertex.method"
ANSWER_STATE = "tracewire.vertex.answer_state"
GROUNDING_SCORE = "tracewire.vertex.grounding_score"
SKIPPED_REASONS = "tracewire.vertex.skipped_reasons"
STEP_STATE = "tracewire.vertex.step_state"
PROVIDER = "gcp.vertex_ai"


def raw(message: Any) -> Any:
    """The raw protobuf under a proto-plus message (shared, not copied); anything else as is."""
    to_pb = getattr(type(message), "pb", None)
    return to_pb(message) if to_pb is not None else message


def get(obj: Any, *path: str) -> Any:
    """obj.a.b… for messages, obj["a"]["b"]… for dicts; None where a link is missing."""
    for key in path:
        if obj is None:
            return None
        if isinstance(obj, Mapping):
            obj = obj.get(key)
        else:
            obj = getattr(obj, key, None)
    return obj


def enum_names(pb: Any, field: str) -> list[str]:
    """The names of an enum field (repeated or not) of a raw protobuf message."""
    values = getattr(pb, field, None)
    if values is None:
        return []
    enum = pb.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number
    return [enum[v].name if v in enum else str(v) for v in ((values,) if isinstance(values, int) else values)]


def enum_name(pb: Any, field: str) -> str | None:
    names = enum_names(pb, field)
    return names[0] if names else None


def score(value: Any) -> float | None:
    # proto floats are float32: 0.92 arrives as 0.9200000166893005
    return round(float(value), 6) if value else None


class RequestInfo:
    """What a call is about, read from `request` (message or dict) and flattened keyword fields."""

    __slots__ = ("method", "query", "resource", "session", "user", "model", "_name")

    def __init__(self, method: str, request: Any, kwargs: Mapping[str, Any]) -> None:
        self.method = method
        self.model: str | None = None
        self.user: str | None = None
        request = raw(request)
        if method == "converse_conversation":
            query = kwargs.get("query") or get(request, "query")
            self.query: str | None = get(query, "input") or None
            conversation = kwargs.get("name") or get(request, "name") or None
            self.resource: str | None = get(request, "serving_config") or conversation
            self.session: str | None = conversation
            self.user = get(request, "conversation", "user_pseudo_id") or None
        elif method == "get_answer":
            name = kwargs.get("name") or get(request, "name") or None
            self.query = None
            self.resource = name
            self.session = name.rpartition("/answers/")[0] or None if name else None
        else:  # answer_query, stream_answer_query
            self.query = get(request, "query", "text") or None
            self.resource = get(request, "serving_config") or None
            self.session = get(request, "session") or None
            self.user = get(request, "user_pseudo_id") or None
            self.model = get(request, "answer_generation_spec", "model_spec", "model_version") or None

    @property
    def agent_name(self) -> str:
        """The engine (app) id, else the data store id, else the method."""
        try:
            return self._name
        except AttributeError:
            self._name: str = self._agent_name()
            return self._name

    def _agent_name(self) -> str:
        parts = (self.resource or "").split("/")
        for collection in ("engines", "dataStores"):
            if collection in parts:
                i = parts.index(collection)
                if i + 1 < len(parts) and parts[i + 1]:
                    return parts[i + 1]
        return self.method

    @property
    def agent_id(self) -> str | None:
        """The serving config, or the engine/data store the resource lives under."""
        res = self.resource
        if not res or "/servingConfigs/" in res:
            return res
        for marker in ("/conversations/", "/sessions/"):
            if marker in res:
                return res.partition(marker)[0]
        return res


def is_placeholder(session: str | None) -> bool:
    """`…/sessions/-` and `…/conversations/-` ask the service to create one: not an id yet."""
    return not session or session.endswith("/-")


# ------------------------------------------------------------------ answers (answer_query, get_answer, stream)
def answer_fields(answer: Any) -> dict[str, Any]:
    """The non-empty fields of a raw Answer (text aside), read once."""
    out: dict[str, Any] = {}
    for key in ("name", "citations", "references", "related_questions", "steps"):
        value = getattr(answer, key)
        if value:
            out[key] = value
    if answer.state:
        out["state"] = enum_name(answer, "state")
    if answer.answer_skipped_reasons:
        out["skipped_reasons"] = enum_names(answer, "answer_skipped_reasons")
    gs = score(getattr(answer, "grounding_score", None))  # not in v1alpha
    if gs is not None:
        out["grounding_score"] = gs
    return out


def answer_attributes(fields: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if "state" in fields:
        attrs[ANSWER_STATE] = fields["state"]
    if "grounding_score" in fields:
        attrs[GROUNDING_SCORE] = fields["grounding_score"]
    if "skipped_reasons" in fields:
        attrs[SKIPPED_REASONS] = fields["skipped_reasons"]
    return attrs


def answer_output(text: str | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The `agent.response` content: text, citations, references, related questions, skipped
    reasons and grounding score, where present."""
    out: dict[str, Any] = {"text": text or ""}
    if "citations" in fields:
        out["citations"] = [
            {"start_index": c.start_index, "end_index": c.end_index, "sources": [s.reference_id for s in c.sources]}
            for c in fields["citations"]
        ]
    if "references" in fields:
        out["references"] = [answer_reference(r) for r in fields["references"]]
    if "related_questions" in fields:
        out["related_questions"] = list(fields["related_questions"])
    if "skipped_reasons" in fields:
        out["skipped_reasons"] = fields["skipped_reasons"]
    if "grounding_score" in fields:
        out["grounding_score"] = fields["grounding_score"]
    return out


def answer_reference(ref: Any) -> dict[str, Any]:
    kind = ref.WhichOneof("content")
    if kind == "chunk_info":
        info = ref.chunk_info
        meta = info.document_metadata
        return _compact({"document": meta.document, "uri": meta.uri, "title": meta.title, "chunk": info.chunk,
                         "content": [info.content] if info.content else None,
                         "relevance_score": score(info.relevance_score)})
    if kind == "structured_document_info":
        info = ref.structured_document_info
        return _compact({"document": info.document, "uri": getattr(info, "uri", None),
                         "title": getattr(info, "title", None)})
    info = ref.unstructured_document_info
    return _compact({"document": info.document, "uri": info.uri, "title": info.title,
                     "content": [c.content for c in info.chunk_contents] or None})


def step_searches(steps: Any) -> list[tuple[int, Any, Any]]:
    """(step number from 1, step, action) for every action of every step."""
    return [(i, step, action) for i, step in enumerate(steps or (), 1) for action in step.actions]


def search_input(step: Any, action: Any) -> dict[str, Any]:
    """A retriever's input: the search query, with the step's description and thought kept."""
    return _compact({"query": action.search_action.query, "description": step.description,
                     "thought": step.thought})


def observation_documents(action: Any) -> list[dict[str, Any]]:
    """The observation's search results: document, uri, title, snippets (and chunks)."""
    docs = []
    for r in action.observation.search_results:
        chunks = [_compact({"chunk": c.chunk, "content": c.content, "relevance_score": score(c.relevance_score)})
                  for c in r.chunk_info]
        docs.append(_compact({"document": r.document, "uri": r.uri, "title": r.title,
                              "snippets": [s.snippet for s in r.snippet_info] or None, "chunks": chunks or None}))
    return docs


# ------------------------------------------------------------------ converse_conversation
def converse_text(reply: Any) -> str:
    # v1beta/v1alpha still carry the deprecated plain `reply` next to the summary
    return str(reply.summary.summary_text or getattr(reply, "reply", "") or "")


def converse_output(resp: Any) -> dict[str, Any]:
    summary = resp.reply.summary
    meta = summary.summary_with_metadata
    out: dict[str, Any] = {"text": converse_text(resp.reply)}
    if meta.citation_metadata.citations:
        out["citations"] = [
            {"start_index": c.start_index, "end_index": c.end_index,
             "sources": [s.reference_index for s in c.sources]}
            for c in meta.citation_metadata.citations
        ]
    if meta.references:
        out["references"] = [
            _compact({"document": r.document, "uri": r.uri, "title": r.title,
                      "content": [c.content for c in r.chunk_contents] or None})
            for r in meta.references
        ]
    if summary.summary_skipped_reasons:
        out["skipped_reasons"] = enum_names(summary, "summary_skipped_reasons")
    return out


def converse_attributes(resp: Any) -> dict[str, Any]:
    summary = resp.reply.summary
    return {SKIPPED_REASONS: enum_names(summary, "summary_skipped_reasons")} if summary.summary_skipped_reasons else {}


def search_result_documents(results: Any) -> list[dict[str, Any]]:
    """SearchResponse.SearchResult → document, uri, title, snippets (from derived_struct_data)."""
    docs = []
    for r in results:
        doc = r.document
        derived = doc.derived_struct_data.fields
        snippets: list[str] = []
        if "snippets" in derived:
            for item in derived["snippets"].list_value.values:
                text = item.struct_value.fields["snippet"].string_value if "snippet" in item.struct_value.fields else ""
                if text:
                    snippets.append(text)
        docs.append(_compact({
            "document": doc.name or r.id,
            "uri": derived["link"].string_value if "link" in derived else None,
            "title": derived["title"].string_value if "title" in derived else None,
            "snippets": snippets or None,
        }))
    return docs


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, "", [])}
