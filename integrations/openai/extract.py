"""OpenAI's request and response shapes -> tracewire's shared shapes (messages, usage, attributes).

Pure functions of what the SDK takes and returns: the chat completions, Responses and embeddings
APIs, whole or streamed. Never the client: its API key, organization and headers are not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tracewire.adapters.base import hook_failed
from tracewire.model import attributes as A
from tracewire.model.genai import field, message, openai_tool_calls, openai_tool_definitions, usage_attributes

# Request arguments recorded in `tracewire.invocation_params` (besides those with a GenAI key). Not
# `extra_headers`, `extra_query`, `extra_body`, `timeout`: transport settings, where credentials go.
_PARAMS = frozenset((
    "n", "seed", "presence_penalty", "frequency_penalty", "tool_choice", "parallel_tool_calls",
    "response_format", "reasoning_effort", "reasoning", "logprobs", "top_logprobs", "logit_bias", "user",
    "service_tier", "store", "stream_options", "modalities", "prediction", "text", "truncation",
    "previous_response_id", "include", "background", "dimensions", "encoding_format", "verbosity",
    "prompt_cache_key", "safety_identifier", "max_tool_calls",
))
# every request argument recorded beyond the model
_REQUEST_KEYS = _PARAMS | {"temperature", "top_p", "max_completion_tokens", "max_tokens", "max_output_tokens",
                           "stop", "tools"}

# gen_ai.provider.name by the host of the client's base_url (a suffix match); documented in
# docs/integrations/openai.md. An unknown host is "openai_compatible".
PROVIDERS: dict[str, str] = {
    "api.openai.com": "openai",
    "openai.azure.com": "azure.ai.openai",
    "services.ai.azure.com": "azure.ai.inference",
    "models.inference.ai.azure.com": "azure.ai.inference",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.together.xyz": "together_ai",
    "api.together.ai": "together_ai",
    "openrouter.ai": "openrouter",
    "api.fireworks.ai": "fireworks_ai",
    "api.perplexity.ai": "perplexity",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "api.cerebras.ai": "cerebras",
    "api.deepinfra.com": "deepinfra",
    "integrate.api.nvidia.com": "nvidia_nim",
    "api-inference.huggingface.co": "huggingface",
    "router.huggingface.co": "huggingface",
}
# well-known local servers' default ports, on a loopback host
LOCAL_PORTS: dict[int, str] = {11434: "ollama", 1234: "lm_studio"}
OPENAI_COMPATIBLE = "openai_compatible"


def provider_of(base_url: Any, overrides: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """(gen_ai.provider.name, host) for a client whose base_url is `base_url`. `overrides`: host or
    "host:port" -> name, consulted first."""
    try:
        parts = urlsplit(str(base_url))
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return OPENAI_COMPATIBLE, None
    if overrides:
        for key in (f"{host}:{port}", host):
            if key in overrides:
                return overrides[key], host
    for suffix, name in PROVIDERS.items():
        if host == suffix or host.endswith("." + suffix):
            return name, host
    if host in ("localhost", "127.0.0.1", "::1") and port in LOCAL_PORTS:
        return LOCAL_PORTS[port], host
    return OPENAI_COMPATIBLE, host or None


def _given(value: Any) -> bool:
    """An argument the caller gave: not None and not the SDK's NOT_GIVEN / omit sentinels."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


