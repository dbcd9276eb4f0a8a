"""Webhook endpoints: verify the signature over the raw body, parse with the channel adapter, store durably,
and only then answer 200. Processing continues off the ack path (`inbox.processing`).
"""

from __future__ import annotations

from aiohttp import web

from channels import facebook, zalo
from channels.events import ParseError, Unrecognized, to_record
from inbox.http import fail, from_platforms, json_response, parse_json, read_body
from inbox.ingest import Accepted, Item, Rejected, StorageUnavailable
from inbox.keys import DIRECTORY, INGEST

routes = web.RouteTableDef()
OK = {"text": "EVENT_RECEIVED"}
ZALO_OK = {"error": 0, "message": "Success"}


@routes.get("/webhooks/facebook")
async def facebook_handshake(request: web.Request) -> web.Response:
    inboxes = await request.app[DIRECTORY].of_channel("facebook", force=True)
    tokens = [ref.credentials.get("verify_token", "") for ref in inboxes]
    challenge = facebook.handshake_challenge(request.query, tokens)
    if challenge is None:
        fail(403, "verification_failed", "hub.mode or hub.verify_token does not match")
    return web.Response(text=challenge, content_type="text/plain")


@routes.post("/webhooks/facebook")
@from_platforms
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
    return json_response(OK)


@routes.post("/webhooks/zalo")
@from_platforms
async def zalo_events(request: web.Request) -> web.Response:
    """Zalo signs app id + body + the body's timestamp, so the body is read (not trusted) before verifying."""
    raw = await read_body(request)
    signature = request.headers.get(zalo.SIGNATURE_HEADER)
    if not signature:
        fail(401, "invalid_signature", "X-ZEvent-Signature is missing")
    payload = parse_json(raw)
    app_id, timestamp, oa_id = zalo.envelope(payload)
    directory = request.app[DIRECTORY]
    ref = await _zalo_signer(directory, raw, signature, app_id, timestamp, oa_id, force=False)
    if ref is None:
        ref = await _zalo_signer(directory, raw, signature, app_id, timestamp, oa_id, force=True)
    if ref is None:
        fail(401, "invalid_signature", "X-ZEvent-Signature does not match any Zalo OA's secret")
    items: list[Item] = []
    for event in zalo.parse(payload):
        if isinstance(event, Unrecognized):
            items.append(Rejected("zalo", ref.id, event))
        elif event.account_id != ref.external_id:
            reason = "no inbox for this OA"
            items.append(Rejected("zalo", None, Unrecognized("zalo", event.account_id, reason, to_record(event))))
        else:
            items.append(Accepted(ref.id, "zalo", event))
    await _store(request, items)
    return json_response(ZALO_OK)


async def _zalo_signer(
    directory, raw: bytes, signature: str, app_id: str | None, timestamp: str | None, oa_id: str | None, *, force: bool
):
    """The Zalo inbox whose OA secret signed the body: the OA's own inbox first, then others of the same app."""
    if app_id is None or timestamp is None:
        return None
    refs = [r for r in await directory.of_channel("zalo", force=force) if str(r.credentials.get("app_id")) == app_id]
    refs.sort(key=lambda r: r.external_id != oa_id)
    for ref in refs:
        if zalo.verify_signature(raw, signature, app_id, timestamp, str(ref.credentials.get("oa_secret", ""))):
            return ref
    return None


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
