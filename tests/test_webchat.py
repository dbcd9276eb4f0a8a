"""Website live chat: the visitor socket, from a visitor's first message to the agent's reply and back again."""

from __future__ import annotations

import asyncio
import errno
import gzip
import os
import struct
import uuid
from typing import Any

import orjson
import pytest
from aiohttp import WSMsgType, WSServerHandshakeError
from aiohttp.test_utils import TestClient

from channels import webchat
from contacts.consent import current_consents
from contacts.models import ConsentRecord, Contact, ContactIdentity
from inbox.bus import Event
from inbox.ingest import StorageUnavailable
from inbox.keys import BUS, INGEST, PIPELINE
from inbox.models import Conversation, InboundEvent, Inbox, Message
from inbox.webchat import WEBCHAT, create_inbox
from tests.conftest import eventually, live_http_parsers, quick_user

ORIGIN = "https://shop.example"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


class Visitor:
    """A browser tab of the widget, speaking the socket protocol."""

    def __init__(self, ws: Any, welcome: dict[str, Any]) -> None:
        self.ws, self.welcome = ws, welcome
        self.seq = welcome["seq"]
        self.token = welcome["data"]["visitor_token"]
        self.skipped: list[dict[str, Any]] = []  # frames read while waiting for another type, kept in order

    async def send(self, kind: str, data: dict[str, Any]) -> None:
        await self.ws.send_str(orjson.dumps({"type": kind, "data": data}).decode())

    async def say(self, text: str, echo_id: str | None = None) -> str:
        echo_id = echo_id or uuid.uuid4().hex
        await self.send("message", {"echo_id": echo_id, "text": text})
        return echo_id

    async def frame(self, kind: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        """The next frame of this type (whose data has `match`'s values); others are kept for later calls."""

        def wanted(frame: dict[str, Any]) -> bool:
            return frame["type"] == kind and all(frame["data"].get(k) == v for k, v in match.items())

        for i, frame in enumerate(self.skipped):
            if wanted(frame):
                return self.skipped.pop(i)
        while True:
            message = await self.ws.receive(timeout=timeout)
            assert message.type == WSMsgType.TEXT, f"socket ended: {message}"
            frame = orjson.loads(message.data)
            if frame["type"] in ("message.created", "message.updated", "typing"):
                assert frame["seq"] >= self.seq
                self.seq = frame["seq"]
            if wanted(frame):
                return frame
            self.skipped.append(frame)

    async def close(self) -> None:
        await self.ws.close()


async def visit(client: TestClient, inbox: Inbox, origin: str = ORIGIN, **hello: Any) -> Visitor:
    ws = await client.ws_connect(f"/widget/{inbox.external_id}/ws", headers={"Origin": origin})
    await ws.send_str(orjson.dumps({"type": "hello", "data": hello}).decode())
    welcome = orjson.loads((await ws.receive(timeout=10)).data)
    assert welcome["type"] == "welcome", welcome
    visitor = Visitor(ws, welcome)
    await visitor.frame("ready")
    return visitor


@pytest.fixture
async def site(client: TestClient) -> Inbox:
    return await create_inbox("Shop Mai Anh — website", [ORIGIN], prechat=True)


async def conversation_of(visitor: Visitor, inbox: Inbox) -> Conversation:
    data = webchat.verify_visitor("test-secret-key", visitor.token, inbox.external_id)

    async def find() -> Conversation | None:
        identity = await ContactIdentity.get_or_none(inbox_id=inbox.id, external_id=data.external_id)
        return identity and await Conversation.get_or_none(identity_id=identity.id)

    return await eventually(find)


async def test_visitor_message_reaches_agent_and_reply_reaches_visitor(client: TestClient, site: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[site])
    visitor = await visit(client, site)
    assert visitor.welcome["data"]["messages"] == []
    echo = await visitor.say("Chào shop, áo sơ mi lụa còn size M không ạ?")
    await visitor.frame("message.accepted", echo_id=echo)
    own = await visitor.frame("message.created", echo_id=echo)
    assert own["data"]["direction"] == "in" and own["data"]["text"].startswith("Chào shop")

    conv = await conversation_of(visitor, site)
    listing = await client.get("/api/conversations?channel=webchat", headers=agent.headers)
    assert [c["id"] for c in (await listing.json())["items"]] == [conv.id]
    messages = await (await client.get(f"/api/conversations/{conv.id}/messages", headers=agent.headers)).json()
    assert messages["items"][0]["text"] == "Chào shop, áo sơ mi lụa còn size M không ạ?"

    reply = await client.post(
        f"/api/conversations/{conv.id}/messages", json={"text": "Dạ còn size M ạ"}, headers=agent.headers
    )
    assert reply.status == 201
    assert (await reply.json())["delivery_status"] == "sent"
    shown = await visitor.frame("message.created", direction="out")
    assert shown["data"]["text"] == "Dạ còn size M ạ"
    assert "sentiment" not in shown["data"] and "sender_id" not in shown["data"]  # staff-only fields stay inside
    await visitor.close()

    again = await visit(client, site, visitor_token=visitor.token)  # a reload: the same visitor
    history = [(m["direction"], m["text"]) for m in again.welcome["data"]["messages"]]
    assert history == [("in", "Chào shop, áo sơ mi lụa còn size M không ạ?"), ("out", "Dạ còn size M ạ")]
    await again.close()


async def test_an_open_visitor_socket_keeps_no_http_parser_and_still_chats(client: TestClient, site: Inbox) -> None:
    before = live_http_parsers()
    visitors = [await visit(client, site) for _ in range(3)]
    assert live_http_parsers() <= before  # three upgraded connections, none keeping its request's headers
    for n, visitor in enumerate(visitors):
        echo = await visitor.say(f"Cho em hỏi giá, khách số {n}")
        own = await visitor.frame("message.created", echo_id=echo)
        assert own["data"]["text"] == f"Cho em hỏi giá, khách số {n}"
        await visitor.close()


async def test_private_notes_never_reach_the_visitor(client: TestClient, site: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[site])
    visitor = await visit(client, site)
    await visitor.say("alo shop")
    conv = await conversation_of(visitor, site)
    url = f"/api/conversations/{conv.id}/messages"
    await client.post(url, json={"text": "khách VIP, ưu tiên", "private": True}, headers=agent.headers)
    await client.post(url, json={"text": "Dạ shop nghe ạ"}, headers=agent.headers)
    shown = await visitor.frame("message.created", direction="out")
    assert shown["data"]["text"] == "Dạ shop nghe ạ"
    await visitor.close()
    again = await visit(client, site, visitor_token=visitor.token)
    assert "khách VIP, ưu tiên" not in [m["text"] for m in again.welcome["data"]["messages"]]
    await again.close()


async def test_socket_only_from_allowed_origins(client: TestClient, site: Inbox) -> None:
    path = f"/widget/{site.external_id}/ws"
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {}):
        with pytest.raises(WSServerHandshakeError) as refused:
            await client.ws_connect(path, headers=headers)
        assert refused.value.status == 403
    with pytest.raises(WSServerHandshakeError) as unknown:
        await client.ws_connect("/widget/no-such-widget/ws", headers={"Origin": ORIGIN})
    assert unknown.value.status == 404
    visitor = await visit(client, site, origin="https://SHOP.example:443")  # the same origin, written otherwise
    await visitor.close()