def request_attributes(operation: str, kwargs: Mapping[str, Any], provider: str, host: str | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {A.OPERATION_NAME: operation, A.PROVIDER_NAME: provider}
    if host:
        attrs[A.SERVER_ADDRESS] = host
    model = kwargs.get("model")
    if _given(model):
        attrs[A.REQUEST_MODEL] = str(model)
    if _REQUEST_KEYS.isdisjoint(kwargs):  # most calls pass model and messages only: one set check
        return attrs
    for key, attr in (("temperature", A.REQUEST_TEMPERATURE), ("top_p", A.REQUEST_TOP_P)):
        if key in kwargs and _given(kwargs[key]):
            attrs[attr] = kwargs[key]
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        if key in kwargs and _given(kwargs[key]):
            attrs[A.REQUEST_MAX_TOKENS] = kwargs[key]
            break
    stop: Any = kwargs.get("stop")
    if _given(stop):
        attrs[A.REQUEST_STOP] = [stop] if isinstance(stop, str) else list(stop)
    tools: Any = kwargs.get("tools")
    if _given(tools):
        attrs[A.TOOL_DEFINITIONS] = openai_tool_definitions(list(tools))
    params = {k: v for k, v in kwargs.items() if k in _PARAMS and _given(v)}  # a call passes few
    if params:
        attrs[A.INVOCATION_PARAMS] = params
    return attrs


# ------------------------------------------------------------------ chat completions


def chat_input(messages: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The request's messages in the shared shape, and the ids of the tool calls whose results it
    sends back (those after the last assistant message: the history's earlier ones were linked
    by the request that first sent them)."""
    out: list[dict[str, Any]] = []
    results: list[str] = []
    for m in messages if _given(messages) else ():
        if type(m) is dict and len(m) == 2 and "content" in m and type(m.get("role")) is str:
            # {role, content}: already the shared shape, kept as it is (the span's start snapshots
            # it at once); most of a request's messages, and this runs for every one of them
            if m["role"] == "assistant":
                results = []
            out.append(m)
            continue
        if type(m) is dict:  # the common shape, read without `field`'s checks
            role, content, call_id, name, calls = (m.get("role"), m.get("content"), m.get("tool_call_id"),
                                                   m.get("name"), m.get("tool_calls"))
        else:
            role, content, call_id, name, calls = (field(m, "role"), field(m, "content"), field(m, "tool_call_id"),
                                                   field(m, "name"), field(m, "tool_calls"))
        if role == "assistant":
            results = []  # answered in an earlier turn: only the results new in this request count
        elif role == "tool" and call_id:
            results.append(str(call_id))
        out.append(message(str(role), content, tool_calls=openai_tool_calls(calls) if calls else None,
                           tool_call_id=call_id, name=name))
    return out, results


def _assistant(msg: Any) -> dict[str, Any]:
    content = field(msg, "content")
    refusal = field(msg, "refusal")
    out = message("assistant", content if content is not None or not refusal else None,
                  tool_calls=openai_tool_calls(field(msg, "tool_calls")))
    if refusal:
        out["refusal"] = refusal
    return out


def chat_usage(usage: Any, model: Any) -> dict[str, Any]:
    return _usage(usage, model, "prompt_tokens", "completion_tokens")


def _usage(usage: Any, model: Any, input_key: str, output_key: str) -> dict[str, Any]:
    """Usage of either API: they name the counts differently (`prompt_tokens` / `input_tokens`), and
    their details after them (`prompt_tokens_details.cached_tokens`, ...)."""
    if usage is None:
        return {}
    return usage_attributes(
        field(usage, input_key), field(usage, output_key), field(usage, "total_tokens"),
        cache_read_tokens=field(field(usage, f"{input_key}_details"), "cached_tokens"),
        reasoning_tokens=field(field(usage, f"{output_key}_details"), "reasoning_tokens"),
        model=model,
    )


def _response_common(attrs: dict[str, Any], response_id: Any, model: Any, output: Any) -> None:
    if response_id:
        attrs[A.RESPONSE_ID] = response_id
    if model:
        attrs[A.RESPONSE_MODEL] = model
    ids = [c["id"] for m in (output if isinstance(output, list) else [output]) if isinstance(m, dict)
           for c in m.get("tool_calls") or () if c.get("id")]
    if ids:
        attrs[A.TOOL_CALL_IDS] = ids


def chat_response(completion: Any, requested: Any) -> tuple[dict[str, Any], Any]:
    """A ChatCompletion (or ParsedChatCompletion) -> (attributes, output message(s))."""
    choices = field(completion, "choices") or []
    messages = [_assistant(field(c, "message")) for c in choices]
    output: Any = messages[0] if len(messages) == 1 else messages
    model = field(completion, "model")
    attrs = chat_usage(field(completion, "usage"), model or requested)
    reasons = [field(c, "finish_reason") for c in choices if field(c, "finish_reason")]
    if reasons:
        attrs[A.RESPONSE_FINISH_REASONS] = reasons
    _response_common(attrs, field(completion, "id"), model, output)
    return attrs, output


class ChatChunks:
    """A chat completion stream, folded when the span ends, on the worker: the text, tool calls (by
    index), finish reasons and the usage chunk. As chunks pass, one holding only a piece of the
    first choice's text is kept as that text; any other chunk is kept whole, in the same list, for
    the worker. Holding every chunk would cost the caller more than reading it: a dozen objects per
    chunk kept alive for the garbage collector to walk, and the memory the SDK would have reused
    for the next chunk taken. The reads go through each model's `__dict__` (pydantic keeps a
    model's fields there): one attribute lookup per object instead of one per field.
    `hide_usage`: the usage chunk was asked for by tracewire, not the caller, so it is not passed
    on."""

    __slots__ = ("requested", "hide_usage", "parts", "text", "refusal", "calls", "reasons", "usage", "model", "id")

    def __init__(self, requested: Any, hide_usage: bool) -> None:
        self.requested = requested
        self.hide_usage = hide_usage
        self.parts: list[Any] = []  # text pieces (str) and whole chunks, in the order they came
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.reasons: list[str] = []
        self.usage: Any = None
        self.model: Any = None
        self.id: Any = None

    def add(self, chunk: Any) -> bool:
        parts = self.parts
        if parts:  # the first chunk is kept whole: its model and id
            try:
                fields = chunk.__dict__
                (choice,) = fields["choices"]
                c = choice.__dict__
                delta = c["delta"].__dict__
                text = delta["content"]
                if (type(text) is str and c["finish_reason"] is None and c["index"] == 0
                        and delta.get("tool_calls") is None and delta.get("refusal") is None
                        and fields.get("usage") is None):
                    parts.append(text)
                    return True
            except (AttributeError, KeyError, TypeError, ValueError):  # not one choice with a delta
                pass
        parts.append(chunk)
        # the usage chunk has no choices
        return not self.hide_usage or bool(chunk.choices) or chunk.usage is None

    def _fold(self, chunk: Any) -> None:
        if self.model is None:
            self.model = chunk.model
            self.id = chunk.id
        usage = chunk.usage
        if usage is not None:
            self.usage = usage
        for choice in chunk.choices or ():
            reason = choice.finish_reason
            if reason:
                self.reasons.append(reason)
            if choice.index:
                continue  # n > 1: the first choice's text is the output, every choice's finish reason counts
            delta = choice.delta
            text = delta.content
            if text:
                self.text.append(text)
            if delta.tool_calls:
                self._calls(delta.tool_calls)
            if delta.refusal:
                self.refusal.append(delta.refusal)

    def _calls(self, deltas: Any) -> None:
        for d in deltas:
            call = self.calls.get(d.index)
            fn = d.function
            if call is None:
                call = self.calls[d.index] = {"id": d.id, "name": fn.name if fn else None, "arguments": ""}
            elif d.id and not call["id"]:
                call["id"] = d.id
            if fn is not None:
                if fn.name and not call["name"]:
                    call["name"] = fn.name
                if fn.arguments:
                    call["arguments"] += fn.arguments

    def result(self) -> tuple[dict[str, Any], Any]:
        parts, self.parts = self.parts, []
        for part in parts:
            if type(part) is str:
                if part:  # as the fold: an empty piece is no text (a refusal's content stays None)
                    self.text.append(part)
                continue
            try:
                self._fold(part)
            except Exception as exc:  # noqa: BLE001 - a malformed chunk is left out, counted
                hook_failed("openai", "stream_item", exc)
        output = message("assistant", "".join(self.text) if self.text or not self.refusal else None,
                         tool_calls=[self.calls[i] for i in sorted(self.calls)])
        if self.refusal:
            output["refusal"] = "".join(self.refusal)
        attrs = chat_usage(self.usage, self.model or self.requested)
        if self.reasons:
            attrs[A.RESPONSE_FINISH_REASONS] = list(self.reasons)
        _response_common(attrs, self.id, self.model, output)
        return attrs, output


# ------------------------------------------------------------------ Responses API


def responses_input(kwargs: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The Responses API's `instructions` and `input` (a string or items) as messages, and the ids
    of the function calls whose outputs it sends back (the last run of outputs)."""
    out: list[dict[str, Any]] = []
    results: list[str] = []
    instructions = kwargs.get("instructions")
    if _given(instructions):
        out.append(message("system", instructions))
    items: Any = kwargs.get("input")
    if isinstance(items, str):
        out.append(message("user", items))
        return out, results
    for item in items if _given(items) else ():
        kind = field(item, "type")
        if kind != "function_call_output" and results:
            results = []  # outputs followed by more conversation: sent back in an earlier turn
        if kind == "function_call_output":
            call_id = field(item, "call_id")
            if call_id:
                results.append(str(call_id))
            out.append(message("tool", field(item, "output"), tool_call_id=call_id))
        elif kind == "function_call":
            out.append(message("assistant", None, tool_calls=[
                {"id": field(item, "call_id"), "name": field(item, "name"), "arguments": field(item, "arguments")}]))
        elif field(item, "role") is not None:
            out.append(message(str(field(item, "role")), _content_text(field(item, "content"))))
        else:
            out.append({"role": "item", "content": item})
    return out, results


def _content_text(content: Any) -> Any:
    """A Responses message's content: its text parts joined when all parts are text."""
    if isinstance(content, str) or content is None:
        return content
    parts = list(content)
    texts = [field(p, "text") for p in parts]
    if all(isinstance(t, str) for t in texts):
        return "".join(texts)  # type: ignore[arg-type]
    return parts


def _output_message(items: Any) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    reasoning: list[str] = []
    for item in items or ():
        kind = field(item, "type")
        if kind == "message":
            for part in field(item, "content") or ():
                text = field(part, "text") if field(part, "type") == "output_text" else field(part, "refusal")
                if text:
                    texts.append(text)
        elif kind == "function_call":
            calls.append({"id": field(item, "call_id"), "name": field(item, "name"),
                          "arguments": field(item, "arguments")})
        elif kind == "reasoning":
            reasoning.extend(field(s, "text") or "" for s in field(item, "summary") or ())
    out = message("assistant", "".join(texts) if texts else None, tool_calls=calls)
    if reasoning:
        out["reasoning"] = "".join(reasoning)
    return out


def responses_usage(usage: Any, model: Any) -> dict[str, Any]:
    return _usage(usage, model, "input_tokens", "output_tokens")


def responses_response(response: Any, requested: Any) -> tuple[dict[str, Any], Any]:
    """A Response -> (attributes, the assistant message: text, function calls, reasoning summary)."""
    output = _output_message(field(response, "output"))
    model = field(response, "model")
    attrs = responses_usage(field(response, "usage"), model or requested)
    status = field(response, "status")
    if status == "incomplete":
        reason = field(field(response, "incomplete_details"), "reason") or "incomplete"
    elif status == "failed":
        reason = "error"
    else:
        reason = "tool_calls" if output.get("tool_calls") else "stop"
    attrs[A.RESPONSE_FINISH_REASONS] = [reason]
    _response_common(attrs, field(response, "id"), model, output)
    return attrs, output


class ResponseEvents:
    """Folds a Responses stream's events: the final response when it arrives (completed,
    incomplete, failed), else what was streamed before the end."""

    __slots__ = ("requested", "text", "items", "response")

    def __init__(self, requested: Any) -> None:
        self.requested = requested
        self.text: list[str] = []
        self.items: list[Any] = []
        self.response: Any = None

    def add(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "response.output_text.delta":
            self.text.append(event.delta)
        elif kind == "response.output_item.done":
            self.items.append(event.item)
        elif kind in ("response.completed", "response.incomplete", "response.failed", "response.created"):
            self.response = event.response
        return True

    def result(self) -> tuple[dict[str, Any], Any]:
        response = self.response
        if response is not None and getattr(response, "status", None) not in ("in_progress", "queued", None):
            return responses_response(response, self.requested)
        attrs: dict[str, Any] = {}
        model = getattr(response, "model", None)
        if model:
            attrs[A.RESPONSE_MODEL] = model
        output = _output_message(self.items)
        if self.text and not any(field(i, "type") == "message" for i in self.items):
            output["content"] = (output["content"] or "") + "".join(self.text)
        _response_common(attrs, getattr(response, "id", None), model, output)
        return attrs, output


# ------------------------------------------------------------------ embeddings


def embeddings_response(result: Any, requested: Any) -> tuple[dict[str, Any], Any]:
    """A CreateEmbeddingResponse -> (attributes, a summary: the vectors' count and dimension)."""
    data = field(result, "data") or []
    model = field(result, "model")
    usage = field(result, "usage")
    attrs = usage_attributes(field(usage, "prompt_tokens"), None, field(usage, "total_tokens"),
                             model=model or requested) if usage is not None else {}
    attrs[A.EMBEDDING_COUNT] = len(data)
    dimension = len(field(data[0], "embedding") or ()) if data else 0
    if dimension:
        attrs[A.EMBEDDINGS_DIMENSION] = dimension
    if model:
        attrs[A.RESPONSE_MODEL] = model
    return attrs, {"count": len(data), "dimension": dimension}
