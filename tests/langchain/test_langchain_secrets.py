"""Secrets a LangChain run carries (invocation parameters, run metadata, tool arguments) are
scrubbed under any spelling of their key, while token counts stay readable."""

from __future__ import annotations

import json
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

import tracewire
from tests.conftest import Recorder
from tests.langchain.lc_fakes import ChatScripted, usage
from tracewire.integrations.langchain import TracewireCallbackHandler
from tracewire.pipeline.redact import REDACTED

SECRETS = {
    "accessToken": "lc-access-7f3a9b", "clientSecret": "lc-client-2c8d1e", "privateKey": "lc-private-9e4f0a",
    "SECRET_KEY": "lc-secretkey-5b6c", "OPENAI_KEY": "lc-openai-1a2b3c", "passphrase": "lc-phrase-8d7e",
    "auth": "lc-auth-4f5e6d", "Ocp-Apim-Subscription-Key": "lc-apim-0a9b8c",
}


def test_invocation_params_run_metadata_and_tool_arguments_are_scrubbed(recorder: Recorder, tmp_path: Path) -> None:
    model = ChatScripted(respond=lambda _: AIMessage(content="ok", usage_metadata=usage(7, 2)))
    handler = TracewireCallbackHandler()
    model.bind(**{"Ocp-Apim-Subscription-Key": SECRETS["Ocp-Apim-Subscription-Key"], "max_tokens": 99}).invoke(
        [HumanMessage("hi")], config={"callbacks": [handler], "metadata": dict(SECRETS)})

    @tool
    def login(user: str, passphrase: str, accessToken: str) -> str:  # noqa: N803 - the spelling under test
        """Log in."""
        return "in"

    login.invoke({"user": "ann", "passphrase": SECRETS["passphrase"], "accessToken": SECRETS["accessToken"]},
                 config={"callbacks": [handler]})
    events = recorder.events()
    blob = json.dumps(events)
    for value in SECRETS.values():
        assert value not in blob, value
    llm_start = next(e for e in events if e["type"] == "llm.start")
    assert REDACTED in json.dumps(llm_start)
    assert "99" in json.dumps(llm_start)  # max_tokens kept
    llm_end = next(e for e in events if e["type"] == "llm.end")
    assert llm_end["attributes"]["gen_ai.usage.input_tokens"] == 7
    tool_start = next(e for e in events if e["type"] == "tool.start")
    assert "ann" in json.dumps(tool_start["input"]) and REDACTED in json.dumps(tool_start["input"])
    tracewire.flush(5)
