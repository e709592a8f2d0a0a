"""The web viewer at `/ui/`: the pages of `tracewire.ui.routes` over the signed-in key's project.

Signing in: `/ui/login` takes an API key with the `read` scope and keeps it in a cookie (HttpOnly,
SameSite=Strict, Secure over https, path /ui/). The key itself is the session: every request checks it
as the read API checks a bearer key (so a revoked key stops working at once) and nothing is kept per
process, so any replica of the collector accepts the cookie. The login form is the only POST; it is
refused when the browser says it came from another site (Origin, Sec-Fetch-Site).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from tracewire.server.ingest import WireError
from tracewire.server.store import KeyRecord
from tracewire.server.ui_source import ProjectSource
from tracewire.ui import routes as pages
from tracewire.ui.routes import Reply

if TYPE_CHECKING:
    from tracewire.server.app import Collector

PREFIX = "/ui"
COOKIE = "tracewire_ui"
_MAX_FORM_BYTES = 8192
# Where a sign-in may go on to: a page of the viewer, never another origin ("//host", "/ui/\\host").
_NEXT = re.compile(r"^/ui/[A-Za-z0-9._~%/?=&+\-]*$")

Auth = Callable[[str | None, str], Awaitable[KeyRecord]]


def _same_site(request: Request) -> bool:
    """False when the browser says the form was posted from another site. Sec-Fetch-Site decides when
    sent; else Origin, which is "null" under the pages' no-referrer policy (so "null" alone proves
    nothing and is refused); a request with neither is not a browser's cross-site form."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    # The host alone: behind a proxy that ends TLS, the scheme seen here is not the browser's.
    return urlsplit(origin).netloc.lower() == (request.headers.get("host") or "").lower()


def _raw_path(request: Request) -> str:
    """The path as sent, still percent-encoded as the pages expect (an id may hold an encoded "/")."""
    raw = (request.scope.get("raw_path") or b"").decode("latin-1").split("?", 1)[0]
    return raw if raw.startswith(PREFIX + "/") else quote(request.url.path, safe="/")


def _next_path(value: str) -> str:
    return value if _NEXT.match(value) and "//" not in value else PREFIX + "/"


async def _form(request: Request) -> dict[str, str]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def mount_viewer(app: FastAPI, col: Collector, auth: Auth) -> None:
    """Add the `/ui/` routes; `auth` checks an API key for a scope (401/403/429 as a WireError)."""
    def send(reply: Reply) -> Response:
        """A reply of the pages, which link from the root of their own path space: moved under PREFIX."""
        body = reply.body
        headers = {**pages.HEADERS, **reply.headers}
        if reply.content_type.startswith("text/html"):
            body = pages.under(PREFIX, body.decode()).encode()
        if headers.get("Location", "").startswith("/"):
            headers["Location"] = PREFIX + headers["Location"]
        return Response(body, reply.status, headers, media_type=reply.content_type)

    def redirect(location: str) -> Response:
        """303 to a path of the viewer (given without PREFIX)."""
        return send(Reply(HTTPStatus.SEE_OTHER, b"", headers={"Location": location}))

    def to_login(request: Request) -> Response:
        target = _raw_path(request) + (f"?{request.url.query}" if request.url.query else "")
        return redirect(f"/login?next={quote(_next_path(target), safe='/')}")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:  # browsers ask on every page; there is none, and a 404 would be logged
        return Response(b"", HTTPStatus.NO_CONTENT, media_type="image/x-icon")

    @app.get(PREFIX, include_in_schema=False)
    async def ui_root() -> Response:
        return send(Reply(HTTPStatus.MOVED_PERMANENTLY, b"", headers={"Location": "/"}))

    @app.get(PREFIX + "/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        return send(pages.login(next_path=_next_path(request.query_params.get("next", ""))))

    @app.post(PREFIX + "/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if not _same_site(request):
            return send(pages.login("Refused: this form was sent from another site.", status=HTTPStatus.FORBIDDEN))
        form = await _form(request)
        key, next_path = form.get("key", "").strip(), _next_path(form.get("next", ""))
        try:
            await auth(key or None, "read")
        except WireError as exc:
            message = {"insufficient_scope": "This key lacks the read scope: the viewer needs a key created with "
                                             "--scope read.",
                       "revoked_key": "This key has been revoked.",
                       "rate_limited": "Too many requests for this key: try again in a moment.",
                       }.get(exc.code, "Unknown API key.")
            return send(pages.login(message, next_path, status=exc.status))
        response = redirect(next_path[len(PREFIX):])
        response.set_cookie(COOKIE, key, path=PREFIX + "/", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @app.api_route(PREFIX + "/logout", methods=["GET", "POST"], include_in_schema=False)
    async def logout(request: Request) -> Response:
        response = redirect("/login")
        response.delete_cookie(COOKIE, path=PREFIX + "/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    @app.api_route(PREFIX + "/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def page(request: Request) -> Response:
        path = _raw_path(request)[len(PREFIX):]
        static = pages.static(path)
        if static is not None:
            return send(static)
        try:
            rec = await auth(request.cookies.get(COOKIE), "read")
        except WireError as exc:
            if exc.status == HTTPStatus.TOO_MANY_REQUESTS:
                return send(Reply(exc.status, b"too many requests for this key\n", "text/plain; charset=utf-8",
                                        exc.headers))
            return to_login(request)
        source = ProjectSource(col, rec.project)
        return send(await run_in_threadpool(pages.respond, lambda: source, path, request.url.query,
                                            f"project {rec.project}"))
