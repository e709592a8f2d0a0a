"""The collector's `/ui/` (a real `tracewire serve` on SQLite and on PostgreSQL): the same pages as the
local viewer, signing in with a read key, and nothing of another project."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.server.collector_harness import make_event
from tests.ui.conftest import BACKENDS, Browser, Target, UiCollector
from tests.ui.recorded import HOSTILE_SESSION, SESSION, XSS_SCRIPT
from tests.ui.test_ui_server import _get
from tracewire.model.ids import new_trace_id
from tracewire.server.store import TraceFilter
from tracewire.ui.server import CSP

_MAIN = re.compile(r"<main>(.*)</main>", re.S)
_TILE = re.compile(r'data-stat="([^"]+)"><div class="k">[^<]*</div><div class="v">([^<]*)</div>')


def _main(html: str) -> str:
    """The page's content as the local viewer would link it (the collector serves it under /ui)."""
    m = _MAIN.search(html)
    assert m, html[:300]
    return re.sub(r'(href|action|src)="/ui/', r'\1="/', m.group(1))


def _dashboard_figures(html: str) -> tuple[dict[str, str], list[str], list[str]]:
    """Tiles, per-model rows and failing-span rows: the figures, not the range's clock times."""
    main = _main(html)
    return (dict(_TILE.findall(main)), re.findall(r'<tr class="model-row">.*?</tr>', main),
            re.findall(r'<tr class="failing-row">.*?</tr>', main))


@pytest.mark.parametrize("backend", BACKENDS)
def test_sessions_and_dashboard_show_what_the_local_viewer_shows(
        backend: str, ui_collectors: Any, agent_store: Path, viewer: Any, browser: Browser) -> None:
    u: UiCollector = ui_collectors(backend)
    d = browser.driver
    Target(f"collector-{backend}", u.ui, u.key.api_key).open(browser, "sessions")
    rows = {r.get_attribute("data-session") for r in d.find_elements(By.CSS_SELECTOR, "tr.session-row")}
    assert rows == {SESSION, HOSTILE_SESSION}
    browser.step("sessions")
    d.find_element(By.CSS_SELECTOR, f'tr[data-session="{SESSION}"] a.session-link').click()
    WebDriverWait(d, 10).until(EC.url_contains(f"/ui/sessions/{SESSION}"))
    assert len(d.find_elements(By.CSS_SELECTOR, ".turn .msg.said")) == 4
    browser.step("session conversation")
    d.find_element(By.ID, "nav-dashboard").click()
    WebDriverWait(d, 10).until(EC.url_contains("/ui/dashboard"))
    assert d.find_element(By.CSS_SELECTOR, '.tile[data-stat="traces"] .v').text == "3"
    browser.step("dashboard")
    assert browser.console_errors() == [] and browser.dialogs() == []

    # the same pages as the local viewer renders from the same events (links moved under /ui)
    local = viewer(agent_store).url
    http = u.session(u.key)
    for path in ("sessions", f"sessions/{SESSION}", f"sessions/{HOSTILE_SESSION}"):
        status, _, page = _get(local + path)
        remote = http.get(u.ui + path, timeout=30)
        assert status == remote.status_code == 200
        assert _main(remote.text) == _main(page), path
    _, _, page = _get(local + "dashboard")
    remote = http.get(u.ui + "dashboard", timeout=30)
    assert _dashboard_figures(remote.text) == _dashboard_figures(page)
    assert _dashboard_figures(page)[0]["LLM calls"] == "5"
    remote = http.get(u.ui + "dashboard", params={"since": "nonsense"}, timeout=30)
    assert remote.status_code == 400 and "nonsense" in remote.text  # said on the page, as locally


