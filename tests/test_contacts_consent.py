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
