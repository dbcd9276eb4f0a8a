"""Website live chat, server side: the widget script, the visitor's WebSocket, uploaded images, a preview page.

Routes (all under `/widget/`, outside the staff API: the visitor token authenticates the visitor):
- `GET /widget/{widget_token}.js` — the self-contained widget (frontend/widget), with the inbox's settings.
- `GET /widget/{widget_token}/ws` — the visitor socket; only the inbox's allowed origins (and this server's own
  pages) may open it. Protocol, JSON frames `{type, seq, data}`:
    client → `hello {visitor_token?, identifier?, identifier_hash?, since?}` (first), `message {echo_id, text}`,
    `typing {on}`, `prechat {name, phone, email, consent}`, `read {}`, `ping`; an image is one binary frame:
    4-byte big-endian header length, JSON header `{echo_id, text?}`, then the image bytes.
    server → `welcome {visitor_token, messages|null, prechat_done}`, `ready`, `message.accepted {echo_id}` (stored
    durably), `message.created` / `message.updated` (visitor view of a message), `typing {on}`, `prechat.saved`,
    `error {code, message, echo_id?}`, `resync`. `seq` is the event bus's: `since=<last seq>` resumes.
- `GET /widget/files/{name}` — an uploaded image (unguessable name).
- `GET /widget/{widget_token}/demo` — a sample shop page with the widget on it (`hopthu demo` links it).

A visitor's message takes the platforms' path: channel event → `IngestWriter` (durable, deduplicated by
`echo_id`) → processor → pipeline → bus. Agent replies reach the visitor through the bus too (the socket
subscribes with a filter for its own conversation), so they arrive at once, across processes with a shared bus.
What one socket does lives in `inbox.webchat_socket`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from channels import webchat
from inbox import security
from inbox.api.openapi import document, op
from inbox.http import ContractErrors, fail, long_lived, prepare_socket
from inbox.keys import SETTINGS
from inbox.models import Inbox
from inbox.security import normalise_origin
from inbox.webchat_socket import WEBCHAT, Limits, VisitorSession, Webchat

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
ROOT = Path(__file__).resolve().parent.parent / "frontend"
WIDGET_DIR = ROOT / "widget"
FILE_NAME = re.compile(r"^[0-9a-f]{32}\.(png|jpg|gif|webp)$")
FILE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    upload_dir = Path(settings.extra.get("webchat_upload_dir") or "hopthu-uploads")
    app[WEBCHAT] = Webchat(upload_dir)
    app.router.add_routes(routes)


# ------------------------------------------------------------------------------------------------ helpers


def origin_allowed(request: web.Request, inbox: Inbox) -> bool:
    """Browsers always send Origin on a WebSocket: it must be one of the inbox's sites or this server's own
    pages (the preview / demo shop page). Without an Origin the socket is refused too."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null" or "://" not in origin:
        return False
    allowed = frozenset(normalise_origin(o) for o in (inbox.settings or {}).get("allowed_origins", []))
    return security.origin_allowed(request, allowed)


async def widget_inbox(widget_token: str) -> Inbox:
    inbox = await Inbox.get_or_none(channel=webchat.CHANNEL, external_id=widget_token)
    if inbox is None:
        fail(404, "unknown_widget", "no live-chat inbox has this widget token")
    return inbox


def snippet(base_url: str, widget_token: str) -> str:
    """The one line a site adds to its pages."""
    return f'<script src="{base_url.rstrip("/")}/widget/{widget_token}.js" async></script>'


# ------------------------------------------------------------------------------------------------ routes


@routes.get("/widget/files/{name}")
async def uploaded_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not FILE_NAME.match(name):
        fail(404, "not_found", "no such file")
    path = request.app[WEBCHAT].upload_dir / name
    try:
        body = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        fail(404, "not_found", "no such file")
    response = web.Response(body=body, content_type=FILE_TYPES[name.rsplit(".", 1)[1]])
    response.headers.update(
        {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=86400",
            "Cross-Origin-Resource-Policy": "cross-origin",  # shown inside the widget on the shop's pages
        }
    )
    return response


