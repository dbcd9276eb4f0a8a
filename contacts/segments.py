"""Saved dynamic segments: rules over the profile, RFM and orders, evaluated when used (never a stale list).

Rules (all optional, all must hold): `rfm_segment` [names], `spend_tier` [names], `tags_any` [tags], `city`,
`gender`, `channel`, `min_orders`, `min_revenue` (VND), `birthday_month` (1–12). A segment is used as
`?segment=<id>` on the contact list and the conversation list; `rfm:<name>` uses an RFM segment directly.
`tags_any` and `city` match as search does: without case, diacritics or Unicode form ('VIP' finds 'vip').
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contacts.models import Contact, Segment
from contacts.normalize import InvalidValue, normalize_gender
from contacts.rfm import SEGMENTS, SPEND_TIERS
from inbox.db import connection
from inbox.http import digits_id
from inbox.search import fold
from inbox.sql import Sql

RULE_KEYS = (
    "rfm_segment",
    "spend_tier",
    "tags_any",
    "city",
    "gender",
    "channel",
    "min_orders",
    "min_revenue",
    "birthday_month",
)


class SegmentError(ValueError):
    pass


def clean_rules(rules: Any) -> dict[str, Any]:
    if not isinstance(rules, dict) or not rules:
        raise SegmentError("rules must be a non-empty object")
    unknown = set(rules) - set(RULE_KEYS)
    if unknown:
        raise SegmentError(f"unknown rules: {', '.join(sorted(unknown))}; known: {', '.join(RULE_KEYS)}")
    for key, allowed in (("rfm_segment", SEGMENTS), ("spend_tier", [t for t, _ in SPEND_TIERS])):
        if key in rules:
            values = rules[key]
            if not isinstance(values, list) or not values or any(v not in allowed for v in values):
                raise SegmentError(f"{key} must be a list of: {', '.join(allowed)}")
    if "tags_any" in rules and not (
        isinstance(rules["tags_any"], list) and all(isinstance(t, str) for t in rules["tags_any"])
    ):
        raise SegmentError("tags_any must be a list of tags")
    for key in ("city", "gender", "channel"):
        if key in rules and not isinstance(rules[key], str):
            raise SegmentError(f"{key} must be a string")
    for key in ("min_orders", "min_revenue", "birthday_month"):
        if key in rules and (not isinstance(rules[key], int) or isinstance(rules[key], bool) or rules[key] < 0):
            raise SegmentError(f"{key} must be a non-negative integer")
    if "birthday_month" in rules and not 1 <= rules["birthday_month"] <= 12:
        raise SegmentError("birthday_month must be from 1 to 12")
    if rules.get("gender"):
        try:
            rules = {**rules, "gender": normalize_gender(rules["gender"])}  # stored as male | female | other
        except InvalidValue as exc:
            raise SegmentError(str(exc)) from exc
    return rules


def where_sql(rules: dict[str, Any], sql: Sql, alias: str = "ct") -> str:
    """A WHERE fragment over the contacts table aliased `alias`."""
    parts: list[str] = [f"{alias}.merged_into_id IS NULL", f"{alias}.erased_at IS NULL"]
    if rules.get("rfm_segment"):
        marks = sql.marks(rules["rfm_segment"])
        parts.append(f"{alias}.id IN (SELECT contact_id FROM contact_scores WHERE segment IN ({marks}))")
    if rules.get("spend_tier"):
        marks = sql.marks(rules["spend_tier"])
        parts.append(f"{alias}.id IN (SELECT contact_id FROM contact_scores WHERE spend_tier IN ({marks}))")
    if rules.get("min_orders"):
        parts.append(
            f"{alias}.id IN (SELECT contact_id FROM contact_scores WHERE frequency >= {sql.p(rules['min_orders'])})"
        )
    if rules.get("min_revenue"):
        parts.append(
            f"{alias}.id IN (SELECT contact_id FROM contact_scores WHERE monetary >= {sql.p(rules['min_revenue'])})"
        )
    if "tags_any" in rules:  # the stored spellings of the tags (see `_resolved`)
        ors = []
        for tag in rules["tags_any"]:
            ors.append(sql.json_list_has(f"{alias}.tags", tag))
        parts.append("(" + " OR ".join(ors) + ")" if ors else "1 = 0")
    if isinstance(rules.get("city"), list):  # the stored spellings of the city (see `_resolved`)
        parts.append(f"{alias}.city IN ({sql.marks(rules['city'])})" if rules["city"] else "1 = 0")
    elif rules.get("city"):
        parts.append(f"{alias}.city = {sql.p(rules['city'])}")
    if rules.get("gender"):
        parts.append(f"{alias}.gender = {sql.p(rules['gender'])}")
    if rules.get("channel"):
        parts.append(
            f"{alias}.id IN (SELECT contact_id FROM contact_identities WHERE channel = {sql.p(rules['channel'])})"
        )
    if rules.get("birthday_month"):
        month = f"{int(rules['birthday_month']):02d}"
        if sql.dialect == "sqlite":
            parts.append(f"strftime('%m', {alias}.birthday) = {sql.p(month)}")
        else:
            parts.append(f"to_char({alias}.birthday, 'MM') = {sql.p(month)}")
    return "(" + " AND ".join(parts) + ")"


async def rules_of(ref: str) -> dict[str, Any]:
    if ref.startswith("rfm:"):
        name = ref[4:]
        if name not in SEGMENTS:
            raise SegmentError(f"unknown RFM segment {name!r}")
        return {"rfm_segment": [name]}
    segment_id = digits_id(ref)
    if segment_id is None:
        raise SegmentError("segment must be a saved segment id or rfm:<segment name>")
    segment = await Segment.get_or_none(id=segment_id)
    if segment is None:
        raise SegmentError("no such segment")
    return await _resolved(segment.rules)


async def _resolved(rules: dict[str, Any]) -> dict[str, Any]:
    """The rules as SQL can match them: a city is matched like search, without case or diacritics ('ha noi' is
    'Hà Nội'), so it becomes the list of stored spellings that fold to it; a gender as written ('nữ') its value."""
    out = dict(rules)
    if rules.get("tags_any"):  # tags alike: 'VIP' is 'vip' and 'Vip', 'khach quen' is 'Khách quen'
        wanted = {fold(tag) for tag in rules["tags_any"]}
        out["tags_any"] = sorted(tag for tag in await _stored_tags() if fold(tag) in wanted)
    else:
        out.pop("tags_any", None)  # an empty list asks for nothing
    if rules.get("city"):
        wanted = fold(rules["city"])
        stored = await Contact.filter(city__not_isnull=True).distinct().values_list("city", flat=True)
        out["city"] = sorted(c for c in stored if fold(c) == wanted)
    if rules.get("gender"):
        try:
            out["gender"] = normalize_gender(rules["gender"])
        except InvalidValue:
            pass  # saved before genders were checked: matches what it says
    return out


async def _stored_tags() -> list[str]:
    """Every distinct tag on a profile, as written."""
    conn = connection()
    if conn.capabilities.dialect == "sqlite":
        query = "SELECT DISTINCT t.value FROM contacts, json_each(contacts.tags) AS t WHERE t.type = 'text'"
    else:
        query = (
            "SELECT DISTINCT jsonb_array_elements_text(tags::jsonb) FROM contacts "
            "WHERE jsonb_typeof(tags::jsonb) = 'array'"
        )
    _, rows = await conn.execute_query(query)
    return [row[0] for row in rows]


async def segment_filter(ref: str, alias: str = "ct") -> Callable[[Sql], str]:
    rules = await rules_of(ref)
    return lambda sql: where_sql(rules, sql, alias)


async def conversation_filter(ref: str, sql: Sql) -> str:
    """For the conversation list: conversations whose contact is in the segment."""
    rules = await rules_of(ref)
    return f"c.contact_id IN (SELECT sg.id FROM contacts sg WHERE {where_sql(rules, sql, 'sg')})"


def segment_json(s: Segment) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "rules": s.rules,
        "created_by_id": s.created_by_id,
        "created_at": s.created_at.isoformat(),
    }
