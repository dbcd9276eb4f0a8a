"""Contacts: search, the profile, edits, merge and undo, duplicates, suggestions, consent, export and erasure.

Phones and e-mails leave masked for staff without `view_contact_pii` (contacts.masking); export, merge, undo,
erasure and unmasked views are written to the audit log, with ids only.
"""

from __future__ import annotations

from aiohttp import web

from agents.audit import audit
from contacts.audience import contact_events
from contacts.consent import ConsentError, record_consent
from contacts.duplicates import dismiss, find_duplicates
from contacts.erasure import erase_contact, export_contact
from contacts.merge import MergeError, merge_contacts, merge_json, undo_merge
from contacts.models import Contact, ContactSuggestion
from contacts.profile import (
    NotEditable,
    ProfileError,
    apply_patch,
    profile_json,
    readable_contact,
    readable_conversation_ids,
    search_contacts,
    suggestion_readable,
    summary_json,
)
from contacts.suggestions import AlreadyDecided, decide, suggestion_json
from inbox.api import openapi
from inbox.api.guard import auth_of, requires
from inbox.http import fail, int_param, is_id, json_body, json_response
from inbox.keys import BUS

routes = web.RouteTableDef()


def _id(request: web.Request, name: str = "id") -> int:
    return int_param(request.match_info[name], name)


async def _contact(request: web.Request) -> Contact:
    contact = await readable_contact(auth_of(request).viewer, _id(request))
    if contact is None:
        fail(404, "not_found", "contact not found")
    return contact


async def _publish(request: web.Request, kind: str, contact: Contact) -> None:
    from contacts.integrations import emit

    data = summary_json(contact)
    for event in await contact_events(kind, data, contact.id):
        await request.app[BUS].publish(event)
    await emit(kind, data)


@routes.get("/api/contacts")
@requires("agent")
async def list_(request: web.Request) -> web.Response:
    q = request.query
    limit = int_param(q.get("limit"), "limit", default=25, high=100)
    cursor = int_param(q.get("cursor"), "cursor") if q.get("cursor") else None
    segment_where = None
    if q.get("segment"):
        from contacts.segments import SegmentError, segment_filter

        try:
            segment_where = await segment_filter(q["segment"])
        except SegmentError as exc:
            fail(400, "invalid_parameter", str(exc))
    items, next_cursor = await search_contacts(
        auth_of(request).viewer, q.get("q"), limit=limit, after_id=cursor, segment_where=segment_where
    )
    return json_response({"items": items, "next_cursor": str(next_cursor) if next_cursor else None})


@routes.get("/api/contacts/duplicates")
@requires("supervisor")
async def duplicates(request: web.Request) -> web.Response:
    q = request.query
    try:
        min_score = float(q.get("min_score") or 0.5)
    except ValueError:
        fail(400, "invalid_parameter", "min_score must be a number")
    limit = int_param(q.get("limit"), "limit", default=50, high=500)
    found = await find_duplicates(min_score=min_score, limit=limit)
    ids = {i for s in found for i in (s.a, s.b)}
    contacts = {c.id: summary_json(c) for c in await Contact.filter(id__in=ids)}
    items = [
        {"score": s.score, "reasons": s.reasons, "contacts": [contacts[s.a], contacts[s.b]]}
        for s in found
        if s.a in contacts and s.b in contacts
    ]
    return json_response({"items": items})


@routes.post("/api/contacts/duplicates/dismiss")
@requires("supervisor")
async def dismiss_duplicate(request: web.Request) -> web.Response:
    body = await json_body(request)
    ids = body.get("contact_ids")
    if not (isinstance(ids, list) and len(ids) == 2 and all(is_id(i) for i in ids) and ids[0] != ids[1]):
        fail(400, "invalid_body", "contact_ids must be two different contact ids")
    await dismiss(ids[0], ids[1], auth_of(request).user.id)
    return json_response({"dismissed": sorted(ids)})


@routes.get("/api/contacts/{id}")
@requires("agent")
async def detail(request: web.Request) -> web.Response:
    contact = await _contact(request)
    return json_response(await profile_json(contact, auth_of(request).viewer))


@routes.patch("/api/contacts/{id}")
@requires("agent")
async def patch(request: web.Request) -> web.Response:
    contact = await _contact(request)
    if contact.erased_at is not None or contact.merged_into_id is not None:
        fail(409, "not_editable", "this profile was erased or merged into another")
    body = await json_body(request)
    try:
        changed = await apply_patch(contact, body)
    except ProfileError as exc:
        fail(422, "invalid_value", str(exc))
    except NotEditable:
        fail(409, "not_editable", "this profile was erased or merged into another")
    if changed:
        await audit(
            "contact.updated",
            actor_id=auth_of(request).user.id,
            target_type="contact",
            target_id=contact.id,
            data={"fields": changed},
            request=request,
        )
        await _publish(request, "contact.updated", contact)
    return json_response(await profile_json(contact, auth_of(request).viewer))