@routes.get("/widget/{widget_token}.js")
async def widget_script(request: web.Request) -> web.Response:
    inbox = await widget_inbox(request.match_info["widget_token"])
    response = web.Response(
        text=render_widget(inbox, f"{request.scheme}://{request.host}", request.app[WEBCHAT].limits),
        content_type="text/javascript",
        charset="utf-8",
    )
    response.headers["Cache-Control"] = "public, max-age=300"  # settings changes reach sites within minutes
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.enable_compression()
    return response


@routes.get("/widget/{widget_token}/demo")
async def demo_page(request: web.Request) -> web.Response:
    inbox = await widget_inbox(request.match_info["widget_token"])
    return web.Response(text=shop_page(f"/widget/{inbox.external_id}.js"), content_type="text/html", charset="utf-8")


def render_widget(inbox: Inbox, base_url: str, limits: Limits) -> str:
    settings = inbox.settings or {}
    config = {
        "token": inbox.external_id,
        "base": base_url,
        "name": settings.get("title") or inbox.name,
        "greeting": settings.get("greeting") or "",
        "prechat": bool(settings.get("prechat")),
        "maxImage": limits.image_bytes,
        "css": (WIDGET_DIR / "widget.css").read_text(encoding="utf-8"),
    }
    # `</` and U+2028/9 escaped: the config is JSON inside a script.
    encoded = orjson.dumps(config).decode().replace("</", "<\\/").replace("\u2028", "\\u2028")
    return (WIDGET_DIR / "widget.js").read_text(encoding="utf-8").replace("__HOPTHU_CONFIG__", encoded, 1)


def shop_page(script_src: str) -> str:
    """The sample shop page (frontend/demo-shop.html) with the widget's script tag in it."""
    page = (ROOT / "demo-shop.html").read_text(encoding="utf-8")
    tag = f'<script src="{script_src}" async></script>'
    return page.replace("<!-- HOPTHU_WIDGET -->", tag, 1)


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _widget_op(summary: str, response: dict[str, Any], *, param: str = "widget_token", **kw: Any) -> dict[str, Any]:
    return {**op(summary, response, role=None, tag="webchat", **kw), "parameters": [_path_param(param)]}


document(
    {
        "/widget/{widget_token}.js": {"get": _widget_op("Live-chat widget script", {"description": "JavaScript"})},
        "/widget/{widget_token}/ws": {
            "get": _widget_op(
                "Visitor WebSocket (allowed origins only): frames {type, seq, data}; `hello {since}` resumes",
                {"description": "switching protocols"},
                status="101",
            )
        },
        "/widget/{widget_token}/demo": {"get": _widget_op("Sample shop page with the widget", {"description": "HTML"})},
        "/widget/files/{name}": {"get": _widget_op("An image a visitor sent", {"description": "image"}, param="name")},
    }
)


# ------------------------------------------------------------------------------------------------ socket


@routes.get("/widget/{widget_token}/ws")
@long_lived
async def visitor_socket(request: web.Request) -> web.StreamResponse:
    with ContractErrors(request):  # the handshake's errors in the contract's shape
        inbox = await widget_inbox(request.match_info["widget_token"])
        if not origin_allowed(request, inbox):
            fail(403, "origin_not_allowed", "this site may not open the live chat of this inbox")
        state: Webchat = request.app[WEBCHAT]
        ws = web.WebSocketResponse(heartbeat=25.0, max_msg_size=state.limits.image_bytes + 64 * 1024, compress=False)
        await prepare_socket(ws, request)
    session = VisitorSession(request, ws, inbox, state)
    try:
        await session.run()
    finally:
        await session.close()
    return ws


# ------------------------------------------------------------------------------------------------ inboxes


async def create_inbox(
    name: str, allowed_origins: list[str], *, prechat: bool = False, greeting: str = "", title: str = ""
) -> Inbox:
    """A live-chat inbox: a public widget token (in the snippet) and a private secret for identity hashes."""
    origins = []
    for origin in allowed_origins:
        if not origin.startswith(("http://", "https://")) or "://" not in origin or origin.count("/") > 3:
            raise ValueError(f"allowed origin must look like https://shop.example (got {origin!r})")
        origins.append(normalise_origin(origin))
    return await Inbox.create(
        name=name,
        channel=webchat.CHANNEL,
        external_id=secrets.token_urlsafe(18),
        credentials={"identity_secret": secrets.token_hex(32)},
        settings={"allowed_origins": origins, "prechat": prechat, "greeting": greeting, "title": title},
    )
