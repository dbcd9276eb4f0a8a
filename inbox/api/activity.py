"""`GET /api/conversations/{id}/activity`: who did what in a conversation (taken, assigned, resolved, reopened…),
read from `conversation_events` for the thread to show between its messages.

Only the kinds a person reading the thread cares about are shown, each with the data fields named for it here and
nothing else: message events are the messages themselves, and the rest (queueing, identity links, phone shares)
are the reports' and the profile's business. A new kind stays hidden until it is added below, so nothing written
for another purpose (a routing load, an app's handover metadata, an ad's context) reaches the thread by accident.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agents.models import Team, User
from inbox import actions
from inbox.api.guard import auth_of, requires
from inbox.api.openapi import PATH_ID, document, items_of, json_response_of, op, query_param
from inbox.http import MAX_ID, int_param, json_response
from inbox.models import ConversationEvent
from inbox.serialize import iso

routes = web.RouteTableDef()

# kind → the data fields shown. Erasure may have stripped any of them (contacts/erasure.py): each is optional.
SHOWN: dict[str, tuple[str, ...]] = {
    "opened": (),
    "reopened": ("previous",),
    "assigned": ("agent_id", "team_id", "previous", "reason"),
    "status_changed": ("status", "previous", "reason"),
    "labels_changed": ("labels", "previous"),
    "referral": ("referral",),
    "unfollowed": (),
    "thread_control": ("action", "new_owner_app_id", "previous_owner_app_id"),
    "handoff": ("reason",),
    "sla_breached": ("target", "target_seconds"),
    "csat_answered": ("rating",),
}
# Of a referral, how the customer came (an ad, a link, a follow), never the ad's context or the link's `ref`.
REFERRAL_FIELDS = ("type", "source")
MAX_TEXT = 100  # a platform's string is shown as a word or two, never as a payload


def _shown_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    shown = {key: data[key] for key in SHOWN[kind] if key in data}
    if isinstance(shown.get("previous"), dict):  # an assignment's previous holder: its ids only
        shown["previous"] = {k: v for k, v in shown["previous"].items() if k in ("agent_id", "team_id")}
    if "referral" in shown:
        referral = shown["referral"] if isinstance(shown["referral"], dict) else {}
        shown["referral"] = {k: str(referral[k])[:MAX_TEXT] for k in REFERRAL_FIELDS if referral.get(k) is not None}
    return shown


def _data(event: ConversationEvent) -> dict[str, Any]:
    return event.data if isinstance(event.data, dict) else {}


def _an_id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _names(events: list[ConversationEvent]) -> tuple[dict[int, str], dict[int, str]]:
    """The agents' and teams' names the page mentions: one query for each."""
    users: set[int | None] = {e.actor_id for e in events if e.actor_type == "agent"}
    teams: set[int | None] = set()
    for event in events:
        if event.kind == "assigned":
            users.add(_an_id(_data(event).get("agent_id")))
            teams.add(_an_id(_data(event).get("team_id")))
    users.discard(None)
    teams.discard(None)
    user_names = dict(await User.filter(id__in=users).values_list("id", "name")) if users else {}
    team_names = dict(await Team.filter(id__in=teams).values_list("id", "name")) if teams else {}
    return user_names, team_names


def activity_json(event: ConversationEvent, users: dict[int, str], teams: dict[int, str]) -> dict[str, Any]:
    data = _shown_data(event.kind, _data(event))
    if event.kind == "assigned":
        data["agent_name"] = users.get(_an_id(data.get("agent_id"))) or None
        data["team_name"] = teams.get(_an_id(data.get("team_id"))) or None
    return {
        "id": event.id,
        "kind": event.kind,
        "at": iso(event.occurred_at),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_name": (users.get(event.actor_id) or None) if event.actor_type == "agent" else None,
        "data": data,
    }


@routes.get("/api/conversations/{id}/activity")
@requires("agent")
async def activity(request: web.Request) -> web.Response:
    conv = await actions.readable_conversation(auth_of(request).viewer, int_param(request.match_info["id"], "id"))
    limit = int_param(request.query.get("limit"), "limit", default=50, high=200)
    query = ConversationEvent.filter(conversation_id=conv.id, kind__in=list(SHOWN))
    if request.query.get("before"):
        query = query.filter(id__lt=int_param(request.query["before"], "before", high=MAX_ID))
    page = await query.order_by("-id").limit(limit + 1)
    more = len(page) > limit
    page = page[:limit]
    next_before = min(e.id for e in page) if more and page else None
    # Pages go back by id (the order recorded); within a page, oldest → newest by when it happened.
    page.sort(key=lambda e: (e.occurred_at, e.id))
    users, teams = await _names(page)
    return json_response({"items": [activity_json(e, users, teams) for e in page], "next_before": next_before})


document(
    {
        "/api/conversations/{id}/activity": {
            "get": op(
                "Who did what in the conversation (assigned, resolved, reopened…), oldest → newest within the page;"
                " messages are not in it",
                json_response_of(items_of("Activity", "next_before")),
                params=[PATH_ID, query_param("before", {"type": "integer"}), query_param("limit", {"type": "integer"})],
            )
        }
    },
    {
        "Activity": {
            "type": "object",
            "required": ["id", "kind", "at", "actor_type", "actor_id", "actor_name", "data"],
            "properties": {
                "id": {"type": "integer"},
                "kind": {"enum": sorted(SHOWN)},
                "at": {"type": "string", "format": "date-time"},
                "actor_type": {"enum": ["contact", "agent", "bot", "system"]},
                "actor_id": {"type": ["integer", "null"]},
                "actor_name": {"type": ["string", "null"], "description": "the agent's name, for agents"},
                "data": {"type": "object", "description": "the kind's fields (docs/contract-extensions.md)"},
            },
        }
    },
)
