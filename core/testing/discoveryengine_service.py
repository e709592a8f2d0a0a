"""The scripted ConversationalSearchService behind the Discovery Engine fakes (see
`discoveryengine_server`): the version's message types, the RPC table, the handlers and request log,
and turning a reply into protobuf bytes or JSON.

Replies come from handlers keyed by RPC name (`"AnswerQuery"`, `"StreamAnswerQuery"`, …): a response
(message or dict), a list of responses for a stream, a `Fault`, or a callable `(request) -> any of
those`. google-cloud-discoveryengine is imported lazily, so importing this module is free.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

VERSIONS = ("v1", "v1beta", "v1alpha")

_HTTP = {
    "INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "INTERNAL": 500,
    "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}


def types(version: str) -> ModuleType:
    """The `google.cloud.discoveryengine_<version>` module."""
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    return importlib.import_module(f"google.cloud.discoveryengine_{version}")


@dataclass
class Fault(Exception):
    """A scripted error: the gRPC status name and message (HTTP code derived for REST)."""

    status: str = "PERMISSION_DENIED"
    message: str = "scripted error"

    @property
    def http_code(self) -> int:
        return _HTTP.get(self.status, 500)


Handler = Any  # response | dict | list | Fault | Callable[[request], any of those]


# RPC name -> (request type, response type, streams?) ; resolved per version


def _crud(resource: str) -> dict[str, str]:
    """The create/get/list/delete RPCs of a resource -> their response types."""
    return {f"Create{resource}": resource, f"Get{resource}": resource,
            f"List{resource}s": f"List{resource}sResponse", f"Delete{resource}": "Empty"}


# RPC name -> (request type, response type, streams?) ; resolved per version
RPCS: dict[str, tuple[str, str, bool]] = {
    "ConverseConversation": ("ConverseConversationRequest", "ConverseConversationResponse", False),
    "AnswerQuery": ("AnswerQueryRequest", "AnswerQueryResponse", False),
    "StreamAnswerQuery": ("AnswerQueryRequest", "AnswerQueryResponse", True),
    "GetAnswer": ("GetAnswerRequest", "Answer", False),
    **{rpc: (f"{rpc}Request", resp, False) for res in ("Conversation", "Session") for rpc, resp in _crud(res).items()},
}


class ScriptedService:
    """What both servers share: the version's types, the handlers, the request log."""

    def __init__(self, version: str, handlers: Mapping[str, Handler] | None) -> None:
        self.version = version
        self.t = types(version)
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.requests: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def message_types(self, rpc: str) -> tuple[Any, Any, bool]:
        req, resp, streams = RPCS[rpc]
        if resp == "Empty":
            from google.protobuf import empty_pb2

            return getattr(self.t, req), empty_pb2.Empty, streams
        return getattr(self.t, req), getattr(self.t, resp), streams

    def reply(self, rpc: str, request: Any) -> Any:
        """The scripted reply: a response message, a list of them (streams), or a Fault."""
        with self._lock:
            self.requests.append((rpc, request))
        if rpc not in self.handlers:
            return Fault("UNIMPLEMENTED", f"no scripted reply for {rpc}")
        out = self.handlers[rpc]
        if callable(out) and not isinstance(out, type):
            out = out(request)
        _, resp_type, streams = self.message_types(rpc)
        if isinstance(out, Fault):
            return out
        if streams:
            return [x if isinstance(x, Fault) else _coerce(resp_type, x) for x in out]
        return _coerce(resp_type, out)


def _coerce(resp_type: Any, value: Any) -> Any:
    if isinstance(value, resp_type):
        return value
    return resp_type(value) if isinstance(value, Mapping) else resp_type(mapping=value)


def to_json(message: Any) -> str:
    if hasattr(type(message), "to_json"):  # proto-plus
        return str(type(message).to_json(message))
    from google.protobuf import json_format

    return json_format.MessageToJson(message)


def serialize(message: Any) -> bytes:
    ser = getattr(type(message), "serialize", None)
    return bytes(ser(message)) if ser is not None else message.SerializeToString()

