"""Clients of the local Messages API server, as the tests make them."""

from __future__ import annotations

import anthropic

from tracewire.testing.anthropic_server import AnthropicServer

API_KEY = "ak-test-5c1e9a7f3b2d4e68"  # not shaped like a real key: the scrubber cannot be what hides it
MODEL = "claude-sonnet-4-5"
HI = [{"role": "user", "content": "hi"}]


def client(srv: AnthropicServer, retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=srv.base_url, api_key=API_KEY, max_retries=retries)


def aclient(srv: AnthropicServer, retries: int = 0) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=srv.base_url, api_key=API_KEY, max_retries=retries)
