"""Admin views: inboxes, users, dead letters; audited changes of roles, permissions and inbox credentials."""

from __future__ import annotations

import re

from aiohttp import web
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from agents.access import access_changed
from agents.audit import audit
from agents.models import ROLES, AuthSession, InboxMember, User
from agents.passwords import hash_password_off_loop
from contacts.normalize import InvalidValue, normalize_email
from inbox import inboxes as channel_inboxes
from inbox.api.auth_routes import MIN_PASSWORD_LENGTH, require_strong_password, user_json
from inbox.api.guard import auth_of, requires
from inbox.api.openapi import PATH_ID, document, json_response_of, op, ref
from inbox.http import fail, int_param, is_id, json_body, json_response
from inbox.keys import BUS, DIRECTORY, SETTINGS
from inbox.models import DeadLetter, Inbox
from inbox.serialize import iso
from inbox.webchat import snippet
from inbox.webhooks_telegram import TELEGRAM

routes = web.RouteTableDef()


def inbox_json(inbox: Inbox, base: str) -> dict:
    """Credentials are never returned: only which ones are set. `base` is the public address (`public_base`) the
    webhook URL and the widget snippet start with, the same as the set-up shown when the inbox was added."""
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
        "webhook_url": channel_inboxes.webhook_url(base, inbox),
        "snippet": snippet(base, inbox.external_id) if inbox.channel == "webchat" else None,
    }


def public_base(request: web.Request) -> str:
    """Where platforms and sites reach this server: HOPTHU_PUBLIC_URL, else the address the admin's browser used."""
    return request.app[SETTINGS].public_url or f"{request.scheme}://{request.host}"


