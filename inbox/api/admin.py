"""Admin views: inboxes, users, dead letters; audited changes of roles, permissions and inbox credentials."""

from __future__ import annotations

import re

from aiohttp import web
from tortoise.transactions import in_transaction

from agents.access import access_changed
from agents.audit import audit
from agents.models import ROLES, AuthSession, User
from inbox.api.auth_routes import user_json
from inbox.api.guard import auth_of, requires
from inbox.api.openapi import PATH_ID, document, json_response_of, op, ref
from inbox.http import fail, int_param, json_body, json_response
from inbox.keys import BUS, DIRECTORY
from inbox.models import DeadLetter, Inbox
from inbox.serialize import iso

routes = web.RouteTableDef()


def inbox_json(inbox: Inbox) -> dict:
    """Credentials are never returned: only which ones are set."""
    return {
        "id": inbox.id,
        "name": inbox.name,
        "channel": inbox.channel,
        "external_id": inbox.external_id,
        "credentials_set": sorted(k for k, v in (inbox.credentials or {}).items() if v),
        "settings": inbox.settings,
        # "active", or "needs_reauth" (e.g. Zalo refused to refresh the OA's token) with a reason to show.
        "state": inbox.state,
        "state_reason": inbox.state_reason,
        "created_at": iso(inbox.created_at),
    }


