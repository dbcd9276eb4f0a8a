"""Orders: list, create (or draft from a conversation, pre-filled from its entities), update."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from contacts.integrations import emit
from contacts.models import Order
from contacts.orders import OrderError, draft_from_conversation, order_json, order_values
from contacts.profile import readable_contact
from inbox import actions
from inbox.api import openapi
from inbox.api.guard import auth_of, requires
from inbox.http import fail, int_param, json_body, json_response

routes = web.RouteTableDef()


@routes.get("/api/contacts/{id}/orders")
@requires("agent")
async def list_(request: web.Request) -> web.Response:
    contact = await readable_contact(auth_of(request).viewer, int_param(request.match_info["id"], "id"))
    if contact is None:
        fail(404, "not_found", "contact not found")
    orders = await Order.filter(contact_id=contact.id).order_by("-ordered_at", "-id").limit(200)
    return json_response({"items": [order_json(o) for o in orders]})


@routes.post("/api/contacts/{id}/orders")
@requires("agent")
async def create(request: web.Request) -> web.Response:
    contact = await readable_contact(auth_of(request).viewer, int_param(request.match_info["id"], "id"))
    if contact is None:
        fail(404, "not_found", "contact not found")
    body = await json_body(request)
    try:
        values = order_values(body)
    except OrderError as exc:
        fail(422, "invalid_value", str(exc))
    values.setdefault("ordered_at", datetime.now(UTC))
    values.setdefault("status", "confirmed")
    order = await Order.create(contact_id=contact.id, source="agent", created_by_id=auth_of(request).user.id, **values)
    await emit("order.created", order_json(order))
    return json_response(order_json(order), status=201)


@routes.post("/api/conversations/{id}/orders/draft")
@requires("agent")
async def draft(request: web.Request) -> web.Response:
    conv = await actions.readable_conversation(auth_of(request).viewer, int_param(request.match_info["id"], "id"))
    order = await draft_from_conversation(conv, auth_of(request).user.id)
    await emit("order.created", order_json(order))
    return json_response(order_json(order), status=201)


@routes.patch("/api/orders/{id}")
@requires("agent")
async def update(request: web.Request) -> web.Response:
    order = await Order.get_or_none(id=int_param(request.match_info["id"], "id"))
    if order is None or await readable_contact(auth_of(request).viewer, order.contact_id) is None:
        fail(404, "not_found", "order not found")
    body = await json_body(request)
    try:
        values = order_values(body)
    except OrderError as exc:
        fail(422, "invalid_value", str(exc))
    for key, value in values.items():
        setattr(order, key, value)
    if values:
        await order.save(update_fields=[*values, "updated_at"])
        await emit("order.updated", order_json(order))
    return json_response(order_json(order))


_OBJ = {"type": "object"}
openapi.document(
    {
        "/api/contacts/{id}/orders": {
            "get": openapi.op(
                "Orders of a contact",
                openapi.json_response_of(openapi.items_of("Order")),
                params=[openapi.PATH_ID],
                tag="orders",
            ),
            "post": openapi.op(
                "Create an order {items:[{name, quantity, unit_price, size?}], total?, status?}",
                openapi.json_response_of(openapi.ref("Order"), "Created"),
                params=[openapi.PATH_ID],
                body=_OBJ,
                status="201",
                tag="orders",
            ),
        },
        "/api/conversations/{id}/orders/draft": {
            "post": openapi.op(
                "Draft an order from the conversation's entities (phone, address, product, size, price)",
                openapi.json_response_of(openapi.ref("Order"), "Created"),
                params=[openapi.PATH_ID],
                status="201",
                tag="orders",
            ),
        },
        "/api/orders/{id}": {
            "patch": openapi.op(
                "Update an order (status, items, total, address…)",
                openapi.json_response_of(openapi.ref("Order")),
                params=[openapi.PATH_ID],
                body=_OBJ,
                tag="orders",
            ),
        },
    },
    {
        "Order": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "contact_id": {"type": "integer"},
                "status": {"type": "string"},
                "items": {"type": "array"},
                "total": {"type": "integer"},
                "currency": {"const": "VND"},
            },
        }
    },
)