@routes.post("/api/contacts/{id}/merge")
@requires("supervisor")
async def merge(request: web.Request) -> web.Response:
    survivor_id = _id(request)
    body = await json_body(request)
    other_id = body.get("other_id")
    if not is_id(other_id):
        fail(400, "invalid_body", "other_id (a contact id) is required")
    user = auth_of(request).user
    try:
        record = await merge_contacts(survivor_id, other_id, actor_id=user.id)
    except MergeError as exc:
        fail(exc.status, exc.code, str(exc))
    moved = merge_json(record)["moved"]
    await audit(
        "contact.merged",
        actor_id=user.id,
        target_type="contact",
        target_id=survivor_id,
        data={"merged_id": other_id, "merge_id": record.id, **moved},
        request=request,
    )
    survivor = await Contact.get(id=survivor_id)
    await _publish(request, "contact.merged", survivor)
    data = await profile_json(survivor, auth_of(request).viewer)
    return json_response({"merge": merge_json(record), "contact": data})


@routes.post("/api/contact-merges/{id}/undo")
@requires("supervisor")
async def undo(request: web.Request) -> web.Response:
    user = auth_of(request).user
    try:
        record = await undo_merge(_id(request), actor_id=user.id)
    except MergeError as exc:
        fail(exc.status, exc.code, str(exc))
    await audit(
        "contact.merge_undone",
        actor_id=user.id,
        target_type="contact",
        target_id=record.survivor_id,
        data={"merged_id": record.merged_id, "merge_id": record.id},
        request=request,
    )
    survivor = await Contact.get(id=record.survivor_id)
    other = await Contact.get(id=record.merged_id)
    await _publish(request, "contact.updated", survivor)
    await _publish(request, "contact.updated", other)  # back on its own, with the identities it had
    return json_response({"merge": merge_json(record), "contacts": [summary_json(survivor), summary_json(other)]})


@routes.get("/api/contacts/{id}/export")
@requires("supervisor")
async def export(request: web.Request) -> web.Response:
    contact = await _contact(request)
    data = await export_contact(contact)
    counts = {"conversations": len(data["conversations"]), "orders": len(data["orders"])}
    await audit(
        "contact.exported",
        actor_id=auth_of(request).user.id,
        target_type="contact",
        target_id=contact.id,
        data=counts,
        request=request,
    )
    return json_response(data)


@routes.delete("/api/contacts/{id}")
@requires("admin")
async def erase(request: web.Request) -> web.Response:
    contact = await _contact(request)
    upload_dir = None
    try:
        from inbox.webchat import WEBCHAT

        upload_dir = request.app[WEBCHAT].upload_dir
    except (ImportError, KeyError, AttributeError):
        upload_dir = None
    counts = await erase_contact(contact.id, upload_dir=upload_dir)
    await audit(
        "contact.erased",
        actor_id=auth_of(request).user.id,
        target_type="contact",
        target_id=contact.id,
        data=counts,
        request=request,
    )
    from contacts.integrations import emit

    await emit("contact.erased", {"id": contact.id})
    return json_response({"id": contact.id, "erased": True, **counts})


@routes.post("/api/contacts/{id}/consents")
@requires("agent")
async def consent(request: web.Request) -> web.Response:
    contact = await _contact(request)
    body = await json_body(request)
    if not isinstance(body.get("kind"), str) or not isinstance(body.get("granted"), bool):
        fail(400, "invalid_body", "kind (string) and granted (boolean) are required")
    user = auth_of(request).user
    try:
        record = await record_consent(
            contact.id,
            kind=body["kind"],
            granted=body["granted"],
            channel=str(body.get("channel") or "agent"),
            method=str(body.get("method") or "agent"),
            actor_id=user.id,
        )
    except ConsentError as exc:
        fail(422, "invalid_value", str(exc))
    await audit(
        "contact.consent_recorded",
        actor_id=user.id,
        target_type="contact",
        target_id=contact.id,
        data={"kind": record.kind, "granted": record.granted},
        request=request,
    )
    contact = await Contact.get(id=contact.id)
    return json_response(await profile_json(contact, auth_of(request).viewer), status=201)


@routes.post("/api/contacts/{id}/suggestions/{suggestion_id}")
@requires("agent")
async def decide_suggestion(request: web.Request) -> web.Response:
    contact = await _contact(request)
    suggestion = await ContactSuggestion.get_or_none(id=_id(request, "suggestion_id"), contact_id=contact.id)
    viewer = auth_of(request).viewer
    if suggestion is None or not suggestion_readable(suggestion, await readable_conversation_ids(viewer, contact.id)):
        fail(404, "not_found", "suggestion not found")
    body = await json_body(request)
    if not isinstance(body.get("accept"), bool):
        fail(400, "invalid_body", "accept (boolean) is required")
    if suggestion.status != "pending":
        fail(409, "already_decided", f"this suggestion was already {suggestion.status}")
    try:
        contact = await decide(suggestion, body["accept"], auth_of(request).user.id)
    except AlreadyDecided:
        stored = await ContactSuggestion.get(id=suggestion.id)
        fail(409, "already_decided", f"this suggestion was already {stored.status}")
    return json_response({"suggestion": suggestion_json(suggestion), "contact": summary_json(contact)})


