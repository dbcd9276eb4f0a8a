"""Phones, e-mails and addresses found in a customer's messages, offered on the profile until an agent decides.

The NLP enricher fills each message's `entities` ({type, value, normalized, start, end}); profiles collect them
when read, so no hook on the ingest path is needed. Values the customer gave on purpose (a shared contact card, a
pre-chat form) are marked `given_by_customer`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from contacts.models import Contact, ContactSuggestion
from contacts.normalize import InvalidValue, normalize_email, normalize_phone
from contacts.profile import _unique, reindex
from inbox.db import connection
from inbox.serialize import iso
from inbox.sql import Sql, as_json

KINDS = ("phone", "email", "address")
GIVEN_SOURCES = ("shared_contact", "prechat_form", "form")


def normalized_value(kind: str, value: str, normalized: str | None = None) -> str | None:
    try:
        if kind == "phone":
            return normalize_phone(normalized or value)
        if kind == "email":
            return normalize_email(normalized or value)
    except InvalidValue:
        return None
    text = " ".join((normalized or value or "").split())
    return text[:255] or None


async def refresh_suggestions(contact_id: int) -> int:
    """Add suggestions for entities in this contact's messages that the profile does not hold yet."""
    contact = await Contact.get_or_none(id=contact_id)
    if contact is None or contact.do_not_store or contact.erased_at is not None:
        return 0
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    rows = await conn.execute_query_dict(
        "SELECT m.id, m.conversation_id, m.entities, m.extra FROM messages m JOIN conversations c "
        f"ON c.id = m.conversation_id WHERE c.contact_id = {sql.p(contact_id)} AND m.direction = 'in' "
        "AND m.entities IS NOT NULL AND m.entities NOT IN ('[]', '') ORDER BY m.id DESC LIMIT 500"
        if sql.dialect == "sqlite"
        else "SELECT m.id, m.conversation_id, m.entities, m.extra FROM messages m JOIN conversations c "
        f"ON c.id = m.conversation_id WHERE c.contact_id = {sql.p(contact_id)} AND m.direction = 'in' "
        "AND m.entities::text NOT IN ('[]', '') ORDER BY m.id DESC LIMIT 500",
        sql.params,
    )
    held = profile_values(contact)
    existing = set(await ContactSuggestion.filter(contact_id=contact_id).values_list("kind", "normalized"))
    added = 0
    for row in rows:
        extra = as_json(row["extra"]) or {}
        given = (extra.get("source") in GIVEN_SOURCES) if isinstance(extra, dict) else False
        for entity in as_json(row["entities"]) or []:
            if not isinstance(entity, dict) or entity.get("type") not in KINDS:
                continue
            kind, value = entity["type"], str(entity.get("value") or "")
            norm = normalized_value(kind, value, entity.get("normalized"))
            if norm is None or norm in held[kind] or (kind, norm) in existing:
                continue
            existing.add((kind, norm))
            await ContactSuggestion.create(
                contact_id=contact_id,
                kind=kind,
                value=value[:500],
                normalized=norm,
                message_id=row["id"],
                conversation_id=row["conversation_id"],
                given_by_customer=given,
            )
            added += 1
    return added


def profile_values(contact: Contact) -> dict[str, set[str]]:
    return {
        "phone": {p for p in [contact.phone, *(contact.phones or [])] if p},
        "email": {e for e in [contact.email, *(contact.emails or [])] if e},
        "address": set(contact.addresses or []),
    }


class AlreadyDecided(Exception):
    """Another agent accepted or rejected the suggestion first."""


async def decide(suggestion: ContactSuggestion, accept: bool, actor_id: int | None) -> Contact:
    """Accept (the value joins the profile; the first phone/e-mail becomes the primary one) or reject. In one
    transaction, on the contact as it is now (locked on Postgres): two accepts at once both join the profile. The
    decision is taken only from `pending`, so an accept and a reject at once leave one of them, whole."""
    async with in_transaction() as conn:
        contact = await Contact.select_for_update().using_db(conn).get(id=suggestion.contact_id)
        suggestion.status = "accepted" if accept else "rejected"
        suggestion.decided_by_id = actor_id
        suggestion.decided_at = datetime.now(UTC)
        taken = (
            await ContactSuggestion.filter(id=suggestion.id, status="pending")
            .using_db(conn)
            .update(status=suggestion.status, decided_by_id=actor_id, decided_at=suggestion.decided_at)
        )
        if not taken:
            raise AlreadyDecided
        if accept:
            value = suggestion.normalized
            if suggestion.kind == "phone":
                if not contact.phone:
                    contact.phone = value
                elif value != contact.phone:
                    contact.phones = _unique([*(contact.phones or []), value])
            elif suggestion.kind == "email":
                if not contact.email:
                    contact.email = value
                elif value != contact.email:
                    contact.emails = _unique([*(contact.emails or []), value])
            else:
                contact.addresses = _unique([*(contact.addresses or []), value])
            contact.updated_at = datetime.now(UTC)
            fields = ["phone", "phones", "email", "emails", "addresses", "updated_at"]
            await contact.save(using_db=conn, update_fields=fields)
            await reindex(contact, using_db=conn)
    return contact


def suggestion_json(s: ContactSuggestion) -> dict[str, Any]:
    return {
        "id": s.id,
        "kind": s.kind,
        "value": s.value,
        "normalized": s.normalized,
        "message_id": s.message_id,
        "conversation_id": s.conversation_id,
        "message_url": f"/api/conversations/{s.conversation_id}/messages?before={s.message_id + 1}"
        if s.message_id and s.conversation_id
        else None,
        "given_by_customer": s.given_by_customer,
        "status": s.status,
        "created_at": iso(s.created_at),
    }
