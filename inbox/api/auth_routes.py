"""Login (rate-limited, audited), logout, "log out everywhere", password change and `/api/me`."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from agents.access import access_changed
from agents.audit import audit
from agents.login_limits import LoginLimiter
from agents.models import AuthSession, User
from agents.passwords import hash_password_off_loop, verify_password_off_loop
from agents.sessions import SESSION_COOKIE, SESSION_LIFETIME, create_session, revoke
from inbox.api.guard import auth_of, requires
from inbox.api.openapi import PATHS, document, json_response_of, op
from inbox.http import ApiError, fail, json_body, json_response
from inbox.keys import BUS

routes = web.RouteTableDef()
LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)
MIN_PASSWORD_LENGTH = 10


def require_strong_password(password: object, what: str = "the password") -> None:
    """422 `weak_password` unless it is a string of MIN_PASSWORD_LENGTH to 1024 characters (one rule for every
    password a person or an admin sets)."""
    if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= 1024:
        fail(422, "weak_password", f"{what} needs {MIN_PASSWORD_LENGTH} to 1024 characters")


def _limiter(request: web.Request) -> LoginLimiter:
    app = request.app
    if LOGIN_LIMITER not in app:  # one per application, made on first use
        app[LOGIN_LIMITER] = LoginLimiter()
    return app[LOGIN_LIMITER]


def _too_many(retry_after: float) -> ApiError:
    error = ApiError(429, "too_many_attempts", "too many failed logins; try again later (quá nhiều lần đăng nhập sai)")
    error.headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    return error


def user_json(user: User) -> dict:
    return {"id": user.id, "email": user.email, "name": user.name, "role": user.role}


@routes.post("/api/auth/login")
async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        fail(400, "invalid_body", "email and password are required strings")
    account, address = email.strip().lower(), request.remote
    limiter = _limiter(request)
    wait = limiter.retry_after(account, address)
    if wait is not None:  # before the password hash: a locked account costs no argon2 time
        raise _too_many(wait)
    user = await User.get_or_none(email=account)
    if (
        not await verify_password_off_loop(user.password_hash if user else None, password)
        or user is None
        or not user.is_active
    ):
        locked = limiter.failed(account, address)
        # The e-mail is personal data and not kept; an unknown one is recorded without a target.
        await audit(
            "login_failed",
            actor_id=None,
            target_type="user" if user else None,
            target_id=user.id if user else None,
            data={"locked": locked, "known_user": user is not None},
            request=request,
        )
        fail(401, "invalid_credentials", "wrong e-mail or password")
    limiter.succeeded(account)
    token, session = await create_session(user)
    await audit("login", actor_id=user.id, target_type="user", target_id=user.id, request=request)
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
    auth = auth_of(request)
    await revoke(auth.session_id)
    await request.app[BUS].publish(access_changed([auth.user.id], session_ids=[auth.session_id]))
    response = json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.post("/api/auth/logout-all")
@requires("agent")
async def logout_everywhere(request: web.Request) -> web.Response:
    """Revoke every session of this user (every browser and device), this one included."""
    user = auth_of(request).user
    count = await AuthSession.filter(user_id=user.id, revoked=False).update(revoked=True)
    await request.app[BUS].publish(access_changed([user.id]))  # the open tabs of every device end too
    await audit("logout_all", actor_id=user.id, target_type="user", target_id=user.id, data={"sessions": count},
                request=request)  # fmt: skip
    response = json_response({"ok": True, "revoked_sessions": count})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.post("/api/auth/password")
@requires("agent")
async def change_password(request: web.Request) -> web.Response:
    """Change one's own password; every other session is revoked (a stolen session dies with the old password)."""
    auth = auth_of(request)
    body = await json_body(request)
    current, new = body.get("current_password"), body.get("new_password")
    if not isinstance(current, str) or not isinstance(new, str):
        fail(400, "invalid_body", "current_password and new_password are required strings")
    require_strong_password(new, "the new password")
    user = await User.get(id=auth.user.id)
    if not await verify_password_off_loop(user.password_hash, current):
        await audit("password_change_failed", actor_id=user.id, target_type="user", target_id=user.id,
                    request=request)  # fmt: skip
        fail(403, "wrong_password", "the current password is wrong")
    user.password_hash = await hash_password_off_loop(new)
    user.password_changed_at = datetime.now(UTC)
    await user.save(update_fields=["password_hash", "password_changed_at"])
    others = AuthSession.filter(user_id=user.id, revoked=False).exclude(id=auth.session_id)
    ended = list(await others.values_list("id", flat=True))
    revoked = await AuthSession.filter(id__in=ended).update(revoked=True) if ended else 0
    if ended:  # a stolen session's open socket ends with it
        await request.app[BUS].publish(access_changed([user.id], session_ids=ended))
    await audit("password_change", actor_id=user.id, target_type="user", target_id=user.id,
                data={"revoked_sessions": revoked}, request=request)  # fmt: skip
    return json_response({"ok": True, "revoked_sessions": revoked})


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


_OK_REVOKED = json_response_of(
    {
        "type": "object",
        "required": ["ok", "revoked_sessions"],
        "properties": {"ok": {"type": "boolean"}, "revoked_sessions": {"type": "integer"}},
    }
)
_RATE_LIMITED = {"429": {"$ref": "#/components/responses/Error"}}
PATHS["/api/auth/login"]["post"]["responses"].update(_RATE_LIMITED)  # the login limit's answer
document(
    {
        "/api/auth/logout-all": {
            "post": op("Log out everywhere: revoke every session of this user", _OK_REVOKED, tag="auth")
        },
        "/api/auth/password": {
            "post": op(
                "Change one's password; every other session is revoked",
                _OK_REVOKED,
                body={
                    "type": "object",
                    "required": ["current_password", "new_password"],
                    "properties": {
                        "current_password": {"type": "string"},
                        "new_password": {"type": "string", "minLength": MIN_PASSWORD_LENGTH, "maxLength": 1024},
                    },
                },
                tag="auth",
            )
        },
    }
)
