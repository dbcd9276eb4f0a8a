"""Erasure: no trace of the name, phone or message text in any table or the search index; audit kept."""

from __future__ import annotations

from contacts.models import Contact
from contacts.profile import reindex
from inbox.db import connection
from inbox.models import Conversation, ConversationLabel
from tests.conftest import quick_user
from tests.test_contacts import conversation_of


async def test_erasure_leaves_no_trace(client, inbox) -> None:
    conv = await conversation_of(client, "PSID-E", "me1", "Em tên Hoàng Thị Mai, số 0987654321 nhé")
    contact = await Contact.get(id=conv.contact_id)
    contact.name, contact.phone = "Hoàng Thị Mai", "+84987654321"
    await contact.save()
    await reindex(contact)
    # A copy of the name somewhere erasure knows nothing about: the final sweep must catch it.
    await ConversationLabel.create(conversation_id=conv.id, label="Hoàng Thị Mai VIP")
    await Conversation.filter(id=conv.id).update(labels=["Hoàng Thị Mai VIP"])
    admin = await quick_user("admin")
    assert (await client.get("/api/conversations", params={"q": "mai"}, headers=admin.headers)).status == 200
    response = await client.delete(f"/api/contacts/{contact.id}", headers=admin.headers)
    assert response.status == 200, await response.text()
    conn = connection()
    needles = ["Hoàng Thị Mai", "0987654321", "84987654321", "hoang thi mai", "Em tên"]
    dump = await dump_database(conn)
    for needle in needles:
        assert needle.lower() not in dump.lower(), needle
    for q in ("mai", "0987654321", "hoang"):
        found = await client.get("/api/conversations", params={"q": q}, headers=admin.headers)
        assert (await found.json())["items"] == [], q
        contacts = await client.get("/api/contacts", params={"q": q}, headers=admin.headers)
        assert (await contacts.json())["items"] == [], q
    from agents.models import AuditEntry

    entry = await AuditEntry.get(action="contact.erased")
    assert entry.target_id == str(contact.id) and "Mai" not in str(entry.data)


async def dump_database(conn) -> str:
    """Every row of every table (and the FTS index terms on SQLite) as text."""
    if conn.capabilities.dialect == "sqlite":
        _, rows = await conn.execute_query("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = [r[0] for r in rows]
    else:
        _, rows = await conn.execute_query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [r[0] for r in rows]
    parts = []
    for table in tables:
        if table.endswith(("_data", "_idx", "_docsize", "_config", "_content")) and "fts" in table:
            continue
        _, rows = await conn.execute_query(f'SELECT * FROM "{table}"')
        parts.extend(str(tuple(r)) for r in rows)
    if conn.capabilities.dialect == "sqlite":
        for fts in ("message_fts", "contact_fts"):
            await conn.execute_script(f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts}_v USING fts5vocab({fts}, 'row')")
            _, rows = await conn.execute_query(f"SELECT term FROM {fts}_v")
            parts.extend(r[0] for r in rows)
    return "\n".join(parts)


async def test_export_and_erasure_cover_profiles_merged_into_this_one_at_any_depth(client, inbox) -> None:
    """A merged profile keeps its own row (its name, city, birthday) so the merge can be undone: it is the same
    person, in the export and in the erasure, also when the profile it went into was merged again."""
    from datetime import date

    from contacts.merge import merge_contacts

    first = await Contact.create(name="Lan Bánh Mì", city="Huế", notes="")
    await Contact.filter(id=first.id).update(birthday=date(1990, 5, 6))
    middle = await Contact.create(name="Lan Hà Đông", city="Hà Nội", notes="")
    survivor = await Contact.create(name="Nguyễn Thị Lan", city="Hà Nội", notes="")
    await merge_contacts(middle.id, first.id, actor_id=None)
    await merge_contacts(survivor.id, middle.id, actor_id=None)
    admin = await quick_user("admin")
    exported = await client.get(f"/api/contacts/{survivor.id}/export", headers=admin.headers)
    assert exported.status == 200
    merged = (await exported.json())["merged_profiles"]
    assert [(p["name"], p["city"], p["birthday"]) for p in merged] == [
        ("Lan Hà Đông", "Hà Nội", "1990-05-06"),
        ("Lan Bánh Mì", "Huế", "1990-05-06"),
    ]  # fmt: skip (the first merge gave the middle profile the birthday it lacked)
    erased = await client.delete(f"/api/contacts/{survivor.id}", headers=admin.headers)
    assert erased.status == 200, await erased.text()
    dump = await dump_database(connection())
    for needle in ("Lan Bánh Mì", "Lan Hà Đông", "Huế", "1990-05-06"):
        assert needle not in dump, needle


async def test_the_customer_who_writes_after_the_erasure_starts_a_new_empty_profile(client, inbox) -> None:
    """The processor had the customer's ids cached from before the erasure: the next message must not go back
    into the erased profile's conversation (which would fill up with personal data again)."""
    from inbox.models import Message
    from tests.conftest import eventually, send_text

    conv = await conversation_of(client, "PSID-E", "me1", "Em tên Mai")
    admin = await quick_user("admin")
    assert (await client.delete(f"/api/contacts/{conv.contact_id}", headers=admin.headers)).status == 200
    await send_text(client, "PSID-E", "me2", "Em lại đây, số em 0987654321")
    msg = await eventually(lambda: Message.get_or_none(external_id="me2"))
    again = await Conversation.get(id=msg.conversation_id)
    assert again.id != conv.id and again.contact_id != conv.contact_id
    assert (await Contact.get(id=again.contact_id)).erased_at is None
    erased_conversations = await Conversation.filter(contact_id=conv.contact_id).values_list("id", flat=True)
    assert erased_conversations == [conv.id]
    assert await Message.filter(conversation_id=conv.id, text__isnull=False).count() == 0
