"""Single customer view: merge and exact undo, duplicate suggestions, masking per permission, erasure."""

from __future__ import annotations

import pytest

from agents.models import AuditEntry
from contacts.duplicates import find_duplicates
from contacts.merge import merge_contacts, undo_merge
from contacts.models import Contact, ContactIdentity, Order
from contacts.normalize import InvalidValue, normalize_phone
from contacts.profile import reindex
from inbox.api import contacts as contacts_api
from inbox.keys import PIPELINE, PROFILES
from inbox.models import Conversation, ConversationEvent, Message
from tests.conftest import eventually, quick_user, send_text, while_the_body_is_read


async def state(*ids: int) -> dict:
    contacts = {c["id"]: c for c in await Contact.filter(id__in=ids).values()}
    return {
        "contacts": contacts,
        "identities": sorted(await ContactIdentity.all().values_list("id", "contact_id")),
        "conversations": sorted(await Conversation.all().values_list("id", "contact_id")),
        "orders": sorted(await Order.all().values_list("id", "contact_id")),
    }


async def conversation_of(client, psid: str, mid: str, text: str) -> Conversation:
    """The customer's conversation once the background profile fetch has filled their name and picture (so nothing
    changes the profile behind the test's back)."""
    await send_text(client, psid, mid, text)
    msg = await eventually(lambda: Message.get_or_none(external_id=mid))
    conv = await Conversation.get(id=msg.conversation_id)

    async def named() -> bool:
        return bool(await Contact.filter(id=conv.contact_id).exclude(picture_url=None).exists())

    await eventually(named)
    await client.app[PROFILES].idle()
    return conv


async def test_merge_then_undo_restores_exactly(client, inbox) -> None:
    conv_a = await conversation_of(client, "PSID-1", "m1", "Chào shop")
    conv_b = await conversation_of(client, "PSID-2", "m2", "Cho hỏi giá")
    a, b = conv_a.contact_id, conv_b.contact_id
    await Contact.filter(id=a).update(name="Nguyễn Thị Lan", phone="+84901234567", tags=["vip"])
    await Contact.filter(id=b).update(name="Lan Nguyen", email="lan@gmail.com", city="Hà Nội", tags=["sỉ"])
    from datetime import UTC, datetime

    await Order.create(contact_id=b, total=350_000, status="completed", ordered_at=datetime.now(UTC))
    before = await state(a, b)

    merge = await merge_contacts(a, b, actor_id=None)
    merged = await state(a, b)
    assert merged["contacts"][b]["merged_into_id"] == a
    assert {cid for _, cid in merged["identities"]} == {a}
    assert {cid for _, cid in merged["conversations"]} == {a}
    assert {cid for _, cid in merged["orders"]} == {a}
    survivor = merged["contacts"][a]
    assert survivor["email"] == "lan@gmail.com" and survivor["city"] == "Hà Nội"
    assert survivor["tags"] == ["vip", "sỉ"] and survivor["phone"] == "+84901234567"

    await undo_merge(merge.id, actor_id=None)
    assert await state(a, b) == before


async def test_same_phone_written_two_ways_is_suggested(client) -> None:
    one = await Contact.create(name="Trần Văn Bình", phone="0901 234 567")
    two = await Contact.create(name="Tran Van Binh", phone="+84901234567")
    await Contact.create(name="Someone Else", phone="0912345678")
    found = await find_duplicates(min_score=0.5)
    pairs = {(s.a, s.b): s for s in found}
    assert (one.id, two.id) in pairs
    assert "phone" in pairs[(one.id, two.id)].reasons and "name" in pairs[(one.id, two.id)].reasons
    assert pairs[(one.id, two.id)].score == 1.0
    assert len(pairs) == 1


async def test_old_eleven_digit_numbers_are_the_new_ten_digit_ones(client) -> None:
    """Since 2018 0168 xxx xxxx is 038 xxx xxxx (Viettel), 0123… is 083… (VinaPhone) and so on; customer lists and
    customers still write the old form. It is the same number, not an invalid one."""
    assert normalize_phone("0168 234 5678") == "+84382345678"
    assert normalize_phone("+84 1682345678") == "+84382345678"
    assert normalize_phone("841232345678") == "+84832345678"
    assert normalize_phone("01202345678") == "+84702345678"
    assert normalize_phone("0199 234 5678") == "+84592345678"
    with pytest.raises(InvalidValue):
        normalize_phone("01002345678")  # never a mobile prefix
    old = await Contact.create(name="Lê Văn Tám", phone="01682345678")
    new = await Contact.create(name="Le Van Tam", phone="+84382345678")
    assert {(s.a, s.b) for s in await find_duplicates(min_score=0.5)} == {(old.id, new.id)}


