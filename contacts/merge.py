"""Merging two profiles of one customer, and undoing it exactly.

The merged profile is kept (marked `merged_into_id`) and its identities, conversations, orders, suggestions and
consents move to the survivor; the merge row holds both profiles as they were and the ids of every row that moved,
so undo puts everything back. Nothing is deleted either way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from tortoise import fields as tfields
from tortoise.transactions import in_transaction

from contacts import rfm
from contacts.models import ConsentRecord, Contact, ContactIdentity, ContactMerge, ContactSuggestion, Order
from contacts.profile import _unique
from inbox.models import Conversation
from inbox.search import contact_search_text, index_contact


class MergeError(ValueError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _row(contact: Contact) -> dict[str, Any]:
    """Every column, JSON-ready."""
    out: dict[str, Any] = {}
    for name in Contact._meta.db_fields:
        value = getattr(contact, name)
        out[name] = value.isoformat() if isinstance(value, datetime | date) else value
    return out


def _restore_values(row: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in row.items():
        if name == "id":
            continue
        field = Contact._meta.fields_map[name]
        if value is not None and isinstance(field, tfields.DatetimeField):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(field, tfields.DateField):
            value = date.fromisoformat(value)
        values[name] = value
    return values


def merged_values(survivor: Contact, other: Contact) -> dict[str, Any]:
    """The survivor keeps its values; empty ones are filled from the other; lists are united."""
    phones = _unique([survivor.phone, *(survivor.phones or []), other.phone, *(other.phones or [])])
    emails = _unique([survivor.email, *(survivor.emails or []), other.email, *(other.emails or [])])
    primary_phone = survivor.phone or (phones[0] if phones else None)
    primary_email = survivor.email or (emails[0] if emails else None)
    seen = [d for d in (survivor.first_seen_at, other.first_seen_at) if d]
    last = [d for d in (survivor.last_seen_at, other.last_seen_at) if d]
    notes = "\n".join(n for n in (survivor.notes, other.notes) if n)
    return {
        "name": survivor.name or other.name,
        "picture_url": survivor.picture_url or other.picture_url,
        "phone": primary_phone,
        "email": primary_email,
        "phones": [p for p in phones if p != primary_phone],
        "emails": [e for e in emails if e != primary_email],
        "addresses": _unique([*(survivor.addresses or []), *(other.addresses or [])]),
        "gender": survivor.gender or other.gender,
        "birthday": survivor.birthday or other.birthday,
        "city": survivor.city or other.city,
        "tags": _unique([*(survivor.tags or []), *(other.tags or [])]),
        "attributes": {**(other.attributes or {}), **(survivor.attributes or {})},
        "notes": notes,
        "source": survivor.source or other.source,
        "first_seen_at": min(seen) if seen else None,
        "last_seen_at": max(last) if last else None,
        "do_not_store": survivor.do_not_store or other.do_not_store,
    }


async def merge_contacts(survivor_id: int, other_id: int, *, actor_id: int | None) -> ContactMerge:
    if survivor_id == other_id:
        raise MergeError(422, "invalid_merge", "a profile cannot be merged into itself")
    async with in_transaction() as conn:
        survivor = await Contact.get_or_none(id=survivor_id).using_db(conn)
        other = await Contact.get_or_none(id=other_id).using_db(conn)
        if survivor is None or other is None:
            raise MergeError(404, "not_found", "contact not found")
        for c in (survivor, other):
            if c.merged_into_id is not None:
                raise MergeError(409, "already_merged", f"contact {c.id} is already merged into {c.merged_into_id}")
            if c.erased_at is not None:
                raise MergeError(409, "erased", f"contact {c.id} was erased")
        moved = {
            "identities": await ContactIdentity.filter(contact_id=other.id).using_db(conn).values_list("id", flat=True),
            "conversations": await Conversation.filter(contact_id=other.id).using_db(conn).values_list("id", flat=True),
            "orders": await Order.filter(contact_id=other.id).using_db(conn).values_list("id", flat=True),
            "consents": await ConsentRecord.filter(contact_id=other.id).using_db(conn).values_list("id", flat=True),
        }
        taken = set(
            await ContactSuggestion.filter(contact_id=survivor.id).using_db(conn).values_list("kind", "normalized")
        )
        suggestions = await ContactSuggestion.filter(contact_id=other.id).using_db(conn)
        moved["suggestions"] = [s.id for s in suggestions if (s.kind, s.normalized) not in taken]
        snapshot = {"survivor": _row(survivor), "other": _row(other), "moved": {k: list(v) for k, v in moved.items()}}

        for model, key in ((ContactIdentity, "identities"), (Conversation, "conversations"), (Order, "orders"),
                           (ConsentRecord, "consents"), (ContactSuggestion, "suggestions")):  # fmt: skip
            if moved[key]:
                await model.filter(id__in=moved[key]).using_db(conn).update(contact_id=survivor.id)
        values = merged_values(survivor, other)
        values["updated_at"] = datetime.now(UTC)
        for name, value in values.items():
            setattr(survivor, name, value)
        old_text = survivor.search_text
        values["search_text"] = survivor.search_text = contact_search_text(survivor)
        await Contact.filter(id=survivor.id).using_db(conn).update(**values)
        await index_contact(conn, survivor.id, old_text, survivor.search_text)
        await Contact.filter(id=other.id).using_db(conn).update(merged_into_id=survivor.id)
        record = await ContactMerge.create(
            using_db=conn, survivor_id=survivor.id, merged_id=other.id, actor_id=actor_id, snapshot=snapshot
        )
    await _rescore(record)
    return record


async def _rescore(merge: ContactMerge) -> None:
    """Orders moved between the two profiles: their RFM scores (which segments' order and revenue rules read) follow
    now, not at the next refresh. After the commit: the bulk read of every order must not hold the write lock."""
    if (merge.snapshot.get("moved") or {}).get("orders"):
        await rfm.refresh_contacts([merge.survivor_id, merge.merged_id])


async def undo_merge(merge_id: int, *, actor_id: int | None) -> ContactMerge:
    async with in_transaction() as conn:
        merge = await ContactMerge.get_or_none(id=merge_id).using_db(conn)
        if merge is None:
            raise MergeError(404, "not_found", "merge not found")
        if merge.undone_at is not None:
            raise MergeError(409, "already_undone", "this merge was already undone")
        if not merge.snapshot.get("survivor"):
            raise MergeError(409, "erased", "a profile of this merge was erased: it cannot be undone")
        later = (
            await ContactMerge.filter(
                id__gt=merge.id, undone_at__isnull=True, survivor_id__in=[merge.survivor_id, merge.merged_id]
            )
            .using_db(conn)
            .exists()
            or await ContactMerge.filter(id__gt=merge.id, undone_at__isnull=True, merged_id=merge.survivor_id)
            .using_db(conn)
            .exists()
        )
        if later:
            raise MergeError(409, "later_merge", "undo the later merges of these profiles first")
        survivor = await Contact.get(id=merge.survivor_id).using_db(conn)
        moved = merge.snapshot["moved"]
        identity_ids = moved["identities"]
        # Conversations started after the merge by a moved identity go back with it.
        conversation_ids = set(moved["conversations"])
        if identity_ids:
            conversation_ids |= set(
                await Conversation.filter(identity_id__in=identity_ids).using_db(conn).values_list("id", flat=True)
            )
        for model, ids in ((ContactIdentity, identity_ids), (Conversation, sorted(conversation_ids)),
                           (Order, moved["orders"]), (ConsentRecord, moved["consents"]),
                           (ContactSuggestion, moved["suggestions"])):  # fmt: skip
            if ids:
                await model.filter(id__in=ids).using_db(conn).update(contact_id=merge.merged_id)
        # The survivor as it was before this merge; its state now is kept on the merge row, so nothing is lost.
        merge.snapshot = {**merge.snapshot, "survivor_before_undo": _row(survivor)}
        survivor_values = _restore_values(merge.snapshot["survivor"])
        other_values = _restore_values(merge.snapshot["other"])
        await Contact.filter(id=merge.survivor_id).using_db(conn).update(**survivor_values)
        await Contact.filter(id=merge.merged_id).using_db(conn).update(**other_values)
        await index_contact(conn, survivor.id, survivor.search_text, survivor_values["search_text"])
        merge.undone_at = datetime.now(UTC)
        merge.undone_by_id = actor_id
        await merge.save(using_db=conn, update_fields=["snapshot", "undone_at", "undone_by_id"])
    await _rescore(merge)
    return merge


def merge_json(merge: ContactMerge) -> dict[str, Any]:
    return {
        "id": merge.id,
        "survivor_id": merge.survivor_id,
        "merged_id": merge.merged_id,
        "actor_id": merge.actor_id,
        "moved": {k: len(v) for k, v in (merge.snapshot.get("moved") or {}).items()},
        "created_at": merge.created_at.isoformat() if merge.created_at else None,
        "undone_at": merge.undone_at.isoformat() if merge.undone_at else None,
        "undone_by_id": merge.undone_by_id,
    }
