"""Segments: RFM scores and named segments, saved dynamic segments, and the business KPIs."""

from __future__ import annotations

from aiohttp import web

from contacts import rfm
from contacts.kpis import business_kpis
from contacts.models import Segment
from contacts.segments import SegmentError, clean_rules, segment_json
from inbox.api import openapi
from inbox.api.guard import auth_of, requires
from inbox.http import fail, int_param, json_body, json_response

routes = web.RouteTableDef()


@routes.post("/api/segments/rfm/refresh")
@requires("supervisor")
async def refresh(request: web.Request) -> web.Response:
    scored = await rfm.refresh()
    return json_response({"customers": len(scored), **rfm.summary(scored)})


@routes.get("/api/segments")
@requires("agent")
async def list_(request: web.Request) -> web.Response:
    segments = await Segment.all().order_by("name")
    return json_response({"items": [segment_json(s) for s in segments], "rfm_segments": list(rfm.SEGMENTS)})


@routes.post("/api/segments")
@requires("supervisor")
async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        fail(400, "invalid_body", "name is required")
    try:
        rules = clean_rules(body.get("rules"))
    except SegmentError as exc:
        fail(422, "invalid_value", str(exc))
    segment = await Segment.create(name=name.strip()[:200], rules=rules, created_by_id=auth_of(request).user.id)
    return json_response(segment_json(segment), status=201)


@routes.delete("/api/segments/{id}")
@requires("supervisor")
async def delete(request: web.Request) -> web.Response:
    deleted = await Segment.filter(id=int_param(request.match_info["id"], "id")).delete()
    if not deleted:
        fail(404, "not_found", "segment not found")
    return json_response({"deleted": True})


@routes.get("/api/reports/customers")
@requires("supervisor")
async def kpis(request: web.Request) -> web.Response:
    return json_response(await business_kpis())


_OBJ = {"type": "object"}
openapi.document(
    {
        "/api/segments/rfm/refresh": {
            "post": openapi.op(
                "Recompute RFM scores, named segments and spend tiers",
                openapi.json_response_of(_OBJ),
                role="supervisor",
                tag="segments",
            )
        },
        "/api/segments": {
            "get": openapi.op(
                "Saved segments (use ?segment=<id> or rfm:<name> on contact/conversation lists)",
                openapi.json_response_of(_OBJ),
                tag="segments",
            ),
            "post": openapi.op(
                "Save a dynamic segment {name, rules}",
                openapi.json_response_of(_OBJ, "Created"),
                body=_OBJ,
                role="supervisor",
                status="201",
                tag="segments",
            ),
        },
        "/api/segments/{id}": {
            "delete": openapi.op(
                "Delete a saved segment",
                openapi.json_response_of(_OBJ),
                params=[openapi.PATH_ID],
                role="supervisor",
                tag="segments",
            )
        },
        "/api/reports/customers": {
            "get": openapi.op(
                "Customer KPIs: retention, repeat-purchase rate, AOV, chat-to-order conversion",
                openapi.json_response_of(_OBJ),
                role="supervisor",
                tag="segments",
            )
        },
    }
)
