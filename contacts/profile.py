"""The single customer view: who may read a profile, its JSON, edits with cleansing, and search."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from tortoise.transactions import in_transaction

from agents.access import Viewer
from contacts.consent import consent_history, current_consents
from contacts.models import (
    Contact,
    ContactAttribute,
    ContactIdentity,
    ContactMerge,
    ContactScore,
    ContactSuggestion,
)
from contacts.normalize import (
    InvalidValue,
    normalize_birthday,
    normalize_email,
    normalize_gender,
    normalize_name,
    normalize_phone,
)
from inbox.db import connection
from inbox.models import Conversation, ConversationEvent, Message
from inbox.search import contact_search_text, fts5_query, query_terms, store_contact_search, tsquery
from inbox.serialize import iso
from inbox.sql import Sql

ATTRIBUTE_TYPES = ("text", "number", "date", "bool", "choice")
MAX_LIST = 20  # phones, e-mails, addresses, tags per profile


class NotEditable(Exception):
    """The profile was erased or merged into another (perhaps while the edit was on its way)."""


class ProfileError(ValueError):
    """One or more invalid values; `problems` lists each (field: message)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


async def readable_contact_ids(viewer: Viewer, ids: list[int]) -> set[int]:
    """The ids among `ids` this viewer may read: all for supervisors/admins; for agents, customers who wrote to one
    of their inboxes (an identity there) or whose conversation is in one of their inboxes/teams."""
    if viewer.sees_everything or not ids:
        return set(ids)
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    idl = sql.marks(ids)
    inboxes = sql.marks(sorted(viewer.inbox_ids) or [-1])
    rows = await conn.execute_query_dict(
        f"SELECT contact_id FROM contact_identities WHERE contact_id IN ({idl}) AND inbox_id IN ({inboxes})",
        sql.params,
    )
    found = {r["contact_id"] for r in rows}
    if viewer.team_ids:
        sql = Sql(conn.capabilities.dialect)
        idl = sql.marks(ids)
        teams = sql.marks(sorted(viewer.team_ids))
        rows = await conn.execute_query_dict(
            f"SELECT contact_id FROM conversations WHERE contact_id IN ({idl}) AND team_id IN ({teams})", sql.params
        )
        found |= {r["contact_id"] for r in rows}
    return found


async def readable_contact(viewer: Viewer, contact_id: int) -> Contact | None:
    """The contact, or None when it does not exist for this viewer (the same answer as a missing one)."""
    contact = await Contact.get_or_none(id=contact_id)
    if contact is None or not await readable_contact_ids(viewer, [contact_id]):
        return None
    return contact


async def reindex(contact: Contact, using_db: Any = None) -> None:
    """Keep `search_text` and the SQLite FTS row in step with the profile as stored: the row is read again here, so
    a copy of the contact read before another save cannot put its old values in the index."""
    if using_db is None:
        async with in_transaction() as conn:
            await _reindex(conn, contact)
    else:
        await _reindex(using_db, contact)


async def _reindex(conn: Any, contact: Contact) -> None:
    stored = await Contact.get_or_none(id=contact.id).using_db(conn)
    if stored is None:
        return
    new_text = contact_search_text(stored) if stored.erased_at is None else ""
    await store_contact_search(conn, contact.id, new_text)
    contact.search_text = new_text


