"""Routing configuration and presence: per-inbox routing policy, capacity, business hours, SLA and CSAT; teams;
agents' capacity; and each agent's own presence switch.

Roles: supervisors and admins configure (routing is day-to-day team management); deleting a team is for admins;
every agent reads who is online and switches their own presence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from agents import business_hours, routing, sla
from agents.access import access_changed
from agents.models import AgentState, InboxMember, SlaPolicy, Team, TeamMember, User
from agents.presence import CHOICES, PRESENCE, ensure_state
from agents.routing import MAX_CAPACITY, ROUTER
from inbox import actions
from inbox.api import openapi
from inbox.api.guard import auth_of, requires
from inbox.http import fail, int_param, is_id, json_body, json_response
from inbox.keys import BUS
from inbox.models import Inbox

routes = web.RouteTableDef()
MAX_TEAM_NAME = 200


def _id(request: web.Request) -> int:
    return int_param(request.match_info["id"], "id")


async def _inbox_settings(inbox: Inbox) -> dict[str, Any]:
    stored = inbox.settings or {}
    policy = await SlaPolicy.get_or_none(inbox_id=inbox.id)
    return {
        "inbox_id": inbox.id,
        "routing": routing.settings_of(stored).__dict__,
        "business_hours": stored.get("business_hours"),
        "business_hours_history": stored.get("business_hours_history", []),
        "sla": sla.policy_json(policy, inbox.id),
        "csat": {"enabled": bool((stored.get("csat") or {}).get("enabled", False)),
                 "message": (stored.get("csat") or {}).get("message")},
    }  # fmt: skip


@routes.get("/api/inboxes/{id}/routing")
@requires("supervisor")
async def get_inbox_routing(request: web.Request) -> web.Response:
    inbox = await Inbox.get_or_none(id=_id(request))
    if inbox is None:
        fail(404, "not_found", "inbox not found")
    return json_response(await _inbox_settings(inbox))


@routes.put("/api/inboxes/{id}/routing")
@requires("supervisor")
async def put_inbox_routing(request: web.Request) -> web.Response:
    """Partial update: any of `routing`, `business_hours` (null: always open), `sla`, `csat`."""
    inbox = await Inbox.get_or_none(id=_id(request))
    if inbox is None:
        fail(404, "not_found", "inbox not found")
    body = await json_body(request)
    unknown = set(body) - {"routing", "business_hours", "sla", "csat"}
    if unknown:
        fail(422, "invalid_settings", f"unknown keys: {', '.join(sorted(unknown))}")
    settings = dict(inbox.settings or {})
    sla_values: dict[str, Any] | None = None
    routing_patch = body.get("routing") or {}
    if not isinstance(routing_patch, dict):
        fail(422, "invalid_settings", "routing must be an object of the settings to change")
    try:
        if "routing" in body:
            # Checked here for a clear error; written onto the routing read under the lock below.
            team_id = routing.validate({**(settings.get("routing") or {}), **routing_patch})["team_id"]
            if team_id is not None and not await Team.exists(id=team_id):
                fail(422, "unknown_team", "routing.team_id does not name a team")
        if "business_hours" in body:
            if body["business_hours"] is None:
                settings.pop("business_hours", None)
            else:
                settings["business_hours"] = business_hours.validate(body["business_hours"])
        if "csat" in body:
            settings["csat"] = _csat(body["csat"])
        if "sla" in body:
            sla_values = sla.validate(body["sla"]) if body["sla"] is not None else None
    except (routing.InvalidRouting, business_hours.InvalidHours, ValueError) as exc:
        fail(422, "invalid_settings", str(exc))
    async with in_transaction() as conn:
        # Only our keys: other areas' settings (bot, channel options) stay as they are. The row is locked from
        # this read to the commit (Postgres; SQLite runs one transaction at a time), so a save between is not lost.
        fresh = await Inbox.select_for_update().using_db(conn).get(id=inbox.id)
        merged_settings = dict(fresh.settings or {})
        if "routing" in body:  # the changed fields onto the routing read now: another save's other fields stay
            merged_settings["routing"] = routing.validate({**(merged_settings.get("routing") or {}), **routing_patch})
        if "csat" in settings:
            merged_settings["csat"] = settings["csat"]
        if "business_hours" in body:  # the replaced hours go to the history: past figures keep them
            merged_settings = business_hours.changed(merged_settings, settings.get("business_hours"), datetime.now(UTC))
        fresh.settings = merged_settings
        await fresh.save(using_db=conn, update_fields=["settings"])
        if "sla" in body:
            await SlaPolicy.filter(inbox_id=inbox.id).using_db(conn).delete()
            if sla_values is not None:
                await SlaPolicy.create(using_db=conn, inbox_id=inbox.id, **sla_values)
    request.app[ROUTER].forget(inbox.id)
    return json_response(await _inbox_settings(fresh))


def _csat(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("enabled", False), bool):
        raise ValueError("csat is {enabled: bool, message: string|null}")
    message = raw.get("message")
    if message is not None and (not isinstance(message, str) or not message.strip() or len(message) > 640):
        raise ValueError("csat.message must be a non-empty text of at most 640 characters")
    return {"enabled": raw.get("enabled", False), "message": message}


# ---------------------------------------------------------------------------------------------- teams


async def _team_json(team: Team) -> dict[str, Any]:
    members = await TeamMember.filter(team_id=team.id).values_list("user_id", flat=True)
    return {"id": team.id, "name": team.name, "members": sorted(members), "settings": team.settings or {}}


def _team_settings(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or set(raw) - {"policy", "capacity"}:
        fail(422, "invalid_settings", "team settings are {policy, capacity}")
    if raw.get("policy") is not None and raw["policy"] not in routing.POLICIES:
        fail(422, "invalid_settings", f"policy must be one of {', '.join(routing.POLICIES)}")
    capacity = raw.get("capacity")
    if capacity is not None and (
        isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY
    ):
        fail(422, "invalid_settings", f"capacity must be an integer from 1 to {MAX_CAPACITY:,}")
    return {k: v for k, v in raw.items() if v is not None}


async def _members(raw: Any) -> list[int]:
    if not isinstance(raw, list) or not all(is_id(i) for i in raw):
        fail(400, "invalid_body", "members must be a list of user ids")
    ids = sorted(set(raw))
    if len(ids) != await User.filter(id__in=ids, is_active=True).count():
        fail(422, "unknown_user", "members must name active users")
    return ids


@routes.get("/api/teams")
@requires("agent")
async def list_teams(request: web.Request) -> web.Response:
    return json_response({"items": [await _team_json(t) for t in await Team.all().order_by("id")]})


@routes.post("/api/teams")
@requires("supervisor")
async def create_team(request: web.Request) -> web.Response:
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_TEAM_NAME:
        fail(422, "invalid_name", "name is a non-empty text of at most 200 characters")
    settings = _team_settings(body.get("settings", {}))
    members = await _members(body.get("members", []))
    try:
        async with in_transaction() as conn:
            team = await Team.create(using_db=conn, name=name.strip(), settings=settings)
            for user_id in members:
                await TeamMember.create(using_db=conn, team_id=team.id, user_id=user_id)
    except IntegrityError:
        fail(409, "conflict", "a team with this name exists")
    if members:
        await request.app[BUS].publish(access_changed(members))
    return json_response(await _team_json(team), status=201)


@routes.patch("/api/teams/{id}")
@requires("supervisor")
async def update_team(request: web.Request) -> web.Response:
    team = await Team.get_or_none(id=_id(request))
    if team is None:
        fail(404, "not_found", "team not found")
    body = await json_body(request)
    fields = []  # only what this request changes: a rename at the moment of another's settings change keeps both
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_TEAM_NAME:
            fail(422, "invalid_name", "name is a non-empty text of at most 200 characters")
        team.name = name.strip()
        fields.append("name")
    if "settings" in body:
        team.settings = _team_settings(body["settings"])
        fields.append("settings")
    members = await _members(body["members"]) if "members" in body else None
    moved: set[int] = set()  # users who joined or left: their open sockets end, to reconnect with their new teams
    try:
        async with in_transaction() as conn:
            if fields:
                await team.save(using_db=conn, update_fields=fields)
            if members is not None:
                before = await TeamMember.filter(team_id=team.id).using_db(conn).values_list("user_id", flat=True)
                moved = set(before) ^ set(members)
                await TeamMember.filter(team_id=team.id).using_db(conn).delete()
                for user_id in members:
                    await TeamMember.create(using_db=conn, team_id=team.id, user_id=user_id)
    except IntegrityError:
        fail(409, "conflict", "a team with this name exists")
    request.app[ROUTER].forget()
    if moved:
        await request.app[BUS].publish(access_changed(moved))
    stored = await Team.get_or_none(id=team.id)  # the answer shows the team as stored, another's change included
    if stored is None:
        fail(404, "not_found", "team not found")
    return json_response(await _team_json(stored))


@routes.delete("/api/teams/{id}")
@requires("admin")
async def delete_team(request: web.Request) -> web.Response:
    team_id = _id(request)
    members = await TeamMember.filter(team_id=team_id).values_list("user_id", flat=True)
    deleted = await actions.delete_team(request.app[BUS], auth_of(request).viewer, team_id)
    if not deleted:
        fail(404, "not_found", "team not found")
    request.app[ROUTER].forget()
    if members:
        await request.app[BUS].publish(access_changed(members))
    return json_response({"deleted": True})


# ---------------------------------------------------------------------------------------------- agents, presence


@routes.get("/api/agents")
@requires("agent")
async def list_agents(request: web.Request) -> web.Response:
    """Staff with presence, open load and capacity (what a colleague needs to hand a conversation over)."""
    states = await request.app[PRESENCE].snapshot()
    users = await User.filter(is_active=True).order_by("id").values("id", "name", "role")
    loads = await request.app[ROUTER].loads([u["id"] for u in users])
    inboxes: dict[int, list[int]] = {}
    for row in await InboxMember.all().values("user_id", "inbox_id"):
        inboxes.setdefault(row["user_id"], []).append(row["inbox_id"])
    items = []
    for user in users:
        state = states.get(user["id"], {})
        items.append(
            {
                "id": user["id"],
                "name": user["name"],
                "role": user["role"],
                "presence": state.get("status", "offline"),
                "chosen": state.get("chosen", "online"),
                "load": loads.get(user["id"], 0),
                "capacity": state.get("capacity"),
                "inbox_ids": sorted(inboxes.get(user["id"], [])),
            }
        )
    return json_response({"items": items})


@routes.put("/api/me/presence")
@requires("agent")
async def my_presence(request: web.Request) -> web.Response:
    body = await json_body(request)
    status = body.get("status")
    if status not in ("online", "busy", "offline"):
        fail(422, "invalid_status", "status must be online, busy or offline")
    user_id = auth_of(request).user.id
    effective = await request.app[PRESENCE].choose(user_id, status)
    return json_response({"user_id": user_id, "chosen": status, "status": effective})


@routes.put("/api/agents/{id}/capacity")
@requires("supervisor")
async def set_capacity(request: web.Request) -> web.Response:
    user_id = _id(request)
    if not await User.exists(id=user_id):
        fail(404, "not_found", "user not found")
    body = await json_body(request)
    capacity = body.get("capacity")
    if capacity is not None and (
        isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY
    ):
        fail(422, "invalid_capacity", f"capacity must be 1 to {MAX_CAPACITY:,} or null (the inbox's default)")
    await ensure_state(user_id)
    await AgentState.filter(user_id=user_id).update(capacity=capacity)
    return json_response({"user_id": user_id, "capacity": capacity})


_OBJ = {"type": "object"}
_ID = openapi.PATH_ID
_ROUTING = {
    "type": "object",
    "properties": {
        "routing": {
            "type": "object",
            "properties": {
                "policy": {"enum": list(routing.POLICIES)},
                "capacity": {"type": "integer", "minimum": 1},
                "reassign_after_minutes": {"type": ["integer", "null"]},
                "reassign_on_offline": {"type": "boolean"},
                "offline_grace_seconds": {"type": "integer"},
                "previous_agent": {"type": "boolean"},
                "team_id": {"type": ["integer", "null"]},
            },
        },
        "business_hours": {"type": ["object", "null"], "description": "{timezone, days, holidays}"},
        "sla": {"type": ["object", "null"], "description": "{first_response_seconds, next_response_seconds,"
                " resolution_seconds, business_hours}"},
        "csat": {"type": "object", "description": "{enabled, message}"},
    },
}  # fmt: skip
_TEAM = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "members": {"type": "array", "items": {"type": "integer"}},
        "settings": {"type": "object", "properties": {"policy": {"type": "string"}, "capacity": {"type": "integer"}}},
    },
}
openapi.document(
    {
        "/api/inboxes/{id}/routing": {
            "get": openapi.op(
                "Routing, business hours, SLA and CSAT settings of an inbox",
                openapi.json_response_of(_ROUTING),
                params=[_ID],
                role="supervisor",
                tag="routing",
            ),
            "put": openapi.op(
                "Change any of routing / business_hours / sla / csat",
                openapi.json_response_of(_ROUTING),
                params=[_ID],
                body=_ROUTING,
                role="supervisor",
                tag="routing",
            ),
        },
        "/api/teams": {
            "get": openapi.op("Teams with members and routing settings", openapi.json_response_of(
                openapi.items_of("Team")), tag="routing"),
            "post": openapi.op("Create a team", openapi.json_response_of(_TEAM, "Created"), body=_TEAM,
                               role="supervisor", status="201", tag="routing"),
        },
        "/api/teams/{id}": {
            "patch": openapi.op("Rename a team, set members or settings", openapi.json_response_of(_TEAM),
                                params=[_ID], body=_TEAM, role="supervisor", tag="routing"),
            "delete": openapi.op("Delete a team", openapi.json_response_of(_OBJ), params=[_ID], role="admin",
                                 tag="routing"),
        },
        "/api/agents": {
            "get": openapi.op("Staff with presence (online/busy/away/offline), load and capacity",
                              openapi.json_response_of(_OBJ), tag="routing")
        },
        "/api/me/presence": {
            "put": openapi.op("Switch my own presence: online, busy or offline", openapi.json_response_of(_OBJ),
                              body={"type": "object", "properties": {"status": {"enum": list(CHOICES)}}},
                              tag="routing")
        },
        "/api/agents/{id}/capacity": {
            "put": openapi.op("Set an agent's capacity (null: the inbox's default)", openapi.json_response_of(_OBJ),
                              params=[_ID], body={"type": "object", "properties": {"capacity": {
                                  "type": ["integer", "null"]}}}, role="supervisor", tag="routing")
        },
    },
    {"Team": _TEAM},
)  # fmt: skip
