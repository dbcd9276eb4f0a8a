"""`POST /webhooks/telegram/{inbox_id}`: one bot per inbox, authenticated by the secret token Telegram sends.

Like every webhook: a wrong or missing `X-Telegram-Bot-Api-Secret-Token` → 401 and nothing stored; the update is
parsed with aiogram's types, stored through the durable `IngestWriter` (deduplicated), and only then answered
200. Telegram retries anything but a 2xx, so an update the inbox does not show (a group chat, a channel post, a
poll, an update kind newer than aiogram) is answered 200 and dropped, and one that does not parse is kept in the
dead-letter table.
"""

from __future__ import annotations

from aiohttp import web

from channels import telegram
from channels.events import ParseError, Unrecognized
from channels.telegram import TelegramClient
from inbox.api.openapi import document, op
from inbox.http import fail, from_platforms, json_response, parse_json, read_body
from inbox.ingest import Accepted, Item, Rejected, StorageUnavailable
from inbox.keys import DIRECTORY, INGEST
from inbox.webhook_registry import InboxRef

routes = web.RouteTableDef()
TELEGRAM = web.AppKey("telegram", TelegramClient)


def file_url(inbox_id: int):
    """Where agents fetch a Telegram file: through hopthu, which holds the bot token the file URL needs."""
    return lambda file_id: f"/api/telegram/{inbox_id}/files/{file_id}"


async def _bot_inbox(request: web.Request, raw_id: str) -> InboxRef | None:
    if not raw_id.isdigit():
        return None
    inbox_id = int(raw_id)
    directory = request.app[DIRECTORY]
    for force in (False, True):  # force: an inbox added a moment ago (by the CLI, another process)
        for ref in await directory.of_channel(telegram.CHANNEL, force=force):
            if ref.id == inbox_id:
                return ref
    return None


@routes.post("/webhooks/telegram/{inbox_id}")
@from_platforms
async def telegram_update(request: web.Request) -> web.Response:
    ref = await _bot_inbox(request, request.match_info["inbox_id"])
    expected = ref.credentials.get("secret_token") if ref else None
    # An unknown inbox gets the same 401 as a wrong secret: nothing to learn about which ids exist.
    if ref is None or not telegram.verify_secret(request.headers.get(telegram.SECRET_HEADER), expected):
        fail(401, "invalid_secret_token", f"{telegram.SECRET_HEADER} does not match this inbox's secret token")
    payload = parse_json(await read_body(request))
    try:
        events = telegram.parse(payload, ref.external_id, file_url(ref.id))
    except ParseError as exc:
        body = payload if isinstance(payload, dict) else {"payload": payload}
        unrecognized = Unrecognized(telegram.CHANNEL, ref.external_id, str(exc), body)
        items: list[Item] = [Rejected(telegram.CHANNEL, ref.id, unrecognized)]
    else:
        items = [Accepted(ref.id, telegram.CHANNEL, event) for event in events]
    try:
        await request.app[INGEST].store(items)
    except StorageUnavailable:
        fail(503, "storage_unavailable", "could not store the update; Telegram will deliver it again")
    return json_response({"ok": True})


document(
    {
        "/webhooks/telegram/{inbox_id}": {
            "post": {
                **op(
                    "Telegram webhook for one bot (X-Telegram-Bot-Api-Secret-Token)",
                    {"description": "stored", "content": {"application/json": {"schema": {"type": "object"}}}},
                    role=None,
                    body={"type": "object"},
                    tag="webhooks",
                ),
                "parameters": [{"name": "inbox_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            }
        }
    }
)