_OBJ = {"type": "object"}
_SID = {"name": "suggestion_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_TAG = "contacts"
openapi.document(
    {
        "/api/contacts": {
            "get": openapi.op(
                "Search contacts (name, phone, e-mail; without diacritics); ?segment=<id> filters by a saved segment",
                openapi.json_response_of(openapi.items_of("Contact")),
                params=[
                    openapi.query_param("q", {"type": "string"}),
                    openapi.query_param("segment", {"type": "string"}),
                    openapi.query_param("limit", {"type": "integer"}),
                    openapi.query_param("cursor", {"type": "string"}),
                ],
                tag=_TAG,
            )
        },
        "/api/contacts/duplicates": {
            "get": openapi.op(
                "Merge suggestions: shared phone / e-mail and similar names, scored 0–1",
                openapi.json_response_of(_OBJ),
                params=[
                    openapi.query_param("min_score", {"type": "number"}),
                    openapi.query_param("limit", {"type": "integer"}),
                ],
                role="supervisor",
                tag=_TAG,
            )
        },
        "/api/contacts/duplicates/dismiss": {
            "post": openapi.op(
                "Mark two profiles as different people",
                openapi.json_response_of(_OBJ),
                body=_OBJ,
                role="supervisor",
                tag=_TAG,
            )
        },
        "/api/contacts/{id}": {
            "get": openapi.op(
                "Profile: identities, attributes, conversations, consents, value (CLTV), RFM, suggestions, attitude",
                openapi.json_response_of(openapi.ref("ContactProfile")),
                params=[openapi.PATH_ID],
                tag=_TAG,
            ),
            "patch": openapi.op(
                "Edit the profile (cleansed: title-case names, E.164 phones, lower-case e-mails; 422 lists bad values)",
                openapi.json_response_of(openapi.ref("ContactProfile")),
                params=[openapi.PATH_ID],
                body=_OBJ,
                tag=_TAG,
            ),
            "delete": openapi.op(
                "Erase the customer's personal data (profile, messages, search index, attachments); audit kept",
                openapi.json_response_of(_OBJ),
                params=[openapi.PATH_ID],
                role="admin",
                tag=_TAG,
            ),
        },
        "/api/contacts/{id}/merge": {
            "post": openapi.op(
                "Merge another profile into this one ({other_id}); undo with /api/contact-merges/{id}/undo",
                openapi.json_response_of(_OBJ),
                params=[openapi.PATH_ID],
                body={"type": "object", "required": ["other_id"], "properties": {"other_id": {"type": "integer"}}},
                role="supervisor",
                tag=_TAG,
            )
        },
        "/api/contact-merges/{id}/undo": {
            "post": openapi.op(
                "Undo a merge exactly",
                openapi.json_response_of(_OBJ),
                params=[openapi.PATH_ID],
                role="supervisor",
                tag=_TAG,
            )
        },
        "/api/contacts/{id}/export": {
            "get": openapi.op(
                "Everything held about the contact, as JSON",
                openapi.json_response_of(_OBJ),
                params=[openapi.PATH_ID],
                role="supervisor",
                tag=_TAG,
            )
        },
        "/api/contacts/{id}/consents": {
            "post": openapi.op(
                "Record consent {kind, granted, channel?, method?}; kind 'storage' refused = do not store",
                openapi.json_response_of(openapi.ref("ContactProfile"), "Created"),
                params=[openapi.PATH_ID],
                body=_OBJ,
                status="201",
                tag=_TAG,
            )
        },
        "/api/contacts/{id}/suggestions/{suggestion_id}": {
            "post": openapi.op(
                "Accept or reject a value found in chats {accept}",
                openapi.json_response_of(_OBJ),
                params=[openapi.PATH_ID, _SID],
                body=_OBJ,
                tag=_TAG,
            )
        },
    },
    {
        "Contact": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "phone": {"type": ["string", "null"]},
                "email": {"type": ["string", "null"]},
                "phones": {"type": "array"},
                "emails": {"type": "array"},
                "tags": {"type": "array"},
            },
        },
        "ContactProfile": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "identities": {"type": "array"},
                "conversations": {"type": "array"},
                "consents": {"type": "object"},
                "value": {"type": "object"},
                "rfm": {"type": ["object", "null"]},
                "suggestions": {"type": "array"},
                "attitude": {"type": ["object", "null"]},
            },
        },
    },
)