async def test_resume_delivers_what_was_missed(client: TestClient, site: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[site])
    visitor = await visit(client, site)
    await visitor.say("shop ơi")
    await visitor.frame("message.created", direction="in")
    conv = await conversation_of(visitor, site)
    seen = visitor.seq
    await visitor.close()
    for text in ("Dạ shop đây ạ", "Chị cần tư vấn mẫu nào ạ?"):
        await client.post(f"/api/conversations/{conv.id}/messages", json={"text": text}, headers=agent.headers)
    back = await visit(client, site, visitor_token=visitor.token, since=seen)
    assert back.welcome["data"]["messages"] is None  # resumed, not reloaded
    missed = [(await back.frame("message.created", direction="out"))["data"]["text"] for _ in range(2)]
    assert missed == ["Dạ shop đây ạ", "Chị cần tư vấn mẫu nào ạ?"]
    await back.close()


async def test_resent_message_is_stored_once(client: TestClient, site: Inbox) -> None:
    visitor = await visit(client, site)
    echo = await visitor.say("mình muốn đặt 2 áo")
    await visitor.frame("message.accepted", echo_id=echo)
    await visitor.close()
    again = await visit(client, site, visitor_token=visitor.token)  # offline before the ack: the widget resends
    await again.say("mình muốn đặt 2 áo", echo)
    await again.frame("message.accepted", echo_id=echo)
    await again.say("size M nhé")
    await again.frame("message.created", text="size M nhé")
    conv = await conversation_of(visitor, site)
    assert await Message.filter(conversation_id=conv.id).count() == 2
    await again.close()


