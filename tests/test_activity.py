"""A conversation's activity (`GET /api/conversations/{id}/activity`): who took it, who assigned it, who closed it,
when it was reopened; messages and internal facts left out; the conversation's own access rules; erasure."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from tortoise.transactions import in_transaction

from agents.models import Team, User
from channels.fakes import messenger_text
from contacts.models import Contact
from inbox.models import Conversation, ConversationEvent, Inbox, Message
from inbox.processing import record
from tests.conftest import APP_SECRET, PAGE_ID, Staff, eventually, make_inbox, now_ms, post_webhook, quick_user

PAGE_B, SECRET_B = "2222", "app_secret_of_page_b"


async def incoming(
    client: TestClient, psid: str, mid: str, text: str, *, page: str = PAGE_ID, secret: str = APP_SECRET
):
    response = await post_webhook(client, messenger_text(page, psid, mid, text, now_ms()), secret=secret)
    assert response.status == 200, await response.text()
    msg = await eventually(lambda: Message.get_or_none(external_id=mid))
    return await Conversation.get(id=msg.conversation_id)


async def activity(client: TestClient, staff: Staff | None, conv_id: int, **params: Any) -> tuple[int, Any]:
    headers = staff.headers if staff else {}
    response = await client.get(f"/api/conversations/{conv_id}/activity", params=params, headers=headers)
    return response.status, await response.json()


async def post_ok(client: TestClient, staff: Staff, conv: Conversation, action: str, body: dict) -> None:
    response = await client.post(f"/api/conversations/{conv.id}/{action}", json=body, headers=staff.headers)
    assert response.status in (200, 201), await response.text()


async def lived(client: TestClient, inbox: Inbox) -> tuple[Conversation, Staff, Staff, Staff, Team]:
    """A conversation an agent took, answered, noted, resolved; the customer wrote again; a supervisor moved it to a
    colleague in a team. Plus facts of the platform and of routing that are not people's doing."""
    conv = await incoming(client, "PSID-1", "m.1", "Áo khoác này còn size L không shop?")
    khoa = await quick_user("agent", inboxes=[inbox])
    lan = await quick_user("agent", inboxes=[inbox])
    boss = await quick_user("supervisor")
    await User.filter(id=khoa.user.id).update(name="Lê Minh Khoa")
    await User.filter(id=lan.user.id).update(name="Phạm Ngọc Lan")
    await User.filter(id=boss.user.id).update(name="Trần Thu Hương")
    team = await Team.create(name="CSKH miền Nam")
    await post_ok(client, khoa, conv, "assign", {"agent_id": khoa.user.id})
    await post_ok(client, khoa, conv, "messages", {"text": "Dạ còn ạ"})
    await post_ok(client, khoa, conv, "messages", {"text": "khách quen", "private": True})
    await post_ok(client, khoa, conv, "status", {"status": "resolved"})
    await incoming(client, "PSID-1", "m.2", "Shop ơi cho mình đặt 1 cái nhé")
    await post_ok(client, boss, conv, "assign", {"agent_id": lan.user.id, "team_id": team.id})
    conv = await Conversation.get(id=conv.id)
    async with in_transaction() as conn:
        await record(conn, conv, "queued", "system", None, conv.last_activity_at, priority=2, reasons=["vip"])
        await record(
            conn, conv, "thread_control", "system", None, conv.last_activity_at, action="passed",
            new_owner_app_id="263902037430900", previous_owner_app_id=None, metadata="gọi 0987654321",
        )  # fmt: skip
        referral = {"type": "OPEN_THREAD", "source": "ADS", "ref": "sdt-0987654321", "ads_context_data": {"t": "x"}}
        await record(conn, conv, "referral", "contact", conv.contact_id, conv.last_activity_at, referral=referral)
    return conv, khoa, lan, boss, team


