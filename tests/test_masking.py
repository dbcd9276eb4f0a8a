"""Masking: staff without `view_contact_pii` see masked phones and e-mails on every endpoint and WS frame."""

from __future__ import annotations

from contacts.models import Contact
from inbox.bus import Event
from inbox.models import Conversation
from tests.conftest import eventually, quick_user, send_text
from tests.test_contacts import conversation_of


async def test_masking_per_permission_on_http_and_ws(client, inbox) -> None:
    conv = await conversation_of(client, "PSID-9", "m9", "Tư vấn giúp em")
    await Contact.filter(id=conv.contact_id).update(phone="+84901234567", email="lan@gmail.com")
    plain = await quick_user("agent", inboxes=[inbox])
    allowed = await quick_user("agent", inboxes=[inbox])
    allowed.user.permissions = ["view_contact_pii"]
    await allowed.user.save()
    supervisor = await quick_user("supervisor")
    admin = await quick_user("admin")
    urls = ["/api/conversations", f"/api/conversations/{conv.id}", f"/api/contacts/{conv.contact_id}", "/api/contacts"]
    for url in urls:
        for who, sees in ((plain, False), (supervisor, False), (allowed, True), (admin, True)):
            response = await client.get(url, headers=who.headers)
            assert response.status == 200, (url, await response.text())
            text = await response.text()
            assert ("+84901234567" in text) is sees, (url, who.user.role)
            assert ("lan@gmail.com" in text) is sees, (url, who.user.role)
            if not sees:
                assert "+84*******67" in text and "l***@gmail.com" in text
    from agents.models import AuditEntry

    assert await AuditEntry.filter(action="contact.pii_viewed", actor_id=allowed.user.id).count() == len(urls)
    # WebSocket frames: one masked and one unmasked variant per event.
    event = Event(
        "conversation.updated", {"id": conv.id, "contact": {"id": 1, "phone": "+84901234567", "email": "lan@gmail.com"}}
    )
    event.seq = 7
    assert b"+84901234567" in event.ws_frame_for(True)
    masked = event.ws_frame_for(False)
    assert b"+84901234567" not in masked and b"lan@gmail.com" not in masked and b"+84*******67" in masked
    assert event.ws_frame_for(False) is masked  # encoded once
    quiet = Event("typing", {"conversation_id": 1})
    assert quiet.ws_frame_for(False) is quiet.ws_frame_for(True)


async def test_ws_frames_are_masked_for_an_agent_without_permission(client, inbox) -> None:
    plain = await quick_user("agent", inboxes=[inbox])
    ws = await client.ws_connect(f"/ws?token={plain.token}")
    await send_text(client, "PSID-W", "mw", "Số em 0901234567")
    conv = await eventually(lambda: Conversation.get_or_none(channel="facebook"))
    await Contact.filter(id=conv.contact_id).update(phone="+84901234567")
    admin = await quick_user("admin")
    response = await client.patch(
        f"/api/contacts/{conv.contact_id}", json={"name": "lan  nguyễn"}, headers=admin.headers
    )
    assert response.status == 200
    assert (await response.json())["name"] == "Lan Nguyễn"
    seen = []
    while True:
        frame = await ws.receive_json(timeout=5)
        seen.append(frame)
        if frame["type"] == "contact.updated" and frame["data"]["name"] == "Lan Nguyễn":
            break
    assert frame["data"]["phone"] == "+84*******67"
    await ws.close()