async def test_rate_limit_per_visitor(client: TestClient, site: Inbox) -> None:
    client.app[WEBCHAT].limits.burst = 3
    client.app[WEBCHAT].limits.messages_per_minute = 0.001
    visitor = await visit(client, site)
    for i in range(3):
        await visitor.frame("message.accepted", echo_id=await visitor.say(f"tin {i}"))
    refused = await visitor.frame("error", echo_id=await visitor.say("tin thứ tư"))
    assert refused["data"]["code"] == "rate_limited"
    other = await visit(client, site)  # another visitor is not slowed down by the first
    await other.frame("message.accepted", echo_id=await other.say("xin chào"))
    # The pre-chat form counts too: each one writes the profile, a consent record and a frame to every agent.
    await visitor.send("prechat", {"name": "Lê Thu Hà", "phone": "0912 345 678", "consent": True})
    assert (await visitor.frame("error"))["data"]["code"] == "rate_limited"
    assert await ConsentRecord.filter(method="prechat_form").count() == 0
    await visitor.close()
    await other.close()


def image_frame(echo_id: str, content: bytes, text: str | None = None) -> bytes:
    header = orjson.dumps({"echo_id": echo_id, "text": text})
    return struct.pack("!I", len(header)) + header + content


async def test_images_checked_for_type_and_size(client: TestClient, site: Inbox) -> None:
    client.app[WEBCHAT].limits.image_bytes = 1024
    visitor = await visit(client, site)
    await visitor.ws.send_bytes(image_frame("img1", PNG, "ảnh mẫu áo"))
    shown = await visitor.frame("message.created", echo_id="img1")
    [attachment] = shown["data"]["attachments"]
    assert attachment["kind"] == "image" and attachment["url"].startswith("/widget/files/")
    image = await client.get(attachment["url"])
    assert image.status == 200 and image.content_type == "image/png"
    assert await image.read() == PNG

    await visitor.ws.send_bytes(image_frame("html1", b"<html><script>alert(1)</script></html>"))
    assert (await visitor.frame("error", echo_id="html1"))["data"]["code"] == "unsupported_image"
    await visitor.ws.send_bytes(image_frame("big1", PNG + b"\x00" * 2048))
    assert (await visitor.frame("error", echo_id="big1"))["data"]["code"] == "image_too_large"
    assert (await client.get("/widget/files/../../etc/passwd")).status == 404
    await visitor.close()


