"""Consent records: what, when, how and from which channel; a refused storage consent is "do not store"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contacts.consent import ConsentError, current_consents, may_store, record_consent
from contacts.models import Contact


async def test_consent_history_and_do_not_store(client) -> None:
    contact = await Contact.create(name="Lan")
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await record_consent(contact.id, kind="marketing", granted=True, channel="webchat", method="prechat_form", at=at)
    await record_consent(contact.id, kind="storage", granted=False, channel="webchat", method="checkbox")
    assert not await may_store(contact.id)
    state = await current_consents(contact.id)
    assert state["marketing"]["granted"] is True and state["marketing"]["at"] == at.isoformat()
    assert state["marketing"]["channel"] == "webchat" and state["marketing"]["method"] == "prechat_form"
    assert state["storage"]["granted"] is False
    await record_consent(contact.id, kind="storage", granted=True, channel="agent", method="agent")
    assert await may_store(contact.id)
    assert (await Contact.get(id=contact.id)).do_not_store is False


async def test_consent_needs_kind_channel_method(client) -> None:
    contact = await Contact.create(name="Lan")
    with pytest.raises(ConsentError):
        await record_consent(contact.id, kind="", granted=True, channel="webchat", method="checkbox")
    with pytest.raises(ConsentError):
        await record_consent(contact.id, kind="marketing", granted=True, channel="", method="checkbox")


async def test_a_merge_with_a_profile_that_refused_storage_keeps_new_messages_empty(client, inbox) -> None:
    """Customer B refused storage; B's profile is merged into A's. B's next message keeps the fact, not the words:
    the flag travels with the merge and ingest reads it from the stored profile."""
    from contacts.merge import merge_contacts
    from inbox.models import Message
    from tests.conftest import eventually, quick_user, send_text
    from tests.test_contacts import conversation_of

    conv_a = await conversation_of(client, "PSID-1", "m1", "Chào shop")
    conv_b = await conversation_of(client, "PSID-2", "m2", "Cho hỏi giá")
    agent = await quick_user("agent", inboxes=[inbox])
    refused = await client.post(
        f"/api/contacts/{conv_b.contact_id}/consents",
        json={"kind": "storage", "granted": False, "channel": "facebook", "method": "message"},
        headers=agent.headers,
    )
    assert refused.status == 201
    await merge_contacts(conv_a.contact_id, conv_b.contact_id, actor_id=None)
    await send_text(client, "PSID-2", "m3", "Số em 0987654321 địa chỉ 12 Lê Lợi")
    msg = await eventually(lambda: Message.get_or_none(external_id="m3"))
    assert (msg.text, msg.conversation_id) == (None, conv_b.id)
