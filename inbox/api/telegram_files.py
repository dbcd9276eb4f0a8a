"""`GET /api/telegram/{id}/files/{file_id}`: a photo, voice note or document a Telegram customer sent.

Telegram's file URLs contain the bot token, so they never reach the browser: agents who may read the inbox
fetch the file through hopthu, which asks the Bot API (getFile, then the download) with the inbox's token.
"""

from __future__ import annotations

import re

from aiohttp import web

from channels import telegram
from channels.base import SendError
from channels.webchat import sniff_image
from inbox.api.guard import auth_of, requires
from inbox.api.openapi import PATH_ID, document, op
from inbox.http import fail, int_param
from inbox.models import Inbox
from inbox.webhooks_telegram import TELEGRAM

routes = web.RouteTableDef()
FILE_ID = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
DOCUMENT_TYPES = {b"%PDF-": ".pdf", b"PK\x03\x04\x14": ".zip"}  # a download named so the agent's computer opens it


def sniff_media(content: bytes) -> tuple[str, str] | None:
    """(mime type, extension) of a sound or video from its own first bytes, so a voice note plays in the browser
    (a media element runs no script); None for anything else."""
    if content.startswith(b"OggS"):
        return ("audio/ogg", "ogg")  # Telegram's voice notes (Opus)
    if content.startswith(b"ID3") or content[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return ("audio/mpeg", "mp3")
    if content[4:8] == b"ftyp":
        return ("audio/mp4", "m4a") if content[8:11] == b"M4A" else ("video/mp4", "mp4")
    if content.startswith(b"\x1a\x45\xdf\xa3"):
        return ("video/webm", "webm")
    return None


@routes.get("/api/telegram/{id}/files/{file_id}")
@requires("agent")
async def telegram_file(request: web.Request) -> web.Response:
    inbox_id = int_param(request.match_info["id"], "id")
    inbox = await Inbox.get_or_none(id=inbox_id, channel=telegram.CHANNEL)
    if inbox is None or not auth_of(request).viewer.can_read(inbox.id):
        fail(404, "not_found", "no such Telegram inbox")
    file_id = request.match_info["file_id"]
    if not FILE_ID.match(file_id):
        fail(404, "not_found", "no such file")
    try:
        content = await request.app[TELEGRAM].download(inbox.credentials["bot_token"], file_id)
    except SendError as exc:
        fail(502, "telegram_unavailable", exc.reason)
    shown = sniff_image(content) or sniff_media(content)
    response = web.Response(body=content, content_type=shown[0] if shown else "application/octet-stream")
    if shown is None:  # anything but a known image, sound or video is a download, never rendered on this origin
        extension = DOCUMENT_TYPES.get(content[:5], "")
        response.headers["Content-Disposition"] = f'attachment; filename="{file_id[:40]}{extension}"'
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


document(
    {
        "/api/telegram/{id}/files/{file_id}": {
            "get": {
                **op("A file a Telegram customer sent (fetched with the bot's token)", {"description": "the file"}),
                "parameters": [
                    PATH_ID,
                    {"name": "file_id", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
            }
        }
    }
)