@routes.get("/api/inboxes")
@requires("agent")
async def inboxes(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    query = Inbox.all() if viewer.sees_everything else Inbox.filter(id__in=list(viewer.inbox_ids))
    base = public_base(request)
    return json_response({"items": [inbox_json(i, base) for i in await query.order_by("id")]})


@routes.get("/api/users")
@requires("supervisor")
async def users(request: web.Request) -> web.Response:
    staff = await User.all().order_by("id")
    inboxes = await _inboxes_of([u.id for u in staff])
    return json_response({"items": [staff_json(u, inboxes.get(u.id, [])) for u in staff]})


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


def staff_json(user: User, inbox_ids: list[int]) -> dict:
    return {
        **user_json(user),
        "permissions": list(user.permissions or []),
        "is_active": user.is_active,
        "inbox_ids": inbox_ids,  # the inboxes an agent works in (supervisors and admins read every inbox)
    }


def _check_name(name: object) -> None:
    """A staff member's or an inbox's new name, when the body gives one: 1 to 200 characters once trimmed."""
    if name is not None and (not isinstance(name, str) or not 0 < len(name.strip()) <= 200):
        fail(422, "invalid_name", "name must be 1 to 200 characters")


async def _inboxes_of(user_ids: list[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    if user_ids:
        rows = await InboxMember.filter(user_id__in=user_ids).order_by("inbox_id").values_list("user_id", "inbox_id")
        for user_id, inbox_id in rows:
            found.setdefault(user_id, []).append(inbox_id)
    return found


async def _inbox_ids(value: object) -> list[int]:
    """A body's `inbox_ids`: existing inboxes, each once, sorted."""
    if not isinstance(value, list) or len(value) > 1000 or not all(is_id(v) for v in value):
        fail(400, "invalid_body", "inbox_ids is a list of inbox ids")
    ids = sorted(set(value))
    known = set(await Inbox.filter(id__in=ids).values_list("id", flat=True)) if ids else set()
    if missing := [i for i in ids if i not in known]:
        fail(422, "unknown_inbox", f"no inbox with id {', '.join(map(str, missing))}")
    return ids


@routes.post("/api/users")
@requires("admin")
async def create_user(request: web.Request) -> web.Response:
    """A new staff member who can log in at once; an agent works in the inboxes given (`inbox_ids`). Audited."""
    auth = auth_of(request)
    body = await json_body(request)
    email, password, role, name = (body.get(k) for k in ("email", "password", "role", "name"))
    try:
        email = normalize_email(email if isinstance(email, str) else None)
    except InvalidValue:
        fail(422, "invalid_email", "email must be an e-mail address")
    if role not in ROLES:
        fail(422, "invalid_role", f"role must be one of {', '.join(ROLES)}")
    require_strong_password(password)
    _check_name(name)
    inbox_ids = await _inbox_ids(body.get("inbox_ids", []))
    if await User.exists(email=email):
        fail(409, "email_taken", "a staff member with this e-mail already exists")
    password_hash = await hash_password_off_loop(password)
    try:
        async with in_transaction() as conn:
            user = await User.create(email=email, name=(name or email.split("@")[0]).strip(), role=role,
                                     password_hash=password_hash, using_db=conn)  # fmt: skip
            await InboxMember.bulk_create([InboxMember(inbox_id=i, user_id=user.id) for i in inbox_ids], using_db=conn)
    except IntegrityError:  # the same e-mail added by another admin at the same moment
        fail(409, "email_taken", "a staff member with this e-mail already exists")
    await audit("user.created", actor_id=auth.user.id, target_type="user", target_id=user.id,
                data={"role": role, "inbox_ids": inbox_ids}, request=request)  # fmt: skip
    return json_response(staff_json(user, inbox_ids), status=201)


@routes.patch("/api/users/{id}")
@requires("admin")
async def update_user(request: web.Request) -> web.Response:
    """Role, permissions, active flag, name, inboxes, a new password. Every change is audited; deactivating or
    a new password ends the user's sessions."""
    auth = auth_of(request)
    user = await User.get_or_none(id=int_param(request.match_info["id"], "id", high=2**31 - 1))
    if user is None:
        fail(404, "not_found", "user not found")
    body = await json_body(request)
    role, permissions, active, name = (body.get(k) for k in ("role", "permissions", "is_active", "name"))
    inbox_ids = await _inbox_ids(body["inbox_ids"]) if "inbox_ids" in body else None
    password = body.get("password")
    if password is not None:
        require_strong_password(password)
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
    _check_name(name)
    if all(v is None for v in (role, permissions, active, name, inbox_ids, password)):
        fail(400, "invalid_body", "nothing to change: give role, permissions, is_active, name, inbox_ids or password")
    if user.id == auth.user.id and ((role is not None and role != "admin") or active is False):
        fail(422, "own_admin_rights", "an admin cannot demote or deactivate themselves (ask another admin)")
    if user.id == auth.user.id and password is not None:
        fail(422, "own_password", "change your own password with POST /api/auth/password (it asks the current one)")
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
    if password is not None:  # a forgotten password: the admin sets a new one, and every session of theirs ends
        entries["password_hash"] = ("user.password_reset", {})
        user.password_hash = await hash_password_off_loop(password)
    fields = [f for f in entries if f != "inboxes"]
    if inbox_ids is not None and (moved := await _set_inboxes(user, inbox_ids)):
        entries["inboxes"] = ("user.inboxes_changed", moved)
    if fields:
        await user.save(update_fields=fields)
        await user.refresh_from_db()  # the answer shows the user as stored, with the other admin's change
        if active is False or password is not None:
            await AuthSession.filter(user_id=user.id, revoked=False).update(revoked=True)
    if entries.keys() & {"role", "permissions", "is_active", "inboxes", "password_hash"}:
        # Open sockets keep the rights of their handshake: end them, to reconnect with the new ones (or a 401).
        await request.app[BUS].publish(access_changed([user.id]))
    for action, data in entries.values():
        await audit(action, actor_id=auth.user.id, target_type="user", target_id=user.id, data=data,
                    request=request)  # fmt: skip
    return json_response(staff_json(user, (await _inboxes_of([user.id])).get(user.id, [])))


async def _set_inboxes(user: User, inbox_ids: list[int]) -> dict[str, list[int]] | None:
    """The user works in exactly these inboxes now; what was added and removed, or None when nothing changed."""
    async with in_transaction() as conn:
        current = set(await InboxMember.filter(user_id=user.id).using_db(conn).values_list("inbox_id", flat=True))
        added, removed = sorted(set(inbox_ids) - current), sorted(current - set(inbox_ids))
        if removed:
            await InboxMember.filter(user_id=user.id, inbox_id__in=removed).using_db(conn).delete()
        if added:
            rows = [InboxMember(inbox_id=i, user_id=user.id) for i in added]
            await InboxMember.bulk_create(rows, ignore_conflicts=True, using_db=conn)  # another admin's same change
    return {"added": added, "removed": removed} if added or removed else None


def _valid_credentials(credentials: object) -> bool:
    if not isinstance(credentials, dict) or len(credentials) > 20:
        return False
    for key, value in credentials.items():
        if not PERMISSION_NAME.match(key):
            return False
        if value is not None and not (isinstance(value, str) and 0 < len(value) <= 4096):
            return False
    return True


# Errors of `inbox.inboxes` whose status is not 422: the account is taken; Telegram could not be reached.
REFUSAL_STATUS = {"inbox_exists": 409}


def _setup_of(created: channel_inboxes.Created, shown: dict, verify_token: str | None) -> dict:
    """What the admin needs to finish connecting the channel, shown once with the new inbox (`shown`: its
    `inbox_json`, whose links the set-up repeats)."""
    inbox = created.inbox
    setup: dict = {"webhook_url": shown["webhook_url"]} if shown["webhook_url"] else {}
    if inbox.channel == "facebook":
        setup["verify_token"] = verify_token
    if inbox.channel == "telegram":
        setup["username"] = created.extra["username"]
    if inbox.channel == "webchat":
        setup.update(
            widget_token=inbox.external_id,
            identity_secret=created.extra["identity_secret"],  # signs visitors' identities; shown this once
            snippet=shown["snippet"],
        )
    return setup


@routes.post("/api/inboxes")
@requires("admin")
async def create_inbox(request: web.Request) -> web.Response:
    """Connect a Facebook Page, a Zalo OA, a Telegram bot or the website chat: the same rules as
    `hopthu inbox add`. The answer is the inbox as `GET /api/inboxes` shows it, plus `setup`. Audited."""
    auth = auth_of(request)
    body = await json_body(request)
    channel, name = body.get("channel"), body.get("name")
    if channel not in channel_inboxes.CHANNELS:
        fail(422, "invalid_channel", f"channel must be one of {', '.join(channel_inboxes.CHANNELS)}")
    if not isinstance(name, str):
        fail(422, "invalid_name", "name must be 1 to 200 characters")
    _check_name(name)
    if "prechat" in body and not isinstance(body["prechat"], bool):
        fail(422, "invalid_field", "prechat must be true or false")
    base = public_base(request)
    try:
        created = await channel_inboxes.create(
            channel, name.strip(), body, public_url=base, telegram_client=request.app[TELEGRAM]
        )
    except channel_inboxes.InboxRefused as exc:
        status = 502 if exc.code == "telegram_unavailable" else REFUSAL_STATUS.get(exc.code, 422)
        fail(status, exc.code, str(exc))
    inbox = created.inbox
    await request.app[DIRECTORY].refresh()  # its webhooks are accepted at once
    await audit("inbox.created", actor_id=auth.user.id, target_type="inbox", target_id=inbox.id,
                data={"channel": inbox.channel, "external_id": _audited_account(inbox)}, request=request)  # fmt: skip
    shown = inbox_json(inbox, base)
    return json_response({**shown, "setup": _setup_of(created, shown, body.get("verify_token"))}, 201)


def _audited_account(inbox: Inbox) -> str | None:
    """The Page, OA or bot id; a widget token is left out (it is the key to the site's chat, though public)."""
    return None if inbox.channel == "webchat" else inbox.external_id


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
    _check_name(name)
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
    return json_response(inbox_json(inbox, public_base(request)))


def _create_inbox_op() -> dict:
    string = {"type": "string", "minLength": 1, "maxLength": 4096}
    fields = {f: string for f in {*sum(channel_inboxes.REQUIRED.values(), ()), "secret_token"}}
    account_id = {**string, "maxLength": channel_inboxes.MAX_ACCOUNT_ID_LENGTH}
    fields.update(page_id=account_id, oa_id=account_id)
    operation = op(
        "Connect a channel: a Facebook Page, a Zalo OA, a Telegram bot (getMe + setWebhook) or the website chat "
        "(admins; audited). The answer adds `setup`: webhook URL, verify token, widget snippet, identity secret",
        json_response_of({"type": "object", "required": ["id", "channel", "setup"]}, "Created"),
        body={
            "type": "object",
            "required": ["channel", "name"],
            "properties": {
                "channel": {"type": "string", "enum": list(channel_inboxes.CHANNELS)},
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                **dict(sorted(fields.items())),
                "allowed_origins": {"type": "array", "items": {"type": "string"}},
                "prechat": {"type": "boolean"},
            },
        },
        role="admin",
        status="201",
        tag="admin",
    )
    operation["responses"]["502"] = {"$ref": "#/components/responses/Error"}  # Telegram could not be reached
    return operation


document(
    {
        "/api/users/{id}": {
            "patch": op(
                "Change a user's role, permissions, active flag, name, inboxes or password (admins; audited)",
                json_response_of(ref("StaffUser")),
                params=[PATH_ID],
                body={
                    "type": "object",
                    "properties": {
                        "role": {"type": "string", "enum": list(ROLES)},
                        "permissions": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
                        "is_active": {"type": "boolean"},
                        "name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "inbox_ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 1000},
                        "password": {"type": "string", "minLength": MIN_PASSWORD_LENGTH, "maxLength": 1024},
                    },
                },
                role="admin",
                tag="admin",
            )
        },
        "/api/users": {
            "post": op(
                "Add a staff member, who can log in at once; an agent works in the inboxes given (admins; audited)",
                json_response_of(ref("StaffUser"), "Created"),
                body={
                    "type": "object",
                    "required": ["email", "password", "role"],
                    "properties": {
                        "email": {"type": "string", "format": "email", "maxLength": 254},
                        "password": {"type": "string", "minLength": MIN_PASSWORD_LENGTH, "maxLength": 1024},
                        "role": {"type": "string", "enum": list(ROLES)},
                        "name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "inbox_ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 1000},
                    },
                },
                role="admin",
                status="201",
                tag="admin",
            )
        },
        "/api/inboxes": {"post": _create_inbox_op()},
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
            "required": ["id", "email", "name", "role", "permissions", "is_active", "inbox_ids"],
            "properties": {
                "id": {"type": "integer"},
                "email": {"type": "string"},
                "name": {"type": "string"},
                "role": {"type": "string", "enum": list(ROLES)},
                "permissions": {"type": "array", "items": {"type": "string"}},
                "is_active": {"type": "boolean"},
                "inbox_ids": {"type": "array", "items": {"type": "integer"}},
            },
        }
    },
)