@pytest.mark.parametrize("backend", BACKENDS)
def test_another_projects_traces_sessions_and_figures_are_absent(backend: str, ui_collectors: Any) -> None:
    u: UiCollector = ui_collectors(backend)
    c = u.collector
    b_key = c.new_key(f"other-{uuid.uuid4().hex[:8]}", ("ingest", "read"))
    b_trace = new_trace_id()
    assert c.post(b_key, [make_event(b_trace, session_id="b-session", name="b-only")]).status_code == 200
    a_ids = c.store.trace_ids(u.project, TraceFilter(), 10, 0)
    assert len(a_ids) == 3
    a_trace = a_ids[0]
    # a prefix naming A's trace alone that B's (time-ordered) id does not start with
    shared = len(os.path.commonprefix([a_trace, b_trace]))
    a_prefix = a_trace[:max(len(c.store.short_trace_id(u.project, a_trace)), shared + 1)]
    b = u.session(b_key)

    listed = b.get(u.ui, timeout=30).text
    assert re.findall(r'data-trace="([0-9a-f]+)"', listed) == [b_trace]
    assert not any(t in listed for t in a_ids) and "LangGraph" not in listed and XSS_SCRIPT not in listed
    for filtered in ({"session": SESSION}, {"status": "error"}, {"name": "LangGraph"}, {"user": "ana"}):
        assert 'data-trace="' not in b.get(u.ui, params=filtered, timeout=30).text, filtered
    sessions = b.get(u.ui + "sessions", timeout=30).text
    assert re.findall(r'data-session="([^"]+)"', sessions) == ["b-session"]
    tiles = dict(_TILE.findall(b.get(u.ui + "dashboard", timeout=30).text))
    assert tiles["traces"] == "1" and tiles["LLM calls"] == "0"

    # another project's trace, its unique prefix and its session answer as a missing one does
    for given in (a_trace, a_prefix):
        missing = given[:-1] + ("1" if given[-1] == "0" else "0")
        assert not b_trace.startswith(missing) and missing not in a_ids
        r = b.get(u.ui + f"traces/{given}", allow_redirects=False, timeout=30)
        absent = b.get(u.ui + f"traces/{missing}", allow_redirects=False, timeout=30)
        assert r.status_code == absent.status_code == 404, given
        assert r.text.replace(given, "X") == absent.text.replace(missing, "X")
    r = b.get(u.ui + f"sessions/{SESSION}", allow_redirects=False, timeout=30)
    absent = b.get(u.ui + "sessions/no-such-session", allow_redirects=False, timeout=30)
    assert r.status_code == absent.status_code == 404
    assert r.text.replace(SESSION, "X") == absent.text.replace("no-such-session", "X")
    # and project A's key sees its own: the prefix redirects to the whole id
    a = u.session(u.key)
    r = a.get(u.ui + f"traces/{a_prefix}?view=timeline", allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"] == f"/ui/traces/{a_trace}?view=timeline"
    assert b_trace not in a.get(u.ui, timeout=30).text


def _login(u: UiCollector, key: str, **headers: str) -> requests.Response:
    return requests.post(u.ui + "login", data={"key": key, "next": "/ui/sessions"}, headers=headers,
                         allow_redirects=False, timeout=30)


def test_login_cookie_refusals_revocation_and_logout(ui_collectors: Any) -> None:
    u: UiCollector = ui_collectors("sqlite")
    c = u.collector

    # every page, unauthenticated, goes to the login form, which comes back to it; the assets need no key
    for path in ("", "sessions", f"sessions/{SESSION}", "sessions/a%2Fb", "dashboard?since=7d", "traces/0123abcd",
                 "nowhere"):
        r = requests.get(u.ui + path, allow_redirects=False, timeout=30)
        assert r.status_code == 303 and r.headers["Location"] == f"/ui/login?next={quote('/ui/' + path, safe='/')}"
    assert requests.get(c.url + "/ui", allow_redirects=False, timeout=30).headers["Location"] == "/ui/"
    r = requests.get(u.ui + "static/ui.css", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/css")
    form = requests.get(u.ui + "login", params={"next": "/ui/dashboard"}, timeout=30)
    assert form.status_code == 200 and form.headers["Content-Security-Policy"] == CSP
    assert 'action="/ui/login"' in form.text and 'value="/ui/dashboard"' in form.text

    # a good read key: the cookie holds it, HttpOnly, SameSite=Strict, only for /ui/, not Secure over http
    r = _login(u, u.key.api_key, **{"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303 and r.headers["Location"] == "/ui/sessions"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"tracewire_ui={u.key.api_key};")
    attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "path=/ui/", "samesite=strict"} <= attrs and "secure" not in attrs
    # over https (here: a proxy on this host that ended TLS says so) the cookie is Secure too
    r = _login(u, u.key.api_key, **{"X-Forwarded-Proto": "https"})
    assert r.status_code == 303 and "secure" in {a.strip().lower() for a in r.headers["Set-Cookie"].split(";")}

    # refused: no read scope, unknown or malformed keys, and forms posted from another site
    ingest_only = c.new_key(u.project, ("ingest",))
    r = _login(u, ingest_only.api_key)
    assert r.status_code == 403 and "lacks the read scope" in r.text and "Set-Cookie" not in r.headers
    for bad in ("twk_000000000000_nope", "not a key", "", "<script>alert(1)</script>"):
        r = _login(u, bad)
        assert r.status_code == 401 and "Unknown API key." in r.text and "Set-Cookie" not in r.headers
        assert "<script>alert" not in r.text
    for cross in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                  {"Origin": "http://evil.example"}, {"Origin": "null"}):
        r = _login(u, u.key.api_key, **cross)
        assert r.status_code == 403 and "another site" in r.text and "Set-Cookie" not in r.headers, cross
    # where a login goes on to stays in the viewer
    for target in ("//evil.example/x", "https://evil.example/", "/v1/traces", "/ui//evil.example", "/ui/\\evil"):
        r = requests.post(u.ui + "login", data={"key": u.key.api_key, "next": target}, allow_redirects=False,
                          timeout=30)
        assert r.status_code == 303 and r.headers["Location"] == "/ui/", target

    # a session is the key itself: checked on every request, so revoking it ends the session at once
    key = c.new_key(u.project, ("read",))
    s = u.session(key)
    page = s.get(u.ui, allow_redirects=False, timeout=30)
    assert page.status_code == 200 and page.headers["Content-Security-Policy"] == CSP
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    assert c.store.revoke_key(key.key_id, 1.0)
    r = s.get(u.ui, allow_redirects=False, timeout=30)
    assert r.status_code == 303 and r.headers["Location"].startswith("/ui/login")
    r = _login(u, key.api_key)
    assert r.status_code == 401 and "revoked" in r.text

    # logging out clears the cookie
    s = u.session(u.key)
    r = s.get(u.ui + "logout", allow_redirects=False, timeout=30)
    assert r.status_code == 303 and r.headers["Location"] == "/ui/login"
    assert "tracewire_ui=" in r.headers["Set-Cookie"] and "max-age=0" in r.headers["Set-Cookie"].lower()
    assert s.get(u.ui, allow_redirects=False, timeout=30).status_code == 303
