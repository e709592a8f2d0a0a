"""Attribute keys shared by every adapter: OpenTelemetry GenAI conventions where one exists."""

from __future__ import annotations

# OpenTelemetry GenAI semantic conventions
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_STOP = "gen_ai.request.stop_sequences"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_TOTAL_TOKENS = "gen_ai.usage.total_tokens"
USAGE_CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_DESCRIPTION = "gen_ai.tool.description"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
CONVERSATION_ID = "gen_ai.conversation.id"
EMBEDDINGS_DIMENSION = "gen_ai.embeddings.dimension.count"
DATA_SOURCE_ID = "gen_ai.data_source.id"

# tracewire's own
COST_USD = "tracewire.cost_usd"
TTFT_MS = "tracewire.ttft_ms"
LATENCY_MS = "tracewire.latency_ms"
STREAMING = "tracewire.streaming"
STEP = "tracewire.step"
NODE = "tracewire.node"
INVOCATION_PARAMS = "tracewire.invocation_params"
DOCUMENT_COUNT = "tracewire.document_count"
EMBEDDING_COUNT = "tracewire.embedding_count"
ERROR_CODE = "tracewire.error.code"
UNFINISHED = "tracewire.unfinished"
# model SDK calls (tracewire.integrations.openai / .anthropic)
ATTEMPTS = "tracewire.attempts"  # HTTP attempts the SDK made for the call (1 + its retries)
STREAM_END = "tracewire.stream.end"  # how a stream ended: exhausted, closed, abandoned, error
STREAM_USAGE_ADDED = "tracewire.stream.usage_added"  # usage asked of the stream for tracewire, hidden from the caller
TOOL_CALL_IDS = "tracewire.tool_call.ids"  # ids of the tool calls a response asks for
TOOL_RESULT_IDS = "tracewire.tool_result.ids"  # ids of the tool calls whose results a request sends back
RAW_RESPONSE = "tracewire.raw_response"  # made through `with_raw_response` / `with_streaming_response`
SERVER_ADDRESS = "server.address"
