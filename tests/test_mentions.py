"""@mentions in private notes: who may be named, what is stored, who is told (only them), their list and read marks,
and that mentions go with the conversation, its note and the customer's erased data."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from agents.models import InboxMember, Team, TeamMember
from agents.sessions import create_session
from inbox.bus import Event
from inbox.keys import BUS
from inbox.models import Conversation, Inbox, Mention, Message
from tests.conftest import Staff, make_inbox, quick_user
from tests.test_realtime import PAGE_B, SECRET_B, connected, incoming, marker


async def note(client: TestClient, author: Staff, conv_id: int, text: str, mention_ids: Any, **extra: Any) -> Any:
    body = {"text": text, "private": True, "mention_ids": mention_ids, **extra}
    return await client.post(f"/api/conversations/{conv_id}/messages", json=body, headers=author.headers)


async def mentions_of(client: TestClient, who: Staff, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/mentions", params=params, headers=who.headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_note_mentioning_a_colleague_reaches_only_that_colleague(client: TestClient, inbox: Inbox) -> None:
    conv = await incoming(client, "P1", "m.1", "Chị muốn đổi áo size L được không?")
    author = await quick_user("agent", inboxes=[inbox])
    colleague = await quick_user("agent", inboxes=[inbox])
    bystander = await quick_user("agent", inboxes=[inbox])
    supervisor = await quick_user("supervisor")
    sockets = {who: await connected(client, s) for who, s in (("author", author), ("colleague", colleague))}
    sockets |= {who: await connected(client, s) for who, s in (("bystander", bystander), ("supervisor", supervisor))}

    text = f"@{colleague.user.name} chị xem giúp em đơn đổi size này với ạ"
    ids = [colleague.user.id, colleague.user.id, author.user.id]  # a duplicate, and the author herself
    response = await note(client, author, conv.id, text, ids)

    assert response.status == 201, await response.text()
    msg = await response.json()
    assert msg["private"] is True and msg["text"] == text
    stored = await Mention.all().values("user_id", "message_id", "conversation_id", "read_at")
    assert stored == [
        {"user_id": colleague.user.id, "message_id": msg["id"], "conversation_id": conv.id, "read_at": None}
    ]
    frame = await sockets["colleague"].until(lambda f: f["type"] == "mention.created")
    assert frame["data"]["conversation_id"] == conv.id and frame["data"]["message_id"] == msg["id"]
    assert frame["data"]["by"] == {"id": author.user.id, "name": author.user.name}
    assert frame["data"]["excerpt"] == text
    assert frame["data"]["id"] == (await Mention.get(user_id=colleague.user.id)).id
    await marker(client, *sockets.values())
    for who in ("author", "bystander", "supervisor"):
        assert sockets[who].events("mention.created") == [], who
        assert sockets[who].events("message.created"), who  # the note itself still reaches every reader
    assert len(sockets["colleague"].events("mention.created")) == 1
    for socket in sockets.values():
        await socket.close()


async def test_team_readers_and_supervisors_may_be_mentioned(client: TestClient, inbox: Inbox) -> None:
    conv = await incoming(client, "P1", "m.1", "Shop ơi")
    team = await Team.create(name="CSKH")
    await Conversation.filter(id=conv.id).update(team_id=team.id)
    author = await quick_user("agent", inboxes=[inbox])
    teammate = await quick_user("agent")
    await TeamMember.create(user=teammate.user, team=team)
    supervisor = await quick_user("supervisor")
    admin = await quick_user("admin")

    ids = [teammate.user.id, supervisor.user.id, admin.user.id]
    response = await note(client, author, conv.id, "Nhờ mọi người xem giúp", ids)

    assert response.status == 201, await response.text()
    assert sorted(await Mention.all().values_list("user_id", flat=True)) == sorted(ids)
    listed = await client.get(f"/api/conversations/{conv.id}/mentionable", headers=author.headers)
    assert listed.status == 200
    names = {item["id"]: item for item in (await listed.json())["items"]}
    assert set(names) == {author.user.id, teammate.user.id, supervisor.user.id, admin.user.id}
    assert names[teammate.user.id] == {"id": teammate.user.id, "name": teammate.user.name, "role": "agent"}


def _note_or_mention(event: Event) -> bool:
    return event.type == "mention.created" or (event.type == "message.created" and event.data.get("private") is True)


async def test_a_mention_of_someone_who_may_not_read_it_is_refused_and_stores_nothing(
    client: TestClient, inbox: Inbox
) -> None:
    inbox_b = await make_inbox(page_id=PAGE_B, app_secret=SECRET_B, name="Shop Mỹ Phẩm")
    conv = await incoming(client, "P1", "m.1", "Shop ơi")
    author = await quick_user("agent", inboxes=[inbox])
    colleague = await quick_user("agent", inboxes=[inbox])
    outsider = await quick_user("agent", inboxes=[inbox_b])
    gone = await quick_user("agent", inboxes=[inbox])
    gone.user.is_active = False
    await gone.user.save(update_fields=["is_active"])
    messages = await Message.filter(conversation_id=conv.id).count()
    # What a refused note would publish (the customer's own message may still be published or analysed meanwhile).
    published = client.app[BUS].subscribe(None, _note_or_mention)

    for ids in ([colleague.user.id, outsider.user.id], [gone.user.id], [999_999], ["x"], [True], [0], [[1]], [{}]):
        response = await note(client, author, conv.id, "Nhờ xem giúp", ids)
        assert response.status == 422, (ids, await response.text())
        assert (await response.json())["error"]["code"] == "invalid_mention", ids
    too_many = await note(client, author, conv.id, "Nhờ cả nhà", list(range(1, 22)))
    assert (await too_many.json())["error"]["code"] == "too_many_mentions"
    not_a_list = await note(client, author, conv.id, "Nhờ xem giúp", colleague.user.id)
    assert not_a_list.status == 400
    listed = await client.get(f"/api/conversations/{conv.id}/mentionable", headers=author.headers)
    assert outsider.user.id not in {i["id"] for i in (await listed.json())["items"]}
    assert gone.user.id not in {i["id"] for i in (await listed.json())["items"]}

    assert await Message.filter(conversation_id=conv.id).count() == messages
    assert await Mention.all().count() == 0
    assert [(e.type, e.data.get("id")) for e in published.take()] == [], "a refused note published something"
    published.close()


async def test_only_a_private_note_mentions(client: TestClient, inbox: Inbox, fake_graph) -> None:
    conv = await incoming(client, "P1", "m.1", "Shop ơi")
    author = await quick_user("agent", inboxes=[inbox])
    colleague = await quick_user("agent", inboxes=[inbox])
    messages, sent = await Message.filter(conversation_id=conv.id).count(), len(fake_graph.sent_messages())

    reply = {"text": "Dạ shop còn ạ", "mention_ids": [colleague.user.id]}
    for body in ({**reply, "private": False}, reply):
        response = await client.post(f"/api/conversations/{conv.id}/messages", json=body, headers=author.headers)
        assert response.status == 422, await response.text()
        assert (await response.json())["error"]["code"] == "mentions_need_private"

    assert await Message.filter(conversation_id=conv.id).count() == messages
    assert len(fake_graph.sent_messages()) == sent, "a refused reply reached the customer"
    assert await Mention.all().count() == 0
    # A reply without mention_ids is the reply it always was.
    plain = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ"}, headers=author.headers)
    assert plain.status == 201


async def test_the_mentioned_lists_and_reads_their_own_mentions_only(client: TestClient, inbox: Inbox) -> None:
    conv = await incoming(client, "P1", "m.1", "Đơn của chị đâu rồi shop?")
    other = await incoming(client, "P2", "m.2", "Shop ơi")
    author = await quick_user("agent", inboxes=[inbox])
    colleague = await quick_user("agent", inboxes=[inbox])
    long_text = "Nhờ chị kiểm tra đơn " + "rất dài " * 40
    assert (await note(client, author, conv.id, "Nhờ chị gọi lại khách", [colleague.user.id])).status == 201
    assert (await note(client, author, other.id, long_text, [colleague.user.id])).status == 201
    assert (await note(client, colleague, conv.id, "Em xem giúp chị", [author.user.id])).status == 201
    mine = await Mention.filter(user_id=colleague.user.id).order_by("id").values_list("id", flat=True)

    listed = await mentions_of(client, colleague, unread=1)
    assert listed["unread_count"] == 2
    assert [m["id"] for m in listed["items"]] == list(reversed(mine))  # newest first
    newest, oldest = listed["items"]
    assert oldest["conversation_id"] == conv.id and oldest["excerpt"] == "Nhờ chị gọi lại khách"
    assert oldest["contact_name"] == (await Conversation.get(id=conv.id).prefetch_related("contact")).contact.name
    assert oldest["by"] == {"id": author.user.id, "name": author.user.name}
    assert oldest["read_at"] is None and oldest["created_at"]
    assert len(newest["excerpt"]) <= 140 and newest["excerpt"].endswith("…")
    first_page = await mentions_of(client, colleague, limit=1)
    assert [m["id"] for m in first_page["items"]] == [mine[1]]
    second_page = await mentions_of(client, colleague, limit=1, cursor=first_page["next_cursor"])
    assert [m["id"] for m in second_page["items"]] == [mine[0]] and second_page["next_cursor"] is None

    # Someone else's ids change nothing and tell nothing.
    theirs = await client.post("/api/mentions/read", json={"ids": mine}, headers=author.headers)
    assert theirs.status == 200 and (await theirs.json())["marked"] == 0
    assert (await mentions_of(client, colleague, unread=1))["unread_count"] == 2

    by_id = await client.post("/api/mentions/read", json={"ids": [mine[1], 999_999]}, headers=colleague.headers)
    assert await by_id.json() == {"marked": 1, "unread_count": 1}
    by_conversation = await client.post(
        "/api/mentions/read", json={"conversation_id": conv.id}, headers=colleague.headers
    )
    assert await by_conversation.json() == {"marked": 1, "unread_count": 0}
    assert (await mentions_of(client, colleague, unread=1))["items"] == []
    everything = await mentions_of(client, colleague)
    assert len(everything["items"]) == 2 and all(m["read_at"] for m in everything["items"])
    assert (await mentions_of(client, author, unread=1))["unread_count"] == 1  # the author's own mention is apart

    for body in ({}, {"ids": mine, "conversation_id": conv.id}, {"ids": "1"}, {"ids": [0]}, {"conversation_id": "x"}):
        refused = await client.post("/api/mentions/read", json=body, headers=colleague.headers)
        assert refused.status == 400, body


async def test_mark_all_read_clears_every_unread_mention_of_the_caller_only_and_tells_their_other_pages(
    client: TestClient, inbox: Inbox
) -> None:
    conv = await incoming(client, "P1", "m.1", "Đơn của chị đâu rồi shop?")
    other = await incoming(client, "P2", "m.2", "Shop ơi")
    author = await quick_user("agent", inboxes=[inbox])
    colleague = await quick_user("agent", inboxes=[inbox])
    for conv_id, text in ((conv.id, "Nhờ chị gọi lại"), (other.id, "Nhờ chị xem"), (other.id, "Nhắc lại nhé")):
        assert (await note(client, author, conv_id, text, [colleague.user.id])).status == 201
    assert (await note(client, colleague, conv.id, "Em xem giúp chị", [author.user.id])).status == 201
    mine = await Mention.filter(user_id=colleague.user.id).order_by("id").values_list("id", flat=True)
    by_id = await client.post("/api/mentions/read", json={"ids": [mine[0]]}, headers=colleague.headers)
    assert await by_id.json() == {"marked": 1, "unread_count": 2}  # one already read: not marked twice
    other_tab, author_tab = await connected(client, colleague), await connected(client, author)

    everything = await client.post("/api/mentions/read", json={"all": True}, headers=colleague.headers)

    assert everything.status == 200, await everything.text()
    assert await everything.json() == {"marked": 2, "unread_count": 0}
    assert await Mention.filter(user_id=colleague.user.id, read_at__isnull=True).count() == 0
    assert (await mentions_of(client, author, unread=1))["unread_count"] == 1, "the author's own mention was marked"
    frame = await other_tab.until(lambda f: f["type"] == "mention.read")
    assert frame["data"]["ids"] == mine[1:] and frame["data"]["read_at"]
    await marker(client, other_tab, author_tab)
    assert author_tab.events("mention.read") == []
    again = await client.post("/api/mentions/read", json={"all": True}, headers=colleague.headers)
    assert await again.json() == {"marked": 0, "unread_count": 0}
    await marker(client, other_tab)
    assert len(other_tab.events("mention.read")) == 1, "nothing marked, nothing told"
    for socket in (other_tab, author_tab):
        await socket.close()


async def test_every_staff_role_marks_all_their_own_mentions_read_and_anonymous_may_not(
    client: TestClient, inbox: Inbox
) -> None:
    conv = await incoming(client, "P1", "m.1", "Shop ơi")
    author = await quick_user("agent", inboxes=[inbox])
    named = {role: await quick_user(role, inboxes=[inbox]) for role in ("agent", "supervisor", "admin")}
    ids = [staff.user.id for staff in named.values()]
    assert (await note(client, author, conv.id, "Nhờ mọi người xem giúp", ids)).status == 201

    anonymous = await client.post("/api/mentions/read", json={"all": True})
    assert anonymous.status == 401
    assert await Mention.filter(read_at__isnull=True).count() == 3
    for role, staff in named.items():
        response = await client.post("/api/mentions/read", json={"all": True}, headers=staff.headers)
        assert response.status == 200, (role, await response.text())
        assert await response.json() == {"marked": 1, "unread_count": 0}, role
    assert await Mention.filter(read_at__isnull=True).count() == 0


async def test_mark_all_read_alongside_ids_or_a_conversation_or_not_true_is_refused(
    client: TestClient, inbox: Inbox
) -> None:
    conv = await incoming(client, "P1", "m.1", "Shop ơi")
    author = await quick_user("agent", inboxes=[inbox])
    colleague = await quick_user("agent", inboxes=[inbox])
    assert (await note(client, author, conv.id, "Nhờ chị xem", [colleague.user.id])).status == 201
    mention_id = (await Mention.get(user_id=colleague.user.id)).id
    tab = await connected(client, colleague)  # a sequence number would also count the customer message's analysis

    for body, code in [
        ({"all": True, "ids": [mention_id]}, "conflicting_fields"),
        ({"all": True, "conversation_id": conv.id}, "conflicting_fields"),
        ({"all": True, "ids": [mention_id], "conversation_id": conv.id}, "conflicting_fields"),
        ({"all": False}, "invalid_field"),
        ({"all": 1}, "invalid_field"),
        ({"all": "true"}, "invalid_field"),
        ({"all": None}, "invalid_field"),
        ({"all": False, "ids": [mention_id]}, "invalid_field"),
    ]:
        refused = await client.post("/api/mentions/read", json=body, headers=colleague.headers)
        assert refused.status == 422, (body, await refused.text())
        error = (await refused.json())["error"]
        assert error["code"] == code and error["message"], body
    assert await Mention.filter(read_at__isnull=True).count() == 1
    await marker(client, tab)
    assert tab.events("mention.read") == [], "a refused call told the other pages something"
    await tab.close()


async def test_an_agent_moved_out_of_the_inbox_no_longer_lists_its_mentions(client: TestClient, inbox: Inbox) -> None:
    conv = await incoming(client, "P1", "m.1", "Shop ơi")
    author = await quick_user("agent", inboxes=[inbox])
    colleague = await quick_user("agent", inboxes=[inbox])
    assert (await note(client, author, conv.id, "Nhờ xem giúp", [colleague.user.id])).status == 201
    await InboxMember.filter(user_id=colleague.user.id).delete()
    moved = Staff(colleague.user, (await create_session(colleague.user))[0])  # rights are read at login
    listed = await mentions_of(client, moved)
    assert listed == {"items": [], "next_cursor": None, "unread_count": 0}


async def test_mentions_go_with_the_conversation_and_with_the_erased_customer(client: TestClient, inbox: Inbox) -> None:
    conv = await incoming(client, "P1", "m.1", "Em tên Hoàng Thị Mai nhé")
    other = await incoming(client, "P2", "m.2", "Shop ơi")
    author = await quick_user("agent", inboxes=[inbox])
    colleague = await quick_user("agent", inboxes=[inbox])
    admin = await quick_user("admin")
    assert (await note(client, author, conv.id, "Khách quen, nhờ chị gọi lại", [colleague.user.id])).status == 201
    assert (await note(client, author, other.id, "Khách mới", [colleague.user.id])).status == 201

    exported = await client.get(f"/api/contacts/{conv.contact_id}/export", headers=admin.headers)
    assert exported.status == 200
    assert "mention" not in (await exported.text()).lower(), "the export holds no staff mentions"
    erased = await client.delete(f"/api/contacts/{conv.contact_id}", headers=admin.headers)
    assert erased.status == 200, await erased.text()
    assert await Mention.filter(conversation_id=conv.id).count() == 0
    assert [m["conversation_id"] for m in (await mentions_of(client, colleague))["items"]] == [other.id]

    await Conversation.filter(id=other.id).delete()  # as a bulk delete does: the foreign keys cascade
    assert await Mention.all().count() == 0