def _unique(values: list[str | None]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return seen


def summary_json(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "name": contact.name,
        "picture_url": contact.picture_url,
        "phone": contact.phone,
        "email": contact.email,
        "phones": _unique([contact.phone, *(contact.phones or [])]),
        "emails": _unique([contact.email, *(contact.emails or [])]),
        "city": contact.city,
        "tags": list(contact.tags or []),
        "first_seen_at": iso(contact.first_seen_at),
        "last_seen_at": iso(contact.last_seen_at),
        "merged_into_id": contact.merged_into_id,
        "erased": contact.erased_at is not None,
    }


def profile_fields(contact: Contact) -> dict[str, Any]:
    return {
        **summary_json(contact),
        "addresses": list(contact.addresses or []),
        "gender": contact.gender,
        "birthday": contact.birthday.isoformat() if contact.birthday else None,
        "attributes": dict(contact.attributes or {}),
        "notes": contact.notes,
        "source": dict(contact.source or {}),
        "do_not_store": contact.do_not_store,
        "created_at": iso(contact.created_at),
        "updated_at": iso(contact.updated_at),
    }


async def attitude_of(contact_id: int, conversation_ids: set[int] | None = None) -> dict[str, Any] | None:
    """The NLP helper's attitudinal summary (over `conversation_ids` when given), when that module is installed."""
    if importlib.util.find_spec("contacts.attitude") is None:
        return None
    from contacts import attitude  # type: ignore[attr-defined]

    return await attitude.attitudinal_summary(contact_id, conversation_ids=conversation_ids)


async def readable_conversation_ids(viewer: Viewer, contact_id: int) -> set[int] | None:
    """The customer's conversations this viewer may open; None for supervisors and admins (all of them). A
    customer who wrote to two shops' inboxes: each shop's agents see their own chats' words, not the other's."""
    if viewer.sees_everything:
        return None
    rows = await Conversation.filter(contact_id=contact_id).values_list("id", "inbox_id", "team_id")
    return {conv_id for conv_id, inbox_id, team_id in rows if viewer.can_read(inbox_id, team_id)}


def suggestion_readable(suggestion: ContactSuggestion, readable: set[int] | None) -> bool:
    """A suggestion quotes a message: it is shown to whoever may read that message's conversation."""
    return readable is None or suggestion.conversation_id is None or suggestion.conversation_id in readable


async def ensure_source(contact: Contact) -> None:
    """Where the customer came from, learnt once: the first channel, and the ad / m.me referral (with its UTM
    parameters) when the platform reported one."""
    if contact.source or contact.erased_at is not None:
        return
    first = await ContactIdentity.filter(contact_id=contact.id).order_by("created_at", "id").first()
    if first is None:
        return
    source: dict[str, Any] = {"channel": first.channel, "inbox_id": first.inbox_id}
    conv_ids = await Conversation.filter(contact_id=contact.id).values_list("id", flat=True)
    referral = None
    if conv_ids:
        event = (
            await ConversationEvent.filter(conversation_id__in=conv_ids, kind="referral")
            .order_by("occurred_at")
            .first()
        )
        if event is not None:
            referral = (event.data or {}).get("referral")
        if referral is None:
            for extra in (
                await Message.filter(conversation_id__in=conv_ids, direction="in")
                .order_by("id")
                .limit(20)
                .values_list("extra", flat=True)
            ):
                if isinstance(extra, dict) and isinstance(extra.get("referral"), dict):
                    referral = extra["referral"]
                    break
    if isinstance(referral, dict):
        source["referral"] = {
            k: v for k, v in referral.items() if k in ("source", "type", "ref", "ad_id", "referer_uri")
        }
        ref = str(referral.get("ref") or referral.get("referer_uri") or "")
        utm = {k: v[0] for k, v in parse_qs(ref.split("?", 1)[-1]).items() if k.startswith("utm_") and v}
        if utm:
            source["utm"] = utm
    contact.source = source
    await Contact.filter(id=contact.id).update(source=source)


async def profile_json(contact: Contact, viewer: Viewer) -> dict[str, Any]:
    from contacts.orders import contact_value
    from contacts.suggestions import refresh_suggestions, suggestion_json

    await ensure_source(contact)
    await refresh_suggestions(contact.id)
    identities = await ContactIdentity.filter(contact_id=contact.id).order_by("id")
    conversations = await Conversation.filter(contact_id=contact.id).order_by("-last_activity_at").limit(50)
    visible = [c for c in conversations if viewer.can_read(c.inbox_id, c.team_id)]
    readable = await readable_conversation_ids(viewer, contact.id)
    rfm = await ContactScore.get_or_none(contact_id=contact.id)
    suggestions = [
        s
        for s in await ContactSuggestion.filter(contact_id=contact.id, status="pending").order_by("id")
        if suggestion_readable(s, readable)
    ]
    return {
        **profile_fields(contact),
        "identities": [
            {
                "id": i.id,
                "channel": i.channel,
                "inbox_id": i.inbox_id,
                "external_id": i.external_id,
                "name": i.name,
                "picture_url": i.picture_url,
                "created_at": iso(i.created_at),
            }
            for i in identities
        ],
        "conversations": [
            {
                "id": c.id,
                "inbox_id": c.inbox_id,
                "channel": c.channel,
                "status": c.status,
                "last_activity_at": iso(c.last_activity_at),
                "last_message_preview": c.last_message_preview,
            }
            for c in visible
        ],
        "consents": await current_consents(contact.id),
        "consent_history": await consent_history(contact.id),
        "value": await contact_value(contact.id),
        "rfm": rfm_json(rfm),
        "suggestions": [suggestion_json(s) for s in suggestions],
        "attitude": await attitude_of(contact.id, readable),
        # Merges into this profile that can still be undone (POST /api/contact-merges/{id}/undo).
        "merges": [
            {"id": m.id, "merged_id": m.merged_id, "actor_id": m.actor_id, "created_at": iso(m.created_at)}
            for m in await ContactMerge.filter(survivor_id=contact.id, undone_at__isnull=True).order_by("id")
        ],
    }


def rfm_json(rfm: ContactScore | None) -> dict[str, Any] | None:
    if rfm is None:
        return None
    return {
        "recency_days": rfm.recency_days,
        "frequency": rfm.frequency,
        "monetary": rfm.monetary,
        "r": rfm.r,
        "f": rfm.f,
        "m": rfm.m,
        "segment": rfm.segment,
        "spend_tier": rfm.spend_tier,
        "computed_at": iso(rfm.computed_at),
    }


# ---------------------------------------------------------------------------------------------- edits

SIMPLE_LISTS = {"phones": normalize_phone, "emails": normalize_email}


async def apply_patch(contact: Contact, body: dict[str, Any]) -> list[str]:
    """Validate and clean every field first, then change the profile: all or nothing. Returns changed fields."""
    problems: list[str] = []
    changes: dict[str, Any] = {}

    def check(field: str, fn, *args: Any) -> None:
        try:
            changes[field] = fn(*args)
        except InvalidValue as exc:
            problems.append(f"{field}: {exc.message}")

    known = {"name", "phone", "email", "phones", "emails", "addresses", "gender", "birthday", "city", "tags"}
    known |= {"attributes", "notes", "picture_url"}
    unknown = sorted(set(body) - known)
    if unknown:
        problems.append(f"unknown fields: {', '.join(unknown)}")
    if "name" in body:
        check("name", lambda v: normalize_name(_str(v, "name")), body["name"])
    for field, fn in (("phone", normalize_phone), ("email", normalize_email)):
        if field in body:
            value = body[field]
            if value is None or value == "":
                changes[field] = None
            else:
                check(field, lambda v, fn=fn, field=field: fn(_str(v, field)), value)
    for field, fn in SIMPLE_LISTS.items():
        if field in body:
            check(
                field, lambda v, fn=fn, field=field: _unique([fn(_str(x, field)) for x in _list(v, field)]), body[field]
            )
    if "addresses" in body:
        check("addresses", lambda v: _unique([" ".join(_str(x, "addresses").split()) for x in _list(v, "addresses")]),
              body["addresses"])  # fmt: skip
    if "tags" in body:
        check("tags", lambda v: _unique([_str(x, "tags").strip()[:60] for x in _list(v, "tags")]), body["tags"])
    if "gender" in body:
        check("gender", normalize_gender, body["gender"])
    if "birthday" in body:
        check("birthday", normalize_birthday, body["birthday"])
    if "city" in body:
        check("city", lambda v: normalize_name(_str(v, "city"))[:100] or None if v is not None else None, body["city"])
    if "notes" in body:
        check("notes", lambda v: _str(v, "notes")[:10_000], body["notes"])
    if "picture_url" in body:
        check("picture_url", lambda v: None if v is None else _str(v, "picture_url"), body["picture_url"])
    attribute_patch: dict[str, Any] | None = None
    if "attributes" in body:
        try:
            attribute_patch = await clean_attributes(body["attributes"])
        except InvalidValue as exc:
            problems.append(f"attributes: {exc.message}")
    if problems:
        raise ProfileError(problems)
    # On the contact as stored now, locked (Postgres; SQLite runs one transaction at a time): another agent's edit
    # of other fields or other attributes at the same moment stays.
    async with in_transaction() as conn:
        stored = await Contact.select_for_update().using_db(conn).get(id=contact.id)
        if stored.erased_at is not None or stored.merged_into_id is not None:
            # Erased or merged since the handler looked: an edit must not write the customer's data back.
            raise NotEditable
        if attribute_patch is not None:
            changes["attributes"] = with_attributes(stored.attributes or {}, attribute_patch)
        changed = [f for f, v in changes.items() if getattr(stored, f) != v]
        for field in changed:
            setattr(stored, field, changes[field])
        if changed:
            stored.updated_at = datetime.now(UTC)
            await stored.save(using_db=conn, update_fields=[*changed, "updated_at"])
            await reindex(stored, using_db=conn)
    for field in stored._meta.fields_db_projection:  # the caller answers with the profile as stored
        setattr(contact, field, getattr(stored, field))
    return changed


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidValue(field, "must be a string")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise InvalidValue(field, f"must be a list of at most {MAX_LIST} values")
    return value


async def clean_attributes(patch: Any) -> dict[str, Any]:
    """Typed custom attributes: a defined key's value must match its type; null (kept) removes a key."""
    if not isinstance(patch, dict):
        raise InvalidValue("attributes", "must be an object")
    types = {a.key: a for a in await ContactAttribute.filter(key__in=list(patch))}
    clean: dict[str, Any] = {}
    for key, value in patch.items():
        spec = types.get(key)
        clean[key] = None if value is None else _typed(key, value, spec.type if spec else None,
                                                        spec.choices if spec else [])  # fmt: skip
    return clean


def with_attributes(current: dict[str, Any], clean_patch: dict[str, Any]) -> dict[str, Any]:
    """`current` with a cleaned patch applied: null removes the key."""
    out = dict(current)
    for key, value in clean_patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _typed(key: str, value: Any, kind: str | None, choices: list[Any]) -> Any:
    if kind is None:
        if isinstance(value, dict | list):
            raise InvalidValue("attributes", f"{key}: values are text, numbers, dates or true/false")
        return value
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "text" and isinstance(value, str):
        return value[:1000]
    if kind == "choice" and value in choices:
        return value
    if kind == "date" and isinstance(value, str):
        try:
            return normalize_birthday(value).isoformat()  # type: ignore[union-attr]
        except InvalidValue:
            pass
    raise InvalidValue(
        "attributes", f"{key} must be a {kind}" + (f" ({', '.join(map(str, choices))})" if choices else "")
    )


# ---------------------------------------------------------------------------------------------- search


async def search_contacts(
    viewer: Viewer, q: str | None, *, limit: int = 25, after_id: int | None = None, segment_where: Any = None
) -> tuple[list[dict[str, Any]], int | None]:
    """Profiles matching `q` (name, phone, e-mail, without diacritics), newest first; merged ones are hidden."""
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    where = ["ct.merged_into_id IS NULL", "ct.erased_at IS NULL"]
    terms = query_terms(q or "")
    if terms:
        if sql.dialect == "sqlite":
            where.append(f"ct.id IN (SELECT rowid FROM contact_fts WHERE contact_fts MATCH {sql.p(fts5_query(terms))})")
        else:
            where.append(f"to_tsvector('simple', ct.search_text) @@ to_tsquery('simple', {sql.p(tsquery(terms))})")
    if not viewer.sees_everything:
        inboxes = sql.marks(sorted(viewer.inbox_ids) or [-1])
        teams = sql.marks(sorted(viewer.team_ids) or [-1])
        where.append(
            f"(ct.id IN (SELECT contact_id FROM contact_identities WHERE inbox_id IN ({inboxes})) "
            f"OR ct.id IN (SELECT contact_id FROM conversations WHERE team_id IN ({teams})))"
        )
    if after_id is not None:
        where.append(f"ct.id < {sql.p(after_id)}")
    if segment_where is not None:  # a saved segment's rules: a function writing SQL over `ct`
        where.append(segment_where(sql))
    rows = await conn.execute_query_dict(
        f"SELECT ct.id FROM contacts ct WHERE {' AND '.join(where)} ORDER BY ct.id DESC LIMIT {int(limit) + 1}",
        sql.params,
    )
    ids = [r["id"] for r in rows]
    more = len(ids) > limit
    ids = ids[:limit]
    contacts = {c.id: c for c in await Contact.filter(id__in=ids)}
    items = [summary_json(contacts[i]) for i in ids if i in contacts]
    return items, (ids[-1] if more and ids else None)
