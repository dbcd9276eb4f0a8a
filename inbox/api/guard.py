"""Authentication and role checks for API handlers: `@requires("agent")` on every route."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from agents.access import ROLE_RANK
from agents.sessions import CSRF_HEADER, SESSION_COOKIE, Authenticated, csrf_ok, resolve
from inbox.http import fail

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AUTH_KEY = web.RequestKey("auth", Authenticated)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


async def authenticate(request: web.Request, *, allow_query_token: bool = False) -> Authenticated | None:
    token = bearer_token(request)
    if token:
        return await resolve(token, via_cookie=False)
    if allow_query_token and request.query.get("token"):
        return await resolve(request.query["token"], via_cookie=False)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return await resolve(cookie, via_cookie=True)
    return None


def requires(role: str) -> Callable[[Handler], Handler]:
    """401 without a valid session, 403 below `role`, 403 for a cookie write without the CSRF header."""
    rank = ROLE_RANK[role]

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            auth = await authenticate(request)
            if auth is None:
                fail(401, "unauthorized", "log in first (bearer token or session cookie)")
            if request.method not in SAFE_METHODS and not csrf_ok(auth, request.headers.get(CSRF_HEADER)):
                fail(403, "csrf_failed", f"cookie-authenticated writes need the {CSRF_HEADER} header")
            if ROLE_RANK[auth.user.role] < rank:
                fail(403, "forbidden", f"this needs the {role} role")
            request[AUTH_KEY] = auth
            return await handler(request)

        guarded.required_role = role  # type: ignore[attr-defined]  # read by the OpenAPI document and tests
        return guarded

    return decorate


def auth_of(request: web.Request) -> Authenticated:
    return request[AUTH_KEY]
