"""Webhook endpoints: verify the signature over the raw body, parse with the channel adapter, store durably,
and only then answer 200. Processing continues off the ack path (`inbox.processing`).
"""

from __future__ import annotations

from aiohttp import web

from channels import facebook
from channels.events import ParseError, Unrecognized, to_record
from inbox.http import fail, parse_json, read_body
from inbox.ingest import Accepted, Item, Rejected, StorageUnavailable
from inbox.keys import DIRECTORY, INGEST

routes = web.RouteTableDef()
OK = {"text": "EVENT_RECEIVED"}


@routes.get("/webhooks/facebook")
async def facebook_handshake(request: web.Request) -> web.Response:
    inboxes = await request.app[DIRECTORY].of_channel("facebook", force=True)
    tokens = [ref.credentials.get("verify_token", "") for ref in inboxes]
    challenge = facebook.handshake_challenge(request.query, tokens)
    if challenge is None:
        fail(403, "verification_failed", "hub.mode or hub.verify_token does not match")
    return web.Response(text=challenge, content_type="text/plain")


@routes.post("/webhooks/facebook")
async def facebook_events(request: web.Request) -> web.Response:
    raw = await read_body(request)
    signature = request.headers.get(facebook.SIGNATURE_HEADER)
    directory = request.app[DIRECTORY]
    secret = await _matching_secret(directory, raw, signature, force=False)
    if secret is None:
        secret = await _matching_secret(directory, raw, signature, force=True)  # a just-added inbox
    if secret is None:
        fail(401, "invalid_signature", "X-Hub-Signature-256 does not match any configured app secret")
    payload = parse_json(raw)
    try:
        events = facebook.parse(payload)
    except ParseError as exc:
        items: list[Item] = [Rejected("facebook", None, Unrecognized("facebook", None, str(exc), _as_dict(payload)))]
    else:
        items = []
        for event in events:
            ref = await directory.find("facebook", event.account_id) if event.account_id else None
            if isinstance(event, Unrecognized):
                items.append(Rejected("facebook", ref.id if ref else None, event))
            elif ref is None or ref.credentials.get("app_secret") != secret:
                reason = "no inbox for this page" if ref is None else "signed by another app than the page's"
                items.append(
                    Rejected("facebook", None, Unrecognized("facebook", event.account_id, reason, to_record(event)))
                )
            else:
                items.append(Accepted(ref.id, "facebook", event))
    await _store(request, items)
    return web.json_response(OK)


async def _matching_secret(directory, raw: bytes, signature: str | None, *, force: bool) -> str | None:
    if not signature:
        return None
    secrets = {ref.credentials.get("app_secret", "") for ref in await directory.of_channel("facebook", force=force)}
    for secret in secrets:
        if secret and facebook.verify_signature(raw, signature, secret):
            return secret
    return None


async def _store(request: web.Request, items: list[Item]) -> None:
    try:
        await request.app[INGEST].store(items)
    except StorageUnavailable:
        fail(503, "storage_unavailable", "could not store the event; please deliver it again")


def _as_dict(payload: object) -> dict:
    return payload if isinstance(payload, dict) else {"payload": payload}