async def test_a_refused_or_failed_image_leaves_no_file(
    client: TestClient, site: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only an image whose message was stored stays in the upload directory: one refused for its header, its
    bytes or a storage failure, or whose write failed half-way (a full disk), leaves nothing behind."""
    uploads = client.app[WEBCHAT].upload_dir
    visitor = await visit(client, site)

    def files() -> list[str]:
        return sorted(p.name for p in uploads.iterdir()) if uploads.exists() else []

    await visitor.ws.send_bytes(image_frame("bad echo id!", PNG))
    assert (await visitor.frame("error", echo_id="bad echo id!"))["data"]["code"] == "invalid_message"
    await visitor.ws.send_bytes(image_frame("long1", PNG, "x" * (webchat.MAX_TEXT + 1)))
    assert (await visitor.frame("error", echo_id="long1"))["data"]["code"] == "invalid_message"
    await visitor.ws.send_bytes(image_frame("html1", b"<html></html>"))
    assert (await visitor.frame("error", echo_id="html1"))["data"]["code"] == "unsupported_image"
    assert files() == []

    async def unavailable(items: Any) -> None:
        raise StorageUnavailable("database locked")

    with monkeypatch.context() as patch:
        patch.setattr(client.app[INGEST], "store", unavailable)
        await visitor.ws.send_bytes(image_frame("down1", PNG))
        assert (await visitor.frame("error", echo_id="down1"))["data"]["code"] == "storage_unavailable"
    assert files() == []

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_full)
        await visitor.ws.send_bytes(image_frame("full1", PNG))
        assert (await visitor.frame("error", echo_id="full1"))["data"]["code"] == "storage_unavailable"
    assert files() == []

    await visitor.ws.send_bytes(image_frame("ok1", PNG))
    shown = await visitor.frame("message.created", echo_id="ok1")
    assert files() == [shown["data"]["attachments"][0]["url"].rsplit("/", 1)[1]]
    await visitor.close()


async def test_a_retried_image_is_one_message_and_one_file(client: TestClient, site: Inbox) -> None:
    """The widget sends an image again under the same echo_id when the ack did not come (a reconnect): the
    visitor gets the same answer, the agent one message, and the upload folder keeps only the file it shows."""
    uploads = client.app[WEBCHAT].upload_dir
    visitor = await visit(client, site)
    await visitor.ws.send_bytes(image_frame("retry1", PNG, "mẫu này còn không shop"))
    await visitor.frame("message.accepted", echo_id="retry1")
    shown = await visitor.frame("message.created", echo_id="retry1")
    await visitor.close()
    again = await visit(client, site, visitor_token=visitor.token)
    await again.ws.send_bytes(image_frame("retry1", PNG, "mẫu này còn không shop"))
    await again.frame("message.accepted", echo_id="retry1")
    conv = await conversation_of(visitor, site)
    [message] = await Message.filter(conversation_id=conv.id)
    assert message.attachments[0]["url"] == shown["data"]["attachments"][0]["url"]
    assert sorted(p.name for p in uploads.iterdir()) == [message.attachments[0]["url"].rsplit("/", 1)[1]]
    await again.close()


async def test_typing_both_ways(client: TestClient, site: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[site])
    staff_ws = await client.ws_connect(f"/ws?token={agent.token}")
    visitor = await visit(client, site)
    await visitor.say("cho mình hỏi")
    conv = await conversation_of(visitor, site)
    await visitor.frame("message.created", direction="in")
    await visitor.send("typing", {"on": True})
    while True:
        frame = orjson.loads((await staff_ws.receive(timeout=10)).data)
        if frame["type"] == "typing":
            break
    assert frame["data"] == {"conversation_id": conv.id, "contact_id": conv.contact_id, "on": True,
                             "sender_type": "contact"}  # fmt: skip
    await staff_ws.send_str(orjson.dumps({"type": "typing", "data": {"conversation_id": conv.id, "on": True}}).decode())
    assert (await visitor.frame("typing"))["data"] == {"on": True}
    await staff_ws.close()
    await visitor.close()


async def test_identified_user_continues_on_another_device(client: TestClient, site: Inbox) -> None:
    secret = site.credentials["identity_secret"]
    proof = {"identifier": "khach-42@shop.vn", "identifier_hash": webchat.identifier_hash(secret, "khach-42@shop.vn")}
    phone = await visit(client, site, **proof)
    assert phone.welcome["data"]["identified"] is True
    await phone.say("đơn DH240815 của mình sao rồi shop")
    await phone.frame("message.created", direction="in")
    await phone.close()
    laptop = await visit(client, site, **proof)  # no visitor token: another browser
    assert [m["text"] for m in laptop.welcome["data"]["messages"]] == ["đơn DH240815 của mình sao rồi shop"]
    await laptop.close()

    forged = await visit(client, site, identifier="khach-42@shop.vn", identifier_hash="00" * 32)
    assert forged.welcome["data"]["identified"] is False and forged.welcome["data"]["messages"] == []
    assert (await forged.frame("error"))["data"]["code"] == "identity_rejected"
    await forged.close()


async def test_a_signed_identifier_with_a_nul_is_refused_and_the_visitor_still_chats(
    client: TestClient, site: Inbox
) -> None:
    """The shop's site signs what it likes; PostgreSQL cannot store a NUL in the identity's id. The visitor is told
    and goes on anonymously, and the message is stored."""
    secret, identifier = site.credentials["identity_secret"], "khach-42\x00@shop.vn"
    visitor = await visit(
        client, site, identifier=identifier, identifier_hash=webchat.identifier_hash(secret, identifier)
    )
    assert visitor.welcome["data"]["identified"] is False
    assert (await visitor.frame("error"))["data"]["code"] == "identity_rejected"
    echo = await visitor.say("Shop ơi cho mình hỏi đơn hàng")
    assert (await visitor.frame("message.created", echo_id=echo))["data"]["text"] == "Shop ơi cho mình hỏi đơn hàng"
    await visitor.close()


async def test_prechat_form_fills_the_profile_with_consent(client: TestClient, site: Inbox) -> None:
    visitor = await visit(client, site)
    assert visitor.welcome["data"]["prechat_done"] is False
    await visitor.send("prechat", {"name": "Lê Thu Hà", "phone": "0912 345 67", "consent": True})
    error = await visitor.frame("error")
    assert error["data"]["code"] == "invalid_prechat" and error["data"]["field"] == "phone"
    form = {"name": "Lê Thu Hà", "phone": "0912 345 678", "email": "Ha.Le@Example.vn", "consent": False}
    await visitor.send("prechat", form)
    assert (await visitor.frame("error"))["data"]["field"] == "consent"
    await visitor.send("prechat", {**form, "consent": True})
    assert (await visitor.frame("prechat.saved"))["data"]["name"] == "Lê Thu Hà"
    await visitor.say("mình muốn hỏi về đơn hàng")
    conv = await conversation_of(visitor, site)
    contact = await Contact.get(id=conv.contact_id)
    assert (contact.name, contact.phone, contact.email) == ("Lê Thu Hà", "+84912345678", "ha.le@example.vn")
    consent = (await current_consents(contact.id))["storage"]
    assert consent["granted"] is True and consent["channel"] == "webchat" and consent["method"] == "prechat_form"
    await visitor.close()
    again = await visit(client, site, visitor_token=visitor.token)
    assert again.welcome["data"]["prechat_done"] is True
    await again.close()


async def test_a_nul_character_in_the_prechat_form_is_saved_as_a_space(client: TestClient, site: Inbox) -> None:
    """A NUL in a typed name is a separator, not a reason for the form to fail (PostgreSQL's text cannot hold it)."""
    visitor = await visit(client, site)
    await visitor.send("prechat", {"name": "Lê\x00Thu Hà", "consent": True})
    assert (await visitor.frame("prechat.saved"))["data"]["name"] == "Lê Thu Hà"
    await visitor.close()


async def test_prechat_form_with_only_a_name_is_not_asked_again(client: TestClient, site: Inbox) -> None:
    """The form accepts any one field; once sent, the next page load must not show it again."""
    visitor = await visit(client, site)
    await visitor.send("prechat", {"name": "Lê Thu Hà", "consent": True})
    assert (await visitor.frame("prechat.saved"))["data"]["name"] == "Lê Thu Hà"
    await visitor.close()
    again = await visit(client, site, visitor_token=visitor.token)
    assert again.welcome["data"]["prechat_done"] is True
    await again.close()


async def test_bad_frames_get_clear_errors(client: TestClient, site: Inbox) -> None:
    ws = await client.ws_connect(f"/widget/{site.external_id}/ws", headers={"Origin": ORIGIN})
    await ws.send_str('{"type": "message", "data": {}}')  # no hello first
    closed = await ws.receive(timeout=10)
    assert closed.type in (WSMsgType.CLOSE, WSMsgType.CLOSED) and ws.close_code == 4000
    visitor = await visit(client, site, visitor_token="forged.token")  # an unreadable token: a new visitor
    await visitor.send("message", {"echo_id": "bad id!", "text": "x"})
    assert (await visitor.frame("error"))["data"]["code"] == "invalid_message"
    await visitor.send("message", {"echo_id": "e1", "text": "x" * 2001})
    assert (await visitor.frame("error", echo_id="e1"))["data"]["code"] == "invalid_message"
    await visitor.close()


async def test_widget_script_is_small_and_configured(client: TestClient, site: Inbox) -> None:
    response = await client.get(f"/widget/{site.external_id}.js")
    assert response.status == 200 and response.content_type == "text/javascript"
    script = await response.text()
    assert site.external_id in script and "__HOPTHU_CONFIG__" not in script
    assert "attachShadow" in script and "innerHTML" not in script  # text only, never markup
    assert len(gzip.compress(script.encode())) <= 30 * 1024
    assert site.credentials["identity_secret"] not in script
    assert (await client.get("/widget/unknown-token.js")).status == 404
    page = await client.get(f"/widget/{site.external_id}/demo")
    assert page.status == 200 and f"/widget/{site.external_id}.js" in await page.text()


async def test_visitor_reading_marks_replies_read(client: TestClient, site: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[site])
    visitor = await visit(client, site)
    await visitor.say("shop ơi")
    conv = await conversation_of(visitor, site)
    reply = await client.post(
        f"/api/conversations/{conv.id}/messages", json={"text": "Dạ shop đây ạ"}, headers=agent.headers
    )
    reply_id = (await reply.json())["id"]
    await visitor.frame("message.created", direction="out")
    await visitor.send("read", {})
    await eventually(lambda: Message.filter(id=reply_id, delivery_status="read").exists())
    await visitor.close()


async def test_a_flood_of_read_and_typing_frames_stores_and_publishes_little(client: TestClient, site: Inbox) -> None:
    """Each `read` is a durable receipt and each `typing` a frame to every agent of the inbox: a script repeating
    them must not grow the inbound log or flood the agents' sockets."""
    agent = await quick_user("agent", inboxes=[site])
    visitor = await visit(client, site)
    await visitor.say("shop ơi")
    conv = await conversation_of(visitor, site)
    await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ shop đây ạ"}, headers=agent.headers)
    await visitor.frame("message.created", direction="out")
    typing: list[Event] = []
    subscription = client.app[BUS].subscribe(None, lambda e: e.type == "typing" and not typing.append(e))
    try:
        await visitor.send("typing", {"on": True})
        for _ in range(20):
            await visitor.send("read", {})
            await visitor.send("typing", {"on": False})
        await visitor.send("ping", {})
        await visitor.frame("pong")
    finally:
        subscription.close()
    receipts = await InboundEvent.filter(inbox_id=site.id, dedupe_key__startswith="rcpt:").count()
    assert receipts == 1
    assert [e.data["on"] for e in typing] == [True, False]
    await visitor.close()


async def test_reply_before_the_visitors_own_message_is_published_still_arrives(
    client: TestClient, site: Inbox
) -> None:
    """An agent polling the API (or a bot) can answer a new conversation before the pipeline has published the
    visitor's first message; the answer must still reach the widget."""
    agent = await quick_user("agent", inboxes=[site])
    gate = asyncio.Event()

    async def hold(messages: list) -> None:  # the pipeline's first step waits until the agent has answered
        await gate.wait()

    client.app[PIPELINE].enrichers.insert(0, hold)
    visitor = await visit(client, site)
    await visitor.say("có ai không shop")
    conv = await conversation_of(visitor, site)  # committed, not yet published
    reply = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ có ạ"}, headers=agent.headers)
    assert reply.status == 201
    gate.set()
    assert (await visitor.frame("message.created", direction="out"))["data"]["text"] == "Dạ có ạ"
    assert (await visitor.frame("message.created", direction="in"))["data"]["text"] == "có ai không shop"
    await visitor.close()
