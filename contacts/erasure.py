"""The customer's rights over their data: export everything held about them, and erasure.

Erasure removes personal data from the profile, identities, messages (text, attachments, entities, edits), the
conversation previews and events, orders, suggestions, merge snapshots, the raw inbound log and the search index;
what remains is the bare structure (ids, counts, times) and an audit record without personal data. A final sweep
replaces any remaining copy of the name, phones or e-mails in every text/JSON column of every table.
"""

from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tortoise import fields as tfields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from contacts.consent import consent_history
from contacts.models import Contact, ContactIdentity, ContactMerge, ContactSuggestion, Order
from contacts.orders import order_json
from contacts.profile import profile_fields
from inbox.db import MODEL_MODULES, connection
from inbox.models import Conversation, ConversationEvent, Mention, Message
from inbox.serialize import message_json

log = logging.getLogger(__name__)
ERASED = "[đã xoá]"
# Event data keys that never hold personal data; every other string value in an event of the contact is dropped.
SAFE_EVENT_KEYS = {
    "status", "previous", "agent_id", "team_id", "channel", "applied", "given_by_customer", "reason", "refused",
    "bot_kind",
}  # fmt: skip
SKIP_TABLES = {"audit_log", "tortoise_migrations", "message_fts", "contact_fts"}


async def merged_profiles(contact_id: int, using_db: Any = None) -> list[Contact]:
    """The profiles merged into this one, and into those (a merge of a merge): the same person, whose rows keep
    their own name, city, birthday… until the merge is undone."""
    found: list[Contact] = []
    seen, wanted = {contact_id}, [contact_id]
    while wanted:
        rows = await Contact.filter(merged_into_id__in=wanted).using_db(using_db).order_by("id")
        merged = [c for c in rows if c.id not in seen]
        found.extend(merged)
        seen.update(c.id for c in merged)
        wanted = [c.id for c in merged]
    return found


async def export_contact(contact: Contact) -> dict[str, Any]:
    """Everything held about the customer, as JSON."""
    identities = await ContactIdentity.filter(contact_id=contact.id).order_by("id")
    conversations = await Conversation.filter(contact_id=contact.id).order_by("id")
    messages = await Message.filter(conversation_id__in=[c.id for c in conversations]).order_by("id")
    return {
        "exported_at": datetime.now(UTC).isoformat(),
        "profile": profile_fields(contact),
        "merged_profiles": [profile_fields(merged) for merged in await merged_profiles(contact.id)],
        "identities": [
            {
                "channel": i.channel,
                "inbox_id": i.inbox_id,
                "external_id": i.external_id,
                "name": i.name,
                "picture_url": i.picture_url,
                "created_at": i.created_at.isoformat(),
            }
            for i in identities
        ],
        "consents": await consent_history(contact.id),
        "conversations": [
            {
                "id": c.id,
                "inbox_id": c.inbox_id,
                "channel": c.channel,
                "status": c.status,
                "created_at": c.created_at.isoformat(),
                "messages": [message_json(m) for m in messages if m.conversation_id == c.id],
            }
            for c in conversations
        ],
        "orders": [order_json(o) for o in await Order.filter(contact_id=contact.id).order_by("id")],
        "suggestions": [
            {"kind": s.kind, "value": s.value, "status": s.status, "message_id": s.message_id}
            for s in await ContactSuggestion.filter(contact_id=contact.id)
        ],
    }


