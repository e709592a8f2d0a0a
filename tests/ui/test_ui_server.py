"""The viewer over HTTP: filters and paging, headers, escaping, the loopback guard and `tracewire ui`'s options."""

from __future__ import annotations

import argparse
import http.client
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import tracewire
from tracewire.read import formats as fmt
from tracewire.read.local import LocalStore
from tracewire.ui.cli import add_ui_command, run_ui
from tracewire.ui.server import CSP


def _get(url: str, host: str | None = None) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """62 traces: 60 `ok` turns in two sessions of two users, and two failing ones."""
    db = tmp_path / "tracewire.db"
    client = tracewire.init(sink="sqlite", db=str(db))
    for i in range(60):
        with tracewire.session(session_id=f"s-{i % 2}", user_id=f"u-{i % 2}"):
            with tracewire.span("agent", f"turn {i:02d}"):
                with tracewire.span("llm", "chat", attributes={"gen_ai.usage.input_tokens": 1000 + i,
                                                               "gen_ai.usage.output_tokens": 5,
                                                               "tracewire.cost_usd": 0.0012}):
                    pass
    for name in ("planner <b>bold</b>", "planner two"):
        try:
            with tracewire.session(session_id="s-err", user_id="u-err"):
                with tracewire.span("agent", name), tracewire.span("chain", "step"), tracewire.span("tool", "search"):
                    raise TimeoutError("search backend timed out")
        except TimeoutError:
            pass
    assert client.flush(10)
    tracewire.shutdown()
    return db


def _rows(html: str) -> int:
    return html.count('<tr class="trace ')


def test_filters_and_paging(store: Path, viewer: Any) -> None:
    base = viewer(store).url
    _, _, first = _get(base)
    assert _rows(first) == 50 and 'class="older" href="/?page=2"' in first and 'class="newer"' not in first
    _, _, second = _get(base + "?page=2")
    assert _rows(second) == 12 and 'class="newer" href="/?page=1"' in second and 'class="older"' not in second
    assert _rows(_get(base + "?session=s-1")[2]) == 30
    assert _rows(_get(base + "?user=u-0&session=s-0")[2]) == 30
    assert _rows(_get(base + "?user=u-0&session=s-1")[2]) == 0
    errors = _get(base + "?status=error")[2]
    assert _rows(errors) == 2 and errors.count("error (tool search)") == 2
    ok = _get(base + "?status=ok")[2]
    assert _rows(ok) == 50 and "error" not in ok.split("<tbody>")[1]
    named = _get(base + "?name=turn+4")[2]  # a substring of the root span's name, not of its children's
    assert _rows(named) == 10 and "turn 41" in named
    assert _rows(_get(base + "?name=%25")[2]) == 0  # LIKE's wildcards are literal
    assert _rows(_get(base + "?name=chat")[2]) == 0
    paged = _get(base + "?status=ok&page=2")[2]
    assert _rows(paged) == 10 and 'href="/?status=ok&amp;page=1"' in paged
    row = first[first.index("turn 59"):]
    assert "1,059 / 5" in row[:2000] and "$0.0012" in row[:2000]


def test_headers_escaping_and_not_found(store: Path, viewer: Any) -> None:
    base = viewer(store).url
    status, headers, html = _get(base + "?status=error")
    assert status == 200 and headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert "planner &lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold" not in html
    trace = html[html.index('href="/traces/') + 6:].split('"')[0]
    status, _, page = _get(base + trace.lstrip("/"))
    assert status == 200 and "TimeoutError" in page and "search backend timed out" in page
    assert "<style" not in page and " style=" not in page and " on" + "click=" not in page  # nothing inline for the CSP to block
    status, headers, css = _get(base + "static/ui.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css") and ".tree" in css
    assert _get(base + "static/ui.js")[1]["Content-Type"].startswith("text/javascript")
    status, _, missing = _get(base + "traces/%3Cscript%3E")
    assert status == 404 and "&lt;script&gt;" in missing and "<script>" not in missing
    assert _get(base + "nothing/here")[0] == 404


def test_an_id_prefix_redirects_when_unique(store: Path, viewer: Any) -> None:
    server = viewer(store)
    ids = [i for page in (1, 2) for i in re.findall(r'data-trace="([0-9a-f]+)"', _get(server.url + f"?page={page}")[2])]
    assert len(ids) == 62
    whole = ids[0]
    unique = next(whole[:n] for n in range(4, 33) if sum(i.startswith(whole[:n]) for i in ids) == 1)
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    conn.request("GET", f"/traces/{unique}?span=abc")
    r = conn.getresponse()
    r.read()
    assert (r.status, r.getheader("Location")) == (302, f"/traces/{whole}?span=abc")
    status, _, shared = _get(server.url + f"traces/{whole[:4]}")  # time-led ids: all 62 share their first characters
    assert status == 404 and f"62 traces start with <code>{whole[:4]}</code> (the first 5)" in shared \
        and shared.count('<li><a href="/traces/') == 5
    assert _get(server.url + "traces/zzzz")[0] == 404


def test_a_foreign_host_name_is_refused(store: Path, viewer: Any) -> None:
    """A page that points its own domain at 127.0.0.1 (DNS rebinding) gets nothing from the store."""
    base = viewer(store).url
    port = base.rsplit(":", 1)[1].strip("/")
    status, _, body = _get(base, host=f"attacker.example:{port}")
    assert status == 403 and "turn" not in body
    assert _get(base, host=f"localhost:{port}")[0] == 200


def test_no_store_yet(tmp_path: Path, viewer: Any) -> None:
    status, _, html = _get(viewer(tmp_path / "absent.db").url)
    assert status == 200 and "No traces recorded yet" in html and str(tmp_path / "absent.db") in html


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tracewire")
    add_ui_command(parser.add_subparsers(dest="command"))
    return parser.parse_args(["ui", *argv])


def test_ui_options_and_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    a = _args()
    assert (a.host, a.port, a.no_browser, a.allow_remote, a.db, a.func) == ("127.0.0.1", 7007, False, False, None, run_ui)
    assert run_ui(_args("--host", "0.0.0.0", "--no-browser")) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run_ui(_args("--port", str(port), "--no-browser")) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_list_rows_are_the_read_layers_summaries_in_the_shared_formats(store: Path, viewer: Any) -> None:
    with_store = LocalStore(str(store))
    try:
        newest = with_store.list_traces(1)[0]
    finally:
        with_store.close()
    html = _get(viewer(store).url)[2]
    row = html[html.index(f'data-trace="{newest["trace_id"]}"'):].split("</tr>")[0]
    assert f'<div class="id">{newest["short_id"]}</div>' in row
    assert f'<td class="start">{fmt.when(newest["start_ns"])}</td>' in row
    assert f'<td class="num duration">{fmt.duration(newest["duration_ms"])}</td>' in row
    assert f'<td class="num tokens">{fmt.tokens_in_out(newest["input_tokens"], newest["output_tokens"])}</td>' in row
    assert f'<td class="num cost">{fmt.cost(newest["cost_usd"])}</td>' in row