async def settled_message(client, psid: str, mid: str, text: str) -> Message:
    """The message once the whole post-commit pipeline (NLP enricher included) is done with it."""
    await send_text(client, psid, mid, text)
    msg = await eventually(lambda: Message.get_or_none(external_id=mid))
    await eventually(lambda: _handled(client, msg.id))
    return msg


async def _handled(client, msg_id: int) -> bool:
    return client.app[PIPELINE].handled_up_to >= msg_id


async def test_merge_and_undo_through_the_api_are_audited(client, inbox) -> None:
    conv_a = await conversation_of(client, "PSID-1", "m1", "Chào shop")
    conv_b = await conversation_of(client, "PSID-2", "m2", "Cho hỏi giá")
    a, b = conv_a.contact_id, conv_b.contact_id
    agent = await quick_user("agent", inboxes=[inbox])
    supervisor = await quick_user("supervisor")
    refused = await client.post(f"/api/contacts/{a}/merge", json={"other_id": b}, headers=agent.headers)
    assert refused.status == 403
    response = await client.post(f"/api/contacts/{a}/merge", json={"other_id": b}, headers=supervisor.headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["merge"]["moved"]["conversations"] == 1
    assert {c["id"] for c in body["contact"]["conversations"]} == {conv_a.id, conv_b.id}
    assert len(body["contact"]["identities"]) == 2
    # The merged profile no longer appears in the contact list; its conversation is now the survivor's.
    listed = await client.get("/api/contacts", headers=supervisor.headers)
    assert [c["id"] for c in (await listed.json())["items"]] == [a]
    again = await client.post(f"/api/contacts/{a}/merge", json={"other_id": b}, headers=supervisor.headers)
    assert again.status == 409
    undo = await client.post(f"/api/contact-merges/{body['merge']['id']}/undo", headers=supervisor.headers)
    assert undo.status == 200, await undo.text()
    assert (await Conversation.get(id=conv_b.id)).contact_id == b
    twice = await client.post(f"/api/contact-merges/{body['merge']['id']}/undo", headers=supervisor.headers)
    assert twice.status == 409
    actions = await AuditEntry.filter(actor_id=supervisor.user.id).order_by("id").values_list("action", "target_id")
    assert [x for x in actions if x[0] != "contact.pii_viewed"] == [
        ("contact.merged", str(a)),
        ("contact.merge_undone", str(a)),
    ]


async def test_a_new_thread_after_a_merge_joins_the_survivor(client, inbox) -> None:
    conv_a = await conversation_of(client, "PSID-1", "m1", "Chào shop")
    conv_b = await conversation_of(client, "PSID-2", "m2", "Cho hỏi giá")
    await merge_contacts(conv_a.contact_id, conv_b.contact_id, actor_id=None)
    await Conversation.filter(id=conv_b.id).update(status="resolved")
    later = await conversation_of(client, "PSID-2", "m3", "Em hỏi thêm")
    assert later.contact_id == conv_a.contact_id


async def test_entities_in_chats_become_suggestions_an_agent_accepts(client, inbox) -> None:
    msg = await settled_message(client, "PSID-S", "ms1", "Số em là 0901 234 567, gửi về 12 Lê Lợi, Quận 1 nhé")
    await Message.filter(id=msg.id).update(
        entities=[
            {"type": "phone", "value": "0901 234 567", "normalized": "+84901234567", "start": 10, "end": 22},
            {
                "type": "address",
                "value": "12 Lê Lợi, Quận 1",
                "normalized": "12 Lê Lợi, Quận 1",
                "start": 32,
                "end": 49,
            },
            {"type": "size", "value": "M", "normalized": "M", "start": 0, "end": 1},
        ]
    )
    agent = await quick_user("agent", inboxes=[inbox])
    contact_id = (await Conversation.get(id=msg.conversation_id)).contact_id
    profile = await (await client.get(f"/api/contacts/{contact_id}", headers=agent.headers)).json()
    kinds = {s["kind"]: s for s in profile["suggestions"]}
    assert set(kinds) == {"phone", "address"}
    assert kinds["phone"]["message_id"] == msg.id and kinds["phone"]["conversation_id"] == msg.conversation_id
    assert kinds["phone"]["normalized"] == "+84*******67"  # masked for an agent without the permission
    accepted = await client.post(
        f"/api/contacts/{contact_id}/suggestions/{kinds['phone']['id']}", json={"accept": True}, headers=agent.headers
    )
    assert accepted.status == 200, await accepted.text()
    assert (await Contact.get(id=contact_id)).phone == "+84901234567"
    profile = await (await client.get(f"/api/contacts/{contact_id}", headers=agent.headers)).json()
    assert [s["kind"] for s in profile["suggestions"]] == ["address"]  # decided ones are not offered again


async def test_an_accept_and_a_reject_at_once_leave_one_decision(client, inbox, monkeypatch) -> None:
    msg = await settled_message(client, "PSID-D", "md1", "Số em là 0901 234 567 nhé")
    await Message.filter(id=msg.id).update(
        entities=[{"type": "phone", "value": "0901 234 567", "normalized": "+84901234567", "start": 9, "end": 21}]
    )
    first, second = await quick_user("agent", inboxes=[inbox]), await quick_user("agent", inboxes=[inbox])
    contact_id = (await Conversation.get(id=msg.conversation_id)).contact_id
    profile = await (await client.get(f"/api/contacts/{contact_id}", headers=first.headers)).json()
    [phone] = profile["suggestions"]
    url = f"/api/contacts/{contact_id}/suggestions/{phone['id']}"

    async def the_other_agent_rejects() -> None:
        other = await client.post(url, json={"accept": False}, headers=second.headers)
        assert other.status == 200

    while_the_body_is_read(monkeypatch, contacts_api, the_other_agent_rejects)
    late = await client.post(url, json={"accept": True}, headers=first.headers)
    assert (late.status, (await late.json())["error"]["message"]) == (409, "this suggestion was already rejected")
    assert (await Contact.get(id=contact_id)).phone is None


async def test_patch_cleans_values_and_reports_invalid_ones(client, inbox) -> None:
    conv = await conversation_of(client, "PSID-P", "mp", "Alo")
    agent = await quick_user("agent", inboxes=[inbox])
    url = f"/api/contacts/{conv.contact_id}"
    bad = await client.patch(url, json={"phone": "12345", "email": "x@", "gender": "robot"}, headers=agent.headers)
    assert bad.status == 422
    message = (await bad.json())["error"]["message"]
    assert "phone" in message and "email" in message and "gender" in message
    assert (await Contact.get(id=conv.contact_id)).phone is None  # all or nothing
    good = await client.patch(
        url,
        json={
            "name": "  trần   THỊ  hoa ",
            "phone": "0912 345 678",
            "emails": ["Hoa@Shop.VN"],
            "birthday": "02/09/1995",
            "tags": ["vip", "vip", "sỉ"],
            "city": "hà nội",
        },
        headers=agent.headers,
    )
    assert good.status == 200, await good.text()
    contact = await Contact.get(id=conv.contact_id)
    assert (contact.name, contact.phone, contact.emails, contact.tags, contact.city) == (
        "Trần Thị Hoa",
        "+84912345678",
        ["hoa@shop.vn"],
        ["vip", "sỉ"],
        "Hà Nội",
    )
    assert contact.birthday.isoformat() == "1995-09-02"
    found = await client.get("/api/contacts", params={"q": "0912345678"}, headers=agent.headers)
    assert [c["id"] for c in (await found.json())["items"]] == [conv.contact_id]
    found = await client.get("/api/contacts", params={"q": "tran thi hoa"}, headers=agent.headers)
    assert [c["id"] for c in (await found.json())["items"]] == [conv.contact_id]
    outsider = await quick_user("agent")
    assert (await client.get(url, headers=outsider.headers)).status == 404
    assert (await (await client.get("/api/contacts", headers=outsider.headers)).json())["items"] == []


async def test_do_not_store_keeps_no_new_message_text(client, inbox) -> None:
    conv = await conversation_of(client, "PSID-D", "md1", "Tin đầu tiên")
    agent = await quick_user("agent", inboxes=[inbox])
    response = await client.post(
        f"/api/contacts/{conv.contact_id}/consents",
        json={"kind": "storage", "granted": False, "channel": "facebook", "method": "message"},
        headers=agent.headers,
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["do_not_store"] is True and body["consents"]["storage"]["granted"] is False
    await send_text(client, "PSID-D", "md2", "Số em 0987654321 địa chỉ bí mật")
    msg = await eventually(lambda: Message.get_or_none(external_id="md2"))
    assert msg.text is None and msg.search_text == "" and msg.conversation_id == conv.id
    assert "bí mật" not in (await Conversation.get(id=conv.id)).last_message_preview


async def test_profile_source_is_the_first_channel_and_the_ad_referral(client, inbox) -> None:
    conv = await conversation_of(client, "PSID-R", "mr1", "Em thấy quảng cáo")
    await ConversationEvent.create(
        conversation_id=conv.id,
        inbox_id=inbox.id,
        kind="referral",
        actor_type="contact",
        occurred_at=conv.created_at,
        data={
            "referral": {
                "source": "ADS",
                "type": "OPEN_THREAD",
                "ad_id": "6045",
                "ref": "tet?utm_source=fb&utm_campaign=tet",
            }
        },
    )
    admin = await quick_user("admin")
    profile = await (await client.get(f"/api/contacts/{conv.contact_id}", headers=admin.headers)).json()
    assert profile["source"]["channel"] == "facebook" and profile["source"]["inbox_id"] == inbox.id
    assert profile["source"]["referral"]["ad_id"] == "6045"
    assert profile["source"]["utm"] == {"utm_source": "fb", "utm_campaign": "tet"}


async def test_a_profile_saved_from_an_earlier_copy_keeps_the_search_index_whole(client, inbox) -> None:
    """The contact search index gives back the text a contact was indexed with to remove it: a copy of the contact
    read before another save must not be trusted for that text (a wrong one leaves old words matching, or corrupts
    SQLite's index). Whatever the copy, the index follows the contact as stored."""
    conv = await conversation_of(client, "PSID-F", "mf", "Alo")
    agent = await quick_user("agent", inboxes=[inbox])
    earlier = await Contact.get(id=conv.contact_id)
    assert earlier.name and "hoa" not in earlier.search_text
    url = f"/api/contacts/{conv.contact_id}"
    assert (await client.patch(url, json={"name": "Nguyễn Thị Hoa"}, headers=agent.headers)).status == 200
    earlier.phone = "+84912345678"  # another path saves its field from its copy, read before the rename
    await earlier.save(update_fields=["phone"])
    await reindex(earlier)

    async def found(q: str) -> list[int]:
        response = await client.get("/api/contacts", params={"q": q}, headers=agent.headers)
        assert response.status == 200
        return [c["id"] for c in (await response.json())["items"]]

    assert await found("0912345678") == [conv.contact_id]
    assert await found("Hoa") == [conv.contact_id]
    assert await found(earlier.name) == []  # the name before the rename no longer matches


async def test_two_agents_editing_different_attributes_at_once_keep_both(client, inbox, monkeypatch) -> None:
    conv = await conversation_of(client, "PSID-A", "ma", "Alo")
    first, second = await quick_user("agent", inboxes=[inbox]), await quick_user("agent", inboxes=[inbox])
    url = f"/api/contacts/{conv.contact_id}"

    async def the_other_agent_saves() -> None:
        other = await client.patch(url, json={"attributes": {"size": "M"}, "city": "Huế"}, headers=second.headers)
        assert other.status == 200

    while_the_body_is_read(monkeypatch, contacts_api, the_other_agent_saves)
    saved = await client.patch(url, json={"attributes": {"kenh": "tiktok"}}, headers=first.headers)
    assert saved.status == 200, await saved.text()
    stored = await Contact.get(id=conv.contact_id)
    assert stored.attributes == {"size": "M", "kenh": "tiktok"} and stored.city == "Huế"
    removed = await client.patch(url, json={"attributes": {"size": None}}, headers=first.headers)
    assert removed.status == 200
    assert (await Contact.get(id=conv.contact_id)).attributes == {"kenh": "tiktok"}


async def test_a_profile_shows_an_agent_no_words_from_another_shops_conversation(client, inbox) -> None:
    """A customer who wrote to two inboxes: an agent of the first reads the profile, but the complaint written to
    the second (its text, the address taken from it) stays with that inbox's readers."""
    from datetime import UTC, datetime

    from tests.conftest import make_inbox

    conv = await conversation_of(client, "PSID-Y", "my", "Alo")
    other_inbox = await make_inbox(page_id="PAGE-OTHER", name="Shop khác")
    identity = await ContactIdentity.create(
        contact_id=conv.contact_id, inbox_id=other_inbox.id, channel="facebook", external_id="PSID-OTHER"
    )
    hidden = await Conversation.create(
        inbox_id=other_inbox.id, contact_id=conv.contact_id, identity_id=identity.id, channel="facebook",
        last_activity_at=datetime.now(UTC),
    )  # fmt: skip
    await Message.create(
        conversation_id=hidden.id, inbox_id=other_inbox.id, direction="in", sender_type="contact",
        text="Hàng lỗi, giao về 99 Ngõ Bí Mật cho em", created_at=datetime.now(UTC),
        sentiment="negative", sentiment_score=-0.9, intent="complaint",
        entities=[{"type": "address", "value": "99 Ngõ Bí Mật", "normalized": "99 Ngõ Bí Mật", "start": 0, "end": 1}],
    )  # fmt: skip
    agent = await quick_user("agent", inboxes=[inbox])
    url = f"/api/contacts/{conv.contact_id}"
    response = await client.get(url, headers=agent.headers)
    assert response.status == 200
    profile = await response.json()
    assert hidden.id not in {c["id"] for c in profile["conversations"]}
    assert "Bí Mật" not in await response.text()
    assert profile["attitude"]["last_complaint"] is None and profile["suggestions"] == []
    # The other inbox's readers (and supervisors) see both.
    reader = await quick_user("agent", inboxes=[other_inbox])
    seen = await (await client.get(url, headers=reader.headers)).json()
    assert seen["attitude"]["last_complaint"]["text"].startswith("Hàng lỗi")
    [offered] = [s for s in seen["suggestions"] if s["kind"] == "address"]
    accept = await client.post(f"{url}/suggestions/{offered['id']}", json={"accept": True}, headers=agent.headers)
    assert accept.status == 404  # not the first inbox's agent's to accept


async def test_an_edit_landing_after_the_erasure_does_not_write_the_data_back(client, inbox, monkeypatch) -> None:
    conv = await conversation_of(client, "PSID-E", "me", "Alo")
    agent, admin = await quick_user("agent", inboxes=[inbox]), await quick_user("admin")
    url = f"/api/contacts/{conv.contact_id}"

    async def the_admin_erases() -> None:
        response = await client.delete(url, headers=admin.headers)
        assert response.status == 200, await response.text()

    while_the_body_is_read(monkeypatch, contacts_api, the_admin_erases)
    late = await client.patch(url, json={"name": "Trần Thị Hoa", "phone": "0912 345 678"}, headers=agent.headers)
    assert (late.status, (await late.json())["error"]["code"]) == (409, "not_editable")
    stored = await Contact.get(id=conv.contact_id)
    assert stored.erased_at is not None and (stored.name, stored.phone) == ("", None)


async def test_dismissing_a_duplicate_pair_needs_two_real_ids(client, inbox) -> None:
    supervisor = await quick_user("supervisor")
    a, b = await Contact.create(name="Lan"), await Contact.create(name="Lan")
    for ids in ([True, b.id], [a.id, 2**70], [a.id, "2"]):
        refused = await client.post("/api/contacts/duplicates/dismiss", json={"contact_ids": ids},
                                    headers=supervisor.headers)  # fmt: skip
        assert refused.status == 400, ids
    ok = await client.post("/api/contacts/duplicates/dismiss", json={"contact_ids": [a.id, b.id]},
                           headers=supervisor.headers)  # fmt: skip
    assert ok.status == 200
