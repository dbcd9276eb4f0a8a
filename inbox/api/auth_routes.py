"""Login, logout and `/api/me`."""

from __future__ import annotations

from aiohttp import web

from agents.models import User
from agents.passwords import verify_password
from agents.sessions import SESSION_COOKIE, SESSION_LIFETIME, create_session, revoke
from inbox.api.guard import auth_of, requires
from inbox.http import fail, json_body, json_response

routes = web.RouteTableDef()


def user_json(user: User) -> dict:
    return {"id": user.id, "email": user.email, "name": user.name, "role": user.role}


@routes.post("/api/auth/login")
async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        fail(400, "invalid_body", "email and password are required strings")
    user = await User.get_or_none(email=email.strip().lower())
    if not verify_password(user.password_hash if user else None, password) or user is None or not user.is_active:
        fail(401, "invalid_credentials", "wrong e-mail or password")
    token, session = await create_session(user)
    response = json_response({"token": token, "csrf_token": session.csrf_token, "user": user_json(user)})
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
    )
    return response


@routes.post("/api/auth/logout")
@requires("agent")
async def logout(request: web.Request) -> web.Response:
    await revoke(auth_of(request).session_id)
    response = json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/api/me")
@requires("agent")
async def me(request: web.Request) -> web.Response:
    auth = auth_of(request)
    viewer = auth.viewer
    return json_response(
        {
            **user_json(auth.user),
            "csrf_token": auth.csrf_token,
            "inbox_ids": None if viewer.sees_everything else sorted(viewer.inbox_ids),
            "team_ids": sorted(viewer.team_ids),
        }
    )
