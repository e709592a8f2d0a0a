"""The worker's secret-hint scan over a whole batch: one pass names every event the per-event check
would send down the processors' walk, and a batch with secrets in some events stores each event
exactly as one at a time would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import tracewire
from tracewire.engine.stats import balanced
from tracewire.model import codec as _json
from tracewire.pipeline.redact import REDACTED, Redactor
from tracewire.sinks.memory import MemorySink

_FRAGMENTS = ["sk-", "sk-proj-abcdefghijklmnop", "Bearer ", "AKIA", "0123456789ABCDEFGHIJ", "eyJ", "ghp_",
              "token", "max_tokens", "api_key", "://u:p@h", "kenobi", "za", "é", "İ", "\x00", "\n", " ", '"', ":"]
_texts = st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=12), max_size=10).map("".join)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_texts, max_size=8))
def test_the_batch_scan_names_every_text_the_per_text_check_flags(texts: list[str]) -> None:
    r = Redactor(["kenobi"])
    named = set(r.suspects(texts))
    for i, text in enumerate(texts):
        if r.may_need_scrubbing(text):
            assert i in named, (i, texts)


def test_a_batch_names_only_the_texts_with_hints() -> None:
    r = Redactor()
    plain = _json.dumps_strict({"q": "weather in Paris"})
    texts = [plain, _json.dumps_strict({"api_key": "x"}), plain, "ghp_" + "a" * 36, plain]
    assert r.suspects(texts) == [1, 3]
    # a token prefix in the text before a run: named, though alone it is clean (a neighbour only adds)
    assert r.suspects(["ghp_", "a" * 36]) == [1] and not r.may_need_scrubbing("a" * 36)
    # lower-casing that changes the length: every text is checked on its own
    assert r.suspects(["İ", plain]) == [0, 1]


def test_a_batch_with_secrets_in_some_events_stores_each_as_alone() -> None:
    sink = MemorySink()
    c = tracewire.init(sink=[sink], flush_interval=60, batch_size=10_000)
    for i in range(300):  # several scans' worth of text
        secret = {"api_key": f"k{i}"} if i % 7 == 0 else {"note": "sk-" + "A" * 20} if i % 11 == 0 else {}
        tracewire.record("log", name=f"n{i}", input={"q": "x" * 200, **secret})
    assert c.flush(10)
    assert [e["name"] for e in sink.events] == [f"n{i}" for i in range(300)]
    for i, e in enumerate(sink.events):
        if i % 7 == 0:
            assert e["input"]["api_key"] == REDACTED
        elif i % 11 == 0:
            assert e["input"]["note"] == REDACTED
        else:
            assert e["input"] == {"q": "x" * 200}
    assert balanced(c.stats())
