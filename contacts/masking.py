"""Masked phone numbers and e-mails for staff without the `view_contact_pii` permission.

Policy (Pancake-style: staff should not be able to take customers with them): admins see everything; agents and
supervisors see unmasked values only with `view_contact_pii`.

Where contact data leaves the server it is masked: every JSON API response passes `mask_responses` (contact
phones/e-mails under a `contact`/`contacts` key anywhere, and everything under `/api/contacts`, `/api/orders`,
`/api/segments`), and WebSocket frames come in a masked variant encoded once per event (`inbox.bus.Event`).
Serialisers stay unmasked, so an event built while serving one agent's request is right for every reader.
Every response that shows unmasked contact data is written to the audit log (`contact.pii_viewed`).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

PII_PERMISSION = "view_contact_pii"
_PII_KEYS = ("phone", "email", "phones", "emails")
# Everything these routes return is customer data: any phone/e-mail in them is masked.
CUSTOMER_PATHS = ("/api/contacts", "/api/orders", "/api/segments")


def can_view_pii(user: Any) -> bool:
    if user is None:
        return False
    return user.role == "admin" or PII_PERMISSION in (user.permissions or [])


def mask_phone(value: str | None) -> str | None:
    """'+84901234567' → '+84*******67': the country code and two last digits stay, enough to tell numbers apart."""
    if not value:
        return value
    keep_head = 3 if value.startswith("+") else 2
    if len(value) <= keep_head + 2:
        return "*" * len(value)
    return value[:keep_head] + "*" * (len(value) - keep_head - 2) + value[-2:]


def mask_email(value: str | None) -> str | None:
    """'lan.nguyen@gmail.com' → 'l***@gmail.com'."""
    if not value or "@" not in value:
        return value
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def _mask_value(key: str, value: Any) -> Any:
    if key in ("phone", "phones"):
        return [mask_phone(v) for v in value] if isinstance(value, list) else mask_phone(value)
    return [mask_email(v) for v in value] if isinstance(value, list) else mask_email(value)


def mask_contact(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a contact dict with its phones and e-mails masked."""
    out = dict(data)
    for key in _PII_KEYS:
        if out.get(key):
            out[key] = _mask_value(key, out[key])
    return out


def masked_event_data(event_type: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The event's data with contact phones/e-mails masked, or None when it holds none (the same frame serves all).

    Contact data travels under a `contact` key (conversation events) or is the data itself (contact.* events).
    """
    if event_type.startswith("contact."):
        masked = _mask_tree(data, inside_contact=True)
    else:
        masked = _mask_tree(data, inside_contact=False)
    return masked if masked is not data else None


def _mask_tree(node: Any, *, inside_contact: bool) -> Any:
    """Returns the same object when nothing under it changed, so events without PII cost no copy."""
    if isinstance(node, dict):
        changed: dict[str, Any] | None = None
        # A suggestion or entity of kind phone/e-mail carries the value itself.
        valued = inside_contact and node.get("kind", node.get("type")) in ("phone", "email")
        for key, value in node.items():
            if valued and key in ("value", "normalized") and isinstance(value, str) and value:
                new = _mask_value(node.get("kind", node.get("type")), value)
            elif inside_contact and key in _PII_KEYS and value:
                new = _mask_value(key, value)
            elif isinstance(value, dict | list):
                new = _mask_tree(value, inside_contact=inside_contact or key in ("contact", "contacts"))
            else:
                continue
            if new is not value:
                if changed is None:
                    changed = dict(node)
                changed[key] = new
        return changed if changed is not None else node
    if isinstance(node, list):
        items = [_mask_tree(v, inside_contact=inside_contact) for v in node]
        return items if any(a is not b for a, b in zip(items, node, strict=True)) else node
    return node


def mask_json(data: Any, *, everything: bool) -> Any:
    """`data` with contact phones/e-mails masked (the same object when it holds none)."""
    return _mask_tree(data, inside_contact=everything)


@web.middleware
async def mask_responses(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    from inbox.api.guard import AUTH_KEY

    auth = request.get(AUTH_KEY)
    if auth is None or not isinstance(response, web.Response) or response.content_type != "application/json":
        return response
    body = response.body
    if not isinstance(body, bytes | bytearray) or not body:
        return response
    everything = request.path.startswith(CUSTOMER_PATHS) or "/orders" in request.path
    if not everything and b'"contact' not in body:
        return response  # nothing about a customer: no parsing
    data = orjson.loads(body)
    masked = _mask_tree(data, inside_contact=everything)
    if masked is data:
        return response
    if can_view_pii(auth.user):
        from agents.audit import audit

        target = request.match_info.get("id")
        await audit(
            "contact.pii_viewed",
            actor_id=auth.user.id,
            target_type="contact" if request.path.startswith("/api/contacts/") else None,
            target_id=target if request.path.startswith("/api/contacts/") else None,
            data={
                "method": request.method,
                "route": request.match_info.route.resource.canonical
                if request.match_info.route.resource
                else request.path,
            },
            request=request,
        )
        return response
    response.body = orjson.dumps(masked)
    return response
