"""Consent: what the customer agreed to or refused, when, how and from which channel.

A refused `storage` consent is the "do not store" state: the profile keeps the flag so processing can check it
without reading the consent history.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from contacts.models import ConsentRecord, Contact

STORAGE = "storage"  # consent to keep personal data at all; refusing it means "do not store"
KINDS = (STORAGE, "marketing", "terms", "profiling")
METHODS = ("prechat_form", "checkbox", "message", "agent", "import", "api")


class ConsentError(ValueError):
    pass


async def record_consent(
    contact_id: int,
    *,
    kind: str,
    granted: bool,
    channel: str,
    method: str,
    at: datetime | None = None,
    actor_id: int | None = None,
) -> ConsentRecord:
    """Append one consent decision; the latest one per kind is the current state."""
    kind = (kind or "").strip().lower()
    if not kind or len(kind) > 40:
        raise ConsentError("kind must be a short name such as 'storage' or 'marketing'")
    if not channel or not method:
        raise ConsentError("channel and method are required")
    when = at or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    record = await ConsentRecord.create(
        contact_id=contact_id,
        kind=kind,
        granted=bool(granted),
        channel=channel[:20],
        method=method[:40],
        at=when,
        actor_id=actor_id,
    )
    if kind == STORAGE:
        # Ingest reads the flag on the contact it loads with the conversation, in the batch's transaction: every
        # server process honours it from the next message on (a merge carries it to the profile that survives).
        await Contact.filter(id=contact_id).update(do_not_store=not granted)
    return record


def withheld(event: Any) -> Any:
    """The inbound message without its content: the conversation shows that the customer wrote, nothing more."""
    return dataclasses.replace(event, text=None, attachments=(), shared_phone=None, contact_name=None)


async def current_consents(contact_id: int) -> dict[str, dict]:
    """The latest decision per kind."""
    latest: dict[str, dict] = {}
    for record in await ConsentRecord.filter(contact_id=contact_id).order_by("at", "id"):
        latest[record.kind] = serialize_consent(record)
    return latest


async def consent_history(contact_id: int) -> list[dict]:
    return [serialize_consent(r) for r in await ConsentRecord.filter(contact_id=contact_id).order_by("at", "id")]


def serialize_consent(record: ConsentRecord) -> dict:
    return {
        "id": record.id,
        "kind": record.kind,
        "granted": record.granted,
        "channel": record.channel,
        "method": record.method,
        "at": record.at.isoformat(),
        "actor_id": record.actor_id,
    }


async def may_store(contact_id: int) -> bool:
    """False while the customer has refused storage of their personal data."""
    row = await Contact.filter(id=contact_id).values_list("do_not_store", flat=True)
    return not (row and row[0])