async def erase_contact(contact_id: int, *, upload_dir: Path | None = None) -> dict[str, int]:
    """Erase the customer's personal data; returns counts (no personal data) for the audit record."""
    await Contact.get(id=contact_id)  # DoesNotExist for an unknown id
    conn = connection()
    sqlite = conn.capabilities.dialect == "sqlite"
    if sqlite:
        await conn.execute_script("PRAGMA secure_delete = ON")  # freed pages are overwritten, not left readable
    now = datetime.now(UTC)
    async with in_transaction() as tx:
        # Read in the transaction, the profiles locked (Postgres; SQLite runs one transaction at a time): a profile
        # edit or a message stored between reading and erasing cannot slip past the erasure.
        await Contact.select_for_update().using_db(tx).get(id=contact_id)
        # Profiles merged into this one (at any depth) are the same person: erased with it.
        ids = [contact_id, *(merged.id for merged in await merged_profiles(contact_id, using_db=tx))]
        contacts = await Contact.select_for_update().using_db(tx).filter(id__in=ids)
        identities = await ContactIdentity.filter(contact_id__in=ids).using_db(tx)
        needles = _needles(contacts, identities)
        conv_ids = await Conversation.filter(contact_id__in=ids).using_db(tx).values_list("id", flat=True)
        in_conversations = Message.filter(conversation_id__in=conv_ids).using_db(tx)
        messages = await in_conversations.values_list("id", "search_text", "attachments")
        files = [a.get("url", "") for _, _, atts in messages for a in (atts or []) if isinstance(a, dict)]
        if sqlite:
            indexed = [(mid, text) for mid, text, _ in messages if text]
            if indexed:
                await tx.execute_many(
                    "INSERT INTO message_fts(message_fts, rowid, search_text) VALUES ('delete', ?, ?)", indexed
                )
            for c in contacts:
                if c.search_text:
                    await tx.execute_query(
                        "INSERT INTO contact_fts(contact_fts, rowid, search_text) VALUES ('delete', ?, ?)",
                        [c.id, c.search_text],
                    )
        message_ids = [mid for mid, _, _ in messages]
        for start in range(0, len(message_ids), 500):
            await (
                Message.filter(id__in=message_ids[start : start + 500])
                .using_db(tx)
                .update(text=None, search_text="", attachments=[], entities=[], extra={})
            )
            await _clear_optional_message_columns(tx, message_ids[start : start + 500])
        await Conversation.filter(id__in=conv_ids).using_db(tx).update(last_message_preview="")
        # A mention points staff at a note whose text is erased now: nothing is left to notice (and the list would
        # show the customer's conversation to whoever was mentioned).
        await Mention.filter(conversation_id__in=conv_ids).using_db(tx).delete()
        for event in await ConversationEvent.filter(conversation_id__in=conv_ids).using_db(tx):
            clean = {k: v for k, v in (event.data or {}).items() if k in SAFE_EVENT_KEYS and not isinstance(v, str)}
            clean.update({k: v for k, v in (event.data or {}).items() if k in ("status", "previous", "bot_kind")})
            if clean != event.data:
                await ConversationEvent.filter(id=event.id).using_db(tx).update(data=clean)
        for identity in identities:
            # The platform id is personal data too; a new message from it starts a new, empty profile.
            await (
                ContactIdentity.filter(id=identity.id)
                .using_db(tx)
                .update(name=None, picture_url=None, external_id=f"erased:{identity.id}")
            )
        inbound = [(i.inbox_id, i.external_id) for i in identities]
        await _erase_inbound(tx, inbound)
        await Order.filter(contact_id__in=ids).using_db(tx).update(phone=None, shipping_address=None, note="")
        await ContactSuggestion.filter(contact_id__in=ids).using_db(tx).delete()
        for merge in await ContactMerge.filter(survivor_id__in=ids).using_db(tx):
            await ContactMerge.filter(id=merge.id).using_db(tx).update(snapshot={"erased": True})
        for merge in await ContactMerge.filter(merged_id__in=ids).using_db(tx):
            await ContactMerge.filter(id=merge.id).using_db(tx).update(snapshot={"erased": True})
        await Contact.filter(id__in=ids).using_db(tx).update(
            name="", picture_url=None, phone=None, email=None, phones=[], emails=[], addresses=[], gender=None,
            birthday=None, city=None, tags=[], attributes={}, notes="", source={}, search_text="", erased_at=now,
        )  # fmt: skip
        swept = await _sweep(tx, needles)
    if sqlite:
        for table in ("message_fts", "contact_fts"):  # merge the segments so deleted terms leave the index
            await conn.execute_query(f"INSERT INTO {table}({table}) VALUES ('optimize')")
        await conn.execute_script("PRAGMA secure_delete = OFF")
    removed_files = _remove_files(files, upload_dir)
    return {
        "profiles": len(ids),
        "identities": len(identities),
        "conversations": len(conv_ids),
        "messages": len(messages),
        "files": removed_files,
        "swept_values": swept,
    }


async def _clear_optional_message_columns(tx: Any, ids: list[int]) -> None:
    """Columns other areas added to messages that can hold the old text (edits)."""
    fields = Message._meta.fields_map
    values: dict[str, Any] = {}
    if "edit_history" in fields:
        values["edit_history"] = []
    if values and ids:
        await Message.filter(id__in=ids).using_db(tx).update(**values)