@routes.get("/api/inboxes")
@requires("agent")
async def inboxes(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    query = Inbox.all() if viewer.sees_everything else Inbox.filter(id__in=list(viewer.inbox_ids))
    return json_response({"items": [inbox_json(i) for i in await query.order_by("id")]})


@routes.get("/api/users")
@requires("supervisor")
async def users(request: web.Request) -> web.Response:
    return json_response({"items": [user_json(u) for u in await User.all().order_by("id")]})


@routes.get("/api/dead-letters")
@requires("admin")
async def dead_letters(request: web.Request) -> web.Response:
    limit = int_param(request.query.get("limit"), "limit", default=50, high=500)
    query = DeadLetter.all()
    if request.query.get("before"):
        query = query.filter(id__lt=int_param(request.query["before"], "before"))
    rows = await query.order_by("-id").limit(limit)
    return json_response(
        {
            "items": [
                {
                    "id": d.id,
                    "channel": d.channel,
                    "inbox_id": d.inbox_id,
                    "account_id": d.account_id,
                    "reason": d.reason,
                    "payload": d.payload,
                    "received_at": iso(d.received_at),
                }
                for d in rows
            ]
        }
    )


# ---------------------------------------------------------------------------------------------- changes (audited)

PERMISSION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def staff_json(user: User) -> dict:
    return {**user_json(user), "permissions": list(user.permissions or []), "is_active": user.is_active}


@routes.patch("/api/users/{id}")
@requires("admin")
async def update_user(request: web.Request) -> web.Response:
    """Role, permissions, active flag, name. Every change is audited; deactivating ends the user's sessions."""
    auth = auth_of(request)
    user = await User.get_or_none(id=int_param(request.match_info["id"], "id", high=2**31 - 1))
    if user is None:
        fail(404, "not_found", "user not found")
    body = await json_body(request)
    role, permissions, active, name = (body.get(k) for k in ("role", "permissions", "is_active", "name"))
    if role is not None and role not in ROLES:
        fail(422, "invalid_role", f"role must be one of {', '.join(ROLES)}")
    if permissions is not None and (
        not isinstance(permissions, list)
        or len(permissions) > 20
        or not all(isinstance(p, str) and PERMISSION_NAME.match(p) for p in permissions)
    ):
        fail(422, "invalid_permissions", "permissions is a list of at most 20 names like view_contact_pii")
    if active is not None and not isinstance(active, bool):
        fail(400, "invalid_body", "is_active must be true or false")
    if name is not None and (not isinstance(name, str) or not 0 < len(name.strip()) <= 200):
        fail(422, "invalid_name", "name must be 1 to 200 characters")
    if all(v is None for v in (role, permissions, active, name)):
        fail(400, "invalid_body", "nothing to change: give role, permissions, is_active or name")
    if user.id == auth.user.id and ((role is not None and role != "admin") or active is False):
        fail(422, "own_admin_rights", "an admin cannot demote or deactivate themselves (ask another admin)")
    # Each changed field and its audit entry; only these fields are written, so another admin's change to the
    # others at the same moment stays.
    entries: dict[str, tuple[str, dict]] = {}
    if role is not None and role != user.role:
        entries["role"] = ("user.role_changed", {"from": user.role, "to": role})
        user.role = role
    if permissions is not None and sorted(set(permissions)) != sorted(user.permissions or []):
        old = set(user.permissions or [])
        entries["permissions"] = ("user.permissions_changed", {"added": sorted(set(permissions) - old),
                                                               "removed": sorted(old - set(permissions))})  # fmt: skip
        user.permissions = sorted(set(permissions))
    if active is not None and active != user.is_active:
        entries["is_active"] = ("user.activated" if active else "user.deactivated", {})
        user.is_active = active
    if name is not None and name.strip() != user.name:
        entries["name"] = ("user.renamed", {})
        user.name = name.strip()
    if entries:
        await user.save(update_fields=list(entries))
        await user.refresh_from_db()  # the answer shows the user as stored, with the other admin's change
        if active is False:
            await AuthSession.filter(user_id=user.id, revoked=False).update(revoked=True)
        if entries.keys() & {"role", "permissions", "is_active"}:
            # Open sockets keep the rights of their handshake: end them, to reconnect with the new ones (or a 401).
            await request.app[BUS].publish(access_changed([user.id]))
        for action, data in entries.values():
            await audit(action, actor_id=auth.user.id, target_type="user", target_id=user.id, data=data,
                        request=request)  # fmt: skip
    return json_response(staff_json(user))


def _valid_credentials(credentials: object) -> bool:
    if not isinstance(credentials, dict) or len(credentials) > 20:
        return False
    for key, value in credentials.items():
        if not PERMISSION_NAME.match(key):
            return False
        if value is not None and not (isinstance(value, str) and 0 < len(value) <= 4096):
            return False
    return True


@routes.patch("/api/inboxes/{id}")
@requires("admin")
async def update_inbox(request: web.Request) -> web.Response:
    """Rename an inbox or change its credentials (`null` removes one). Values are never echoed nor audited: only
    which keys changed."""
    auth = auth_of(request)
    inbox = await Inbox.get_or_none(id=int_param(request.match_info["id"], "id", high=2**31 - 1))
    if inbox is None:
        fail(404, "not_found", "inbox not found")
    body = await json_body(request)
    name, credentials = body.get("name"), body.get("credentials")
    if name is None and credentials is None:
        fail(400, "invalid_body", "nothing to change: give name or credentials")
    if name is not None and (not isinstance(name, str) or not 0 < len(name.strip()) <= 200):
        fail(422, "invalid_name", "name must be 1 to 200 characters")
    if credentials is not None and not _valid_credentials(credentials):
        fail(422, "invalid_credentials", "credentials maps names (like page_token) to non-empty strings or null")
    fields = []
    changed: list[str] = []
    async with in_transaction() as conn:
        # The changes go onto the row as stored, locked until the commit (Postgres; SQLite runs one transaction at
        # a time): two admins setting different keys at once (the page token, the app secret) keep both.
        inbox = await Inbox.select_for_update().using_db(conn).get(id=inbox.id)
        if name is not None and name.strip() != inbox.name:
            inbox.name = name.strip()
            fields.append("name")
        if credentials:
            current = dict(inbox.credentials or {})
            for key, value in credentials.items():
                if current.get(key) != value:
                    changed.append(key)
                    if value is None:
                        current.pop(key, None)
                    else:
                        current[key] = value
            if changed:
                inbox.credentials = current
                fields.append("credentials")
        if fields:
            await inbox.save(using_db=conn, update_fields=fields)
    if fields:
        await request.app[DIRECTORY].refresh()  # webhooks check the new secrets at once
    if "name" in fields:
        await audit("inbox.renamed", actor_id=auth.user.id, target_type="inbox", target_id=inbox.id, request=request)
    if changed:
        await audit("inbox.credentials_changed", actor_id=auth.user.id, target_type="inbox", target_id=inbox.id,
                    data={"keys": sorted(changed)}, request=request)  # fmt: skip
    return json_response(inbox_json(inbox))


document(
    {
        "/api/users/{id}": {
            "patch": op(
                "Change a user's role, permissions, active flag or name (admins; audited)",
                json_response_of(ref("StaffUser")),
                params=[PATH_ID],
                body={
                    "type": "object",
                    "properties": {
                        "role": {"type": "string", "enum": list(ROLES)},
                        "permissions": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
                        "is_active": {"type": "boolean"},
                        "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                },
                role="admin",
                tag="admin",
            )
        },
        "/api/inboxes/{id}": {
            "patch": op(
                "Rename an inbox or change its credentials (admins; audited, values never returned)",
                json_response_of({"type": "object"}),
                params=[PATH_ID],
                body={
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "credentials": {
                            "type": "object",
                            "additionalProperties": {"type": ["string", "null"], "maxLength": 4096},
                        },
                    },
                },
                role="admin",
                tag="admin",
            )
        },
    },
    {
        "StaffUser": {
            "type": "object",
            "required": ["id", "email", "name", "role", "permissions", "is_active"],
            "properties": {
                "id": {"type": "integer"},
                "email": {"type": "string"},
                "name": {"type": "string"},
                "role": {"type": "string", "enum": list(ROLES)},
                "permissions": {"type": "array", "items": {"type": "string"}},
                "is_active": {"type": "boolean"},
            },
        }
    },
)
