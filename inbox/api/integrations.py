"""Outgoing webhooks (admin): endpoints, their signing secret (shown once), and the delivery log."""

from __future__ import annotations

import secrets

from aiohttp import web

from contacts.integrations import EVENTS, delivery_json, endpoint_json
from contacts.models import WebhookDelivery, WebhookEndpoint
from inbox.api import openapi
from inbox.api.guard import requires
from inbox.http import fail, int_param, json_body, json_response

routes = web.RouteTableDef()


@routes.get("/api/integrations/webhooks")
@requires("admin")
async def list_(request: web.Request) -> web.Response:
    return json_response(
        {"items": [endpoint_json(e) for e in await WebhookEndpoint.all().order_by("id")], "events": list(EVENTS)}
    )


@routes.post("/api/integrations/webhooks")
@requires("admin")
async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
    url, events = body.get("url"), body.get("events", [])
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        fail(400, "invalid_body", "url must be an http(s) URL")
    if not isinstance(events, list) or any(e not in EVENTS for e in events):
        fail(422, "invalid_value", f"events must be a list of: {', '.join(EVENTS)}")
    endpoint = await WebhookEndpoint.create(url=url, events=events, secret=secrets.token_hex(32))
    return json_response({**endpoint_json(endpoint), "secret": endpoint.secret}, status=201)


@routes.delete("/api/integrations/webhooks/{id}")
@requires("admin")
async def delete(request: web.Request) -> web.Response:
    if not await WebhookEndpoint.filter(id=int_param(request.match_info["id"], "id")).delete():
        fail(404, "not_found", "webhook not found")
    return json_response({"deleted": True})


@routes.get("/api/integrations/deliveries")
@requires("admin")
async def deliveries(request: web.Request) -> web.Response:
    limit = int_param(request.query.get("limit"), "limit", default=50, high=500)
    rows = await WebhookDelivery.all().order_by("-id").limit(limit)
    return json_response({"items": [delivery_json(d) for d in rows]})


_OBJ = {"type": "object"}
openapi.document(
    {
        "/api/integrations/webhooks": {
            "get": openapi.op("Outgoing webhooks", openapi.json_response_of(_OBJ), role="admin", tag="integrations"),
            "post": openapi.op(
                "Add an outgoing webhook {url, events}; the signing secret is returned once",
                openapi.json_response_of(_OBJ, "Created"),
                body=_OBJ,
                role="admin",
                status="201",
                tag="integrations",
            ),
        },
        "/api/integrations/webhooks/{id}": {
            "delete": openapi.op(
                "Remove an outgoing webhook",
                openapi.json_response_of(_OBJ),
                params=[openapi.PATH_ID],
                role="admin",
                tag="integrations",
            )
        },
        "/api/integrations/deliveries": {
            "get": openapi.op(
                "Delivery log (state, attempts, last status/error)",
                openapi.json_response_of(_OBJ),
                params=[openapi.query_param("limit", {"type": "integer"})],
                role="admin",
                tag="integrations",
            )
        },
    }
)