async def _erase_inbound(tx: Any, identities: list[tuple[int, str]]) -> None:
    """The raw inbound log and dead letters hold platform payloads (text, names): this customer's rows go.
    Unprocessed rows stay (they become messages, erased with the rest when erasure is repeated)."""
    sqlite = tx.capabilities.dialect == "sqlite"
    for inbox_id, external_id in identities:
        quoted = f'"{external_id}"'
        if sqlite:
            await tx.execute_query(
                "DELETE FROM inbound_events WHERE inbox_id = ? AND processed = 1 AND instr(record, ?) > 0",
                [inbox_id, quoted],
            )
            await tx.execute_query("DELETE FROM dead_letters WHERE instr(payload, ?) > 0", [quoted])
        else:
            await tx.execute_query(
                "DELETE FROM inbound_events WHERE inbox_id = $1 AND processed AND strpos(record::text, $2) > 0",
                [inbox_id, quoted],
            )
            await tx.execute_query("DELETE FROM dead_letters WHERE strpos(payload::text, $1) > 0", [quoted])


def _needles(contacts: list[Contact], identities: list[ContactIdentity]) -> list[str]:
    values: set[str] = set()
    for c in contacts:
        values.update(v for v in [c.name, c.phone, c.email, *(c.phones or []), *(c.emails or [])] if v)
        for phone in [c.phone, *(c.phones or [])]:
            if phone and phone.startswith("+84"):
                values.add("0" + phone[3:])
                values.add(phone[1:])
    values.update(i.name for i in identities if i.name)
    return sorted((v for v in values if len(v) >= 4), key=lambda v: (-len(v), v))


async def _sweep(tx: Any, needles: list[str]) -> int:
    """Replace what is left of the name/phones/e-mails in any text or JSON column of any table."""
    if not needles:
        return 0
    dialect = tx.capabilities.dialect
    changed = 0
    for model in _models():
        table = model._meta.db_table
        if table in SKIP_TABLES:
            continue
        for name, field in model._meta.fields_map.items():
            if not isinstance(field, tfields.TextField | tfields.CharField | tfields.JSONField):
                continue
            column = field.source_field or name
            # One statement per column, every value at once (the longest first: "+8498…" before "8498…").
            if dialect == "sqlite":
                replaced = f'"{column}"'
                for _ in needles:
                    replaced = f"REPLACE({replaced}, ?, ?)"
                found = " OR ".join(f'instr("{column}", ?) > 0' for _ in needles)
                params = [v for needle in needles for v in (needle, ERASED)] + list(needles)
                statement = f'UPDATE "{table}" SET "{column}" = {replaced} WHERE {found}'
            else:
                cast = "::text" if isinstance(field, tfields.JSONField) else ""
                back = "::jsonb" if isinstance(field, tfields.JSONField) else ""
                erased = f"${len(needles) + 1}"
                replaced = f'"{column}"{cast}'
                for k in range(1, len(needles) + 1):
                    replaced = f"REPLACE({replaced}, ${k}, {erased})"
                found = " OR ".join(f'strpos("{column}"{cast}, ${k}) > 0' for k in range(1, len(needles) + 1))
                params = [*needles, ERASED]
                statement = f'UPDATE "{table}" SET "{column}" = ({replaced}){back} WHERE {found}'
            result = await tx.execute_query(statement, params)
            changed += result[0] if isinstance(result, tuple) and isinstance(result[0], int) else 0
    return changed


def _models() -> list[type[Model]]:
    """Every model of the app (each area's model module), so a table added later is swept too."""
    found: dict[str, type[Model]] = {}
    for module_name in MODEL_MODULES:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Model) and value is not Model and value._meta.db_table:
                found[value._meta.db_table] = value
    return list(found.values())


def _remove_files(urls: list[str], upload_dir: Path | None) -> int:
    """Uploaded files (the web chat keeps them on disk) go too; platform CDN links are gone with the message."""
    if upload_dir is None:
        return 0
    removed = 0
    for url in urls:
        if "/widget/files/" not in url:
            continue
        path = upload_dir / url.rsplit("/", 1)[-1]
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
        except OSError:
            log.warning("could not remove an erased customer's file")
    return removed