async def test_activity_is_who_did_what_without_the_messages(client: TestClient, inbox: Inbox) -> None:
    conv, khoa, lan, boss, team = await lived(client, inbox)
    status, body = await activity(client, khoa, conv.id)
    assert status == 200, body
    items = body["items"]
    assert [(i["kind"], i["actor_type"], i["actor_name"]) for i in items] == [
        ("opened", "contact", None),
        ("assigned", "agent", "Lê Minh Khoa"),
        ("status_changed", "agent", "Lê Minh Khoa"),
        ("reopened", "contact", None),
        ("assigned", "agent", "Trần Thu Hương"),
        ("thread_control", "system", None),
        ("referral", "contact", None),
    ]
    assert body["next_before"] is None
    took, resolved, reopened, moved = items[1]["data"], items[2]["data"], items[3]["data"], items[4]["data"]
    assert (took["agent_id"], took["agent_name"], took["reason"]) == (khoa.user.id, "Lê Minh Khoa", "manual")
    assert (resolved["previous"], resolved["status"]) == ("open", "resolved")
    assert reopened == {"previous": "resolved"}
    assert (moved["agent_name"], moved["team_id"], moved["team_name"]) == ("Phạm Ngọc Lan", team.id, "CSKH miền Nam")
    assert moved["previous"] == {"agent_id": khoa.user.id, "team_id": None}
    assert items[1]["actor_id"] == khoa.user.id and items[4]["actor_id"] == boss.user.id
    # Another app's handover note and an ad's link parameter are theirs, not the thread's.
    assert items[5]["data"] == {
        "action": "passed",
        "new_owner_app_id": "263902037430900",
        "previous_owner_app_id": None,
    }
    assert items[6]["data"] == {"referral": {"type": "OPEN_THREAD", "source": "ADS"}}
    assert "0987654321" not in str(body)
    times = [i["at"] for i in items]
    assert times == sorted(times) and all(t.endswith("Z") for t in times)
    # The message events exist, and stay out.
    kinds = set(await ConversationEvent.filter(conversation_id=conv.id).values_list("kind", flat=True))
    assert {"message_in", "message_out", "note", "queued"} <= kinds

    # A supervisor reads the same activity; the colleague it was given to as well.
    assert await activity(client, boss, conv.id) == (200, body)
    assert await activity(client, lan, conv.id) == (200, body)


async def test_activity_pages_back_like_the_messages(client: TestClient, inbox: Inbox) -> None:
    conv, khoa, *_ = await lived(client, inbox)
    _, everything = await activity(client, khoa, conv.id)
    pages, before = [], None
    while True:
        status, body = await activity(client, khoa, conv.id, limit=3, **({"before": before} if before else {}))
        assert status == 200
        pages.append([i["id"] for i in body["items"]])
        before = body["next_before"]
        if before is None:
            break
        assert before == min(pages[-1])
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sorted(i for p in pages for i in p) == sorted(i["id"] for i in everything["items"])
    for bad in ({"limit": "0"}, {"limit": "201"}, {"before": "x"}):
        assert (await activity(client, khoa, conv.id, **bad))[0] == 400, bad


async def test_activity_is_read_by_whoever_reads_the_conversation(client: TestClient, inbox: Inbox) -> None:
    other_inbox = await make_inbox(page_id=PAGE_B, app_secret=SECRET_B, name="Shop Mỹ Phẩm")
    conv = await incoming(client, "PSID-2", "m.3", "Son này còn màu đỏ không?")
    member = await quick_user("agent", inboxes=[inbox])
    outsider = await quick_user("agent", inboxes=[other_inbox])
    await post_ok(client, member, conv, "assign", {"agent_id": member.user.id})

    status, body = await activity(client, None, conv.id)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    hidden = await activity(client, outsider, conv.id)
    missing = await activity(client, outsider, 999_999)
    assert hidden[0] == 404 and hidden == missing  # the same answer as for a conversation that does not exist
    status, body = await activity(client, member, conv.id)
    assert status == 200 and [i["kind"] for i in body["items"]] == ["opened", "assigned"]


async def test_activity_after_the_customer_is_erased(client: TestClient, inbox: Inbox) -> None:
    conv, khoa, *_ = await lived(client, inbox)
    admin = await quick_user("admin")
    response = await client.delete(f"/api/contacts/{conv.contact_id}", headers=admin.headers)
    assert response.status == 200, await response.text()
    assert (await Contact.get(id=conv.contact_id)).erased_at is not None

    status, body = await activity(client, khoa, conv.id)
    assert status == 200, body
    by_kind = {i["kind"]: i["data"] for i in body["items"]}
    assert by_kind["referral"] == {}
    assert by_kind["thread_control"] == {}  # its strings were stripped: the line still shows, without the app
    assert by_kind["status_changed"]["status"] == "resolved"
    assert "0987654321" not in str(body)
