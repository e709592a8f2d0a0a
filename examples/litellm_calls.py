"""LiteLLM calls recorded by `TracewireLogger`: sync, async, streamed and a failure. Offline:
every answer comes from LiteLLM's `mock_response`.

    python examples/litellm_calls.py
"""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no cost-map download at import

import litellm  # noqa: E402

import tracewire  # noqa: E402
from tracewire.cli.main import main as tracewire_cli  # noqa: E402
from tracewire.integrations.litellm import TracewireLogger, drain  # noqa: E402

tracewire.init()  # default sink: SQLite at $TRACEWIRE_DB or in the nearest .tracewire/
litellm.callbacks.append(TracewireLogger())
litellm.suppress_debug_info = True  # the failure below is on purpose: no "get help" banner

QUESTION = [{"role": "user", "content": "Name a colour."}]


async def async_calls() -> None:
    reply = await litellm.acompletion("gpt-4o-mini", QUESTION, mock_response="Green.")
    print("async :", reply.choices[0].message.content)
    stream = await litellm.acompletion("gpt-4o-mini", QUESTION, mock_response="Blue, like the sea.", stream=True)
    print("astream:", "".join([c.choices[0].delta.content or "" async for c in stream]))
    await drain()  # LiteLLM reports async calls from its own worker: let it finish before the loop ends


def main() -> None:
    with tracewire.span("chain", "litellm-demo"):
        reply = litellm.completion("gpt-4o-mini", QUESTION, mock_response="Red.", metadata={"tags": ["demo"]})
        print("sync  :", reply.choices[0].message.content)
        stream = litellm.completion("gpt-4o-mini", QUESTION, mock_response="Yellow, like the sun.", stream=True)
        print("stream:", "".join(c.choices[0].delta.content or "" for c in stream))
        asyncio.run(async_calls())
        try:
            litellm.completion("gpt-4o-mini", QUESTION, mock_response=Exception("provider is down"))
        except litellm.InternalServerError as exc:
            print("failed:", type(exc).__name__)
    tracewire.flush()
    print()
    tracewire_cli(["show", "--last"])


if __name__ == "__main__":
    main()
