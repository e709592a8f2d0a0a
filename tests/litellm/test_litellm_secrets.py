"""No API key, Bearer header or secret reaches the SQLite file, on the real HTTP path (sync and
async, succeeding and failing, key passed explicitly and through the environment); and an
`acompletion` finished just before interpreter exit is still recorded."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import litellm
import openai
import pytest

import tracewire
from tracewire.integrations.litellm import TracewireLogger, drain
from tracewire.testing.openai_server import OpenAIServer, Reply

# Deliberately not shaped like any known key (no `sk-` prefix), so the core's value scrubber
# cannot be what keeps them out: they must never be read in the first place.
EXPLICIT_KEY = "lk-explicit-7f3a9c2e1b5d4a60"
ENV_KEY = "lk-environ-4d8e6b1a0c3f9e27"
MESSAGES = [{"role": "user", "content": "hi"}]


def db_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))


def db_spans(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    try:
        return [json.loads(body) for (body,) in conn.execute("SELECT body FROM events ORDER BY seq_no")]
    finally:
        conn.close()


def assert_no_secret(db: Path) -> None:
    raw = db_bytes(db)
    assert raw, "nothing was written"
    for secret in (EXPLICIT_KEY.encode(), ENV_KEY.encode(), b"Bearer", b"bearer", b"Authorization", b"api_key"):
        assert secret not in raw, secret


def test_keys_never_reach_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    db = tmp_path / "tw.db"
    tracewire.init(sink=["sqlite"], db=str(db), flush_interval=0.01)
    saved = litellm.callbacks
    litellm.callbacks = [TracewireLogger()]
    try:
        with OpenAIServer(default=Reply("fine")) as srv:
            srv.push(Reply("fine"), Reply("fine"), Reply(status=401, error_message="bad key"))
            base = {"api_base": srv.base_url, "max_retries": 0, "num_retries": 0}
            litellm.completion("openai/gpt-4o-mini", MESSAGES, api_key=EXPLICIT_KEY, **base)
            litellm.completion("openai/gpt-4o-mini", MESSAGES, **base)  # key from OPENAI_API_KEY
            with pytest.raises(openai.APIStatusError):
                litellm.completion("openai/gpt-4o-mini", MESSAGES, api_key=EXPLICIT_KEY, **base)

            async def async_calls() -> None:
                # failures on the async path too (LiteLLM's async failure hooks), both keys
                srv.push(Reply(status=401, error_message="bad key"), Reply(status=401, error_message="bad key"))
                for key in ({"api_key": EXPLICIT_KEY}, {}):
                    with pytest.raises(openai.APIStatusError):
                        await litellm.acompletion("openai/gpt-4o-mini", MESSAGES, **key, **base)
                await litellm.acompletion("openai/gpt-4o-mini", MESSAGES, api_key=EXPLICIT_KEY, **base)
                await litellm.acompletion("openai/gpt-4o-mini", MESSAGES, **base)
                stream = await litellm.acompletion("openai/gpt-4o-mini", MESSAGES, api_key=EXPLICIT_KEY,
                                                   stream=True, **base)
                async for _ in stream:
                    pass
                await drain()

            asyncio.run(async_calls())
            seen = [{k.lower(): v for k, v in r.headers.items()}.get("authorization") for r in srv.requests]
        # the keys really went over the wire, in the Authorization header
        assert seen.count(f"Bearer {EXPLICIT_KEY}") == 5 and seen.count(f"Bearer {ENV_KEY}") == 3
        for _ in range(100):  # sync success hooks run on LiteLLM's logging threads
            tracewire.flush(5)
            ends = [e for e in db_spans(db) if e["phase"] in ("end", "error")]
            if len(ends) == 8:
                break
            time.sleep(0.05)
    finally:
        litellm.callbacks = saved
        tracewire.shutdown()
    events = db_spans(db)
    assert sorted(e["type"] for e in events if e["phase"] != "start") == ["llm.end"] * 5 + ["llm.error"] * 3
    errors = [e for e in events if e["phase"] == "error"]
    assert [(e["error"]["code"], "bad key" in e["error"]["message"]) for e in errors] == [("401", True)] * 3
    assert_no_secret(db)


def test_async_call_right_before_exit_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LiteLLM drains its async logging worker in an exit hook that runs after tracewire's final
    flush; the logger drains it first, so the success of a last `acompletion` is not lost. Runs
    what `atexit` runs (the client's exit hook), in-process: a subprocess would import LiteLLM again."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    db = tmp_path / "exit.db"
    client = tracewire.init(sink=["sqlite"], db=str(db), flush_interval=5.0)
    saved = litellm.callbacks
    litellm.callbacks = [TracewireLogger()]
    try:
        with OpenAIServer([Reply("bye", prompt_tokens=4, completion_tokens=2)]) as srv:

            async def main() -> None:
                await litellm.acompletion("openai/gpt-4o-mini", MESSAGES, api_base=srv.base_url, max_retries=0)

            asyncio.run(main())  # no drain(): the success callback is still queued in LiteLLM's worker
            assert not db.exists() or not [e for e in db_spans(db) if e["phase"] == "end"]
            client._at_exit()  # what the interpreter's exit runs
    finally:
        litellm.callbacks = saved
        asyncio.set_event_loop(None)  # LiteLLM's exit drain leaves a closed loop set as current
        tracewire.shutdown()
    events = db_spans(db)
    assert [e["type"] for e in events] == ["llm.start", "llm.end"]
    assert events[1]["attributes"]["gen_ai.usage.input_tokens"] == 4
    assert events[1]["output"] == {"role": "assistant", "content": "bye"}
    assert_no_secret(db)
