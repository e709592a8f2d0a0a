"""`/sessions` and `/sessions/<id>` over HTTP: the roll-ups, turns in time order, feedback and metric
points beside their turn, and captured values (a session id among them) kept as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tracewire
from tests.ui.test_ui_server import _get

HOSTILE_ID = '"><script>alert(1)</script>'


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "tracewire.db"
    client = tracewire.init(sink="sqlite", db=str(db))
    with tracewire.session(session_id="chat-1", user_id="ana"):
        for n, question in enumerate(("first <b>question</b>", "second question")):
            with tracewire.span("agent", f"turn {n}"):
                tracewire.record("user.input", input=question)
                with tracewire.span("llm", "chat", attributes={"gen_ai.usage.input_tokens": 100,
                                                               "gen_ai.usage.output_tokens": 10}):
                    pass
                tracewire.record("agent.response", output=f"answer {n}")
                tracewire.record("user.feedback", name="thumbs", output={"score": 1 - n})
                tracewire.record("metric", name="relevance", output=0.5 + n / 4)
    with tracewire.session(session_id=HOSTILE_ID, user_id="<img src=x onerror=alert(2)>"):
        try:
            with tracewire.span("agent", "plan", input="<script>alert(3)</script>"), tracewire.span("tool", "search"):
                raise TimeoutError("slow")
        except TimeoutError:
            pass
    assert client.flush(10)
    tracewire.shutdown()
    return db


def test_sessions_list_and_a_session_read_in_order(store: Path, viewer: Any) -> None:
    base = viewer(store).url
    status, _, html = _get(base + "sessions")
    assert status == 200 and html.count('<tr class="session-row"') == 2
    row = html[html.index('data-session="chat-1"'):].split("</tr>")[0]
    for cell in ('class="user">ana<', 'class="num traces">2<', 'class="num llm">2<', 'class="num tokens">200 / 20<',
                 'class="num errors">0<'):
        assert cell in row
    link = 'href="/sessions/%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E"'  # its "/" too: one path segment
    assert link in html
    assert "<script>alert" not in html and "<img" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html

    status, _, page = _get(base + "sessions/chat-1")
    assert status == 200
    turns = page.split('<section class="turn"')[1:]
    assert len(turns) == 2
    assert "first &lt;b&gt;question&lt;/b&gt;" in turns[0] and "answer 0" in turns[0] and "second" not in turns[0]
    assert "second question" in turns[1] and "answer 1" in turns[1]
    assert turns[0].index("first &lt;b&gt;") < turns[0].index("1 LLM call") < turns[0].index("answer 0")
    assert "user.feedback" in turns[0] and '&quot;score&quot;: 1' in turns[0] and "relevance" in turns[0]
    assert "0.75" in turns[1] and '&quot;score&quot;: 0' in turns[1]
    assert 'data-fact="tokens in / out"><span class="k">tokens in / out</span> <span class="v">200 / 20<' in page
    assert 'data-fact="errors"><span class="k">errors</span> <span class="v">0<' in page
    trace_page = _get(base + page[page.index('href="/traces/') + 7:].split('"')[0])[2]
    assert '<span class="kind kind-user">user.feedback</span><span class="name">thumbs</span>' in trace_page
    assert '<span class="kind kind-metric">metric</span><span class="name">relevance</span>' in trace_page


def test_a_hostile_session_id_stays_text(store: Path, viewer: Any) -> None:
    base = viewer(store).url
    listed = _get(base + "sessions")[2]
    href = listed[listed.index('href="/sessions/%22') + 6:].split('"')[0]
    status, _, page = _get(base + href.lstrip("/"))
    assert status == 200 and "<script>alert" not in page and "<img" not in page
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page and "error in tool search" in page
    assert 'data-fact="errors"><span class="k">errors</span> <span class="v">1<' in page
    trace = page[page.index('href="/traces/') + 6:].split('"')[0]
    assert f'href="{href}"' in _get(base + trace.lstrip("/"))[2]  # its trace links back to it
    status, _, missing = _get(base + "sessions/%3Cb%3Enone")
    assert status == 404 and "&lt;b&gt;none" in missing and "<b>none" not in missing
