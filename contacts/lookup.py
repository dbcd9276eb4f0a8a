"""Which stored customer an imported row names: the profile with the shop system's customer code (Mã KH) first,
else the one holding the row's phone, else its e-mail, further phones and e-mails included; the oldest profile
when several match. `known_contact` answers for one row; `KnownContacts` for a chunk of rows in two or three
queries, where one row costs up to four.

A merge keeps only the survivor's own code on it, but the merged profile keeps its row, code included, until the
merge is undone, and the shop's next export still carries both codes: a code found only on a merged profile names
the profile that absorbed it. Undo needs nothing then: each profile has its own code back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from contacts.models import Contact
from inbox.db import connection
from inbox.sql import Sql

EXTERNAL_ID = "external_id"  # the attribute holding the shop system's own customer code (Mã KH)
FURTHER = {"phone": "phones", "email": "emails"}  # the list holding a profile's further values

Key = tuple[str, str]  # ("external_id" | "phone" | "email", value)


def _external_id(sql: Sql) -> str:
    """The profile's customer code, as an SQL expression."""
    if sql.dialect == "sqlite":
        return f"json_extract(attributes, '$.{EXTERNAL_ID}')"
    return f"attributes::jsonb ->> '{EXTERNAL_ID}'"


def _has_value(sql: Sql, kind: str, value: str) -> str:
    """The profile holds `value` as its primary phone / e-mail or as one of its further ones."""
    return f"{kind} = {sql.p(value)} OR {sql.json_list_has(f'contacts.{FURTHER[kind]}', value)}"


def _has_any(sql: Sql, kind: str, values: list[str]) -> list[str]:
    if not values:
        return []
    return [f"{kind} IN ({sql.marks(values)})", *(sql.json_list_has(f"contacts.{FURTHER[kind]}", v) for v in values)]


async def _ids(condition: Callable[[Sql], str], *, merged: bool = False, limit: int | None = None) -> list[int]:
    """Oldest first, the live profiles meeting `condition` (an SQL fragment over `contacts`); with `merged`, the
    profiles merged into another that meet it."""
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    where = condition(sql)
    state = "IS NOT NULL" if merged else "IS NULL"
    query = f"SELECT id FROM contacts WHERE merged_into_id {state} AND erased_at IS NULL AND ({where}) ORDER BY id"
    _, rows = await conn.execute_query(query + (f" LIMIT {limit}" if limit else ""), sql.params)
    return [row[0] for row in rows]


async def _first_contact(condition: Callable[[Sql], str]) -> Contact | None:
    ids = await _ids(condition, limit=1)
    return await Contact.get(id=ids[0]) if ids else None


async def _survivor(contact_id: int, loaded: dict[int, Contact]) -> Contact | None:
    """The live profile that absorbed this merged one, following a merge of a merge (a read per step: rare); the
    copy in `loaded` when there is one, so a chunk of rows changes a single copy of each profile."""
    seen: set[int] = set()
    while contact_id not in seen:
        seen.add(contact_id)
        row = await Contact.filter(id=contact_id).first().values("merged_into_id", "erased_at")
        if row is None or row["erased_at"] is not None:
            return None
        if row["merged_into_id"] is None:
            if contact_id not in loaded:
                loaded[contact_id] = await Contact.get(id=contact_id)
            return loaded[contact_id]
        contact_id = row["merged_into_id"]
    return None


async def _by_external_id(external_id: str) -> Contact | None:
    def has_code(sql: Sql) -> str:
        return f"{_external_id(sql)} = {sql.p(external_id)}"

    if found := await _first_contact(has_code):
        return found
    absorbed = await _ids(has_code, merged=True, limit=1)
    return await _survivor(absorbed[0], {}) if absorbed else None


async def known_contact(
    *, external_id: str | None = None, phone: str | None = None, email: str | None = None
) -> Contact | None:
    """The customer a row names: by the shop system's customer code first (the one key its rows always carry),
    then by any of the profile's phones, then by any of its e-mails."""
    if external_id and (found := await _by_external_id(external_id)):
        return found
    if phone and (found := await _first_contact(lambda sql: _has_value(sql, "phone", phone))):
        return found
    if email:
        return await _first_contact(lambda sql: _has_value(sql, "email", email))
    return None


def _keys(contact: Contact) -> list[Key]:
    attributes: Any = contact.attributes or {}
    values = [(EXTERNAL_ID, attributes.get(EXTERNAL_ID) if isinstance(attributes, dict) else None)]
    for kind, further in FURTHER.items():
        values += [(kind, getattr(contact, kind)), *((kind, v) for v in getattr(contact, further) or [])]
    return [(kind, value) for kind, value in values if isinstance(value, str) and value]


class KnownContacts:
    """The profiles a chunk of rows may name, read at once and kept up to date as the rows create and update
    profiles (`add`), so that each row finds what `known_contact` would find at its turn."""

    def __init__(self) -> None:
        self._holders: dict[Key, Contact] = {}  # the oldest live profile holding each key
        self._absorbed: dict[str, Contact] = {}  # a code found only on a merged profile: the profile that absorbed it

    @classmethod
    async def load(cls, external_ids: Iterable[str], phones: Iterable[str], emails: Iterable[str]) -> KnownContacts:
        known = cls()
        codes, phones, emails = sorted(set(external_ids)), sorted(set(phones)), sorted(set(emails))
        if not (codes or phones or emails):
            return known

        def holds_any(sql: Sql) -> str:
            codes_in = [f"{_external_id(sql)} IN ({sql.marks(codes)})"] if codes else []
            return " OR ".join([*codes_in, *_has_any(sql, "phone", phones), *_has_any(sql, "email", emails)])

        ids = await _ids(holds_any)
        loaded = {c.id: c for c in await Contact.filter(id__in=ids)} if ids else {}
        for contact_id in ids:
            known.add(loaded[contact_id])
        if missing := [code for code in codes if (EXTERNAL_ID, code) not in known._holders]:
            conn = connection()
            sql = Sql(conn.capabilities.dialect)
            _, rows = await conn.execute_query(
                f"SELECT id, {_external_id(sql)} FROM contacts WHERE merged_into_id IS NOT NULL "
                f"AND erased_at IS NULL AND {_external_id(sql)} IN ({sql.marks(missing)}) ORDER BY id",
                sql.params,
            )
            for absorbed_id, code in rows:
                if code not in known._absorbed and (survivor := await _survivor(absorbed_id, loaded)):
                    known._absorbed[code] = survivor
        return known

    def find(self, *, external_id: str | None, phone: str | None, email: str | None) -> Contact | None:
        if external_id and (found := self._holders.get((EXTERNAL_ID, external_id)) or self._absorbed.get(external_id)):
            return found
        if phone and (found := self._holders.get(("phone", phone))):
            return found
        return self._holders.get(("email", email)) if email else None

    def add(self, contact: Contact) -> None:
        """A profile created or changed by a row: later rows find it by its keys (the oldest profile still first)."""
        for key in _keys(contact):
            held = self._holders.get(key)
            if held is None or contact.id < held.id:
                self._holders[key] = contact
