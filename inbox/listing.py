"""The conversation list: every filter, a keyset cursor, newest activity first, in one SQL query.

Raw SQL because the page must stay one query whatever its size (conversation + contact + labels in one row)
and because search joins the dialect's full-text index.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from agents.access import Viewer
from inbox.db import connection
from inbox.http import digits_id
from inbox.models import STATUSES
from inbox.search import conversation_filter_sql, newest_first_query, query_terms
from inbox.serialize import iso
from inbox.sql import Sql, as_datetime, as_json


class InvalidFilter(ValueError):
    pass


SENTIMENTS = ("negative", "neutral", "positive")


@dataclass(slots=True)
class ListFilters:
    status: str | None = None
    assignee: str | None = None  # me | unassigned | all | <user id>
    inbox_id: int | None = None
    channel: str | None = None
    label: str | None = None
    sentiment: str | None = None  # the latest customer message's sentiment
    worst_sentiment: str | None = None  # the worst sentiment the customer showed in the conversation
    intent: str | None = None
    q: str | None = None
    segment: str | None = None  # a saved contact segment id, or rfm:<segment name> (contacts.segments)
    limit: int = 25
    cursor: str | None = None


def encode_cursor(last_activity_at: datetime, conv_id: int) -> str:
    raw = orjson.dumps([last_activity_at.isoformat(), conv_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, conv_id = orjson.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(stamp).astimezone(UTC), int(conv_id)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise InvalidFilter("cursor is not valid") from exc


async def list_conversations(viewer: Viewer, f: ListFilters) -> tuple[list[dict[str, Any]], str | None]:
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    where: list[str] = []
    search_at, search_param = -1, 0  # where the text search is in `where` (-1: no search)
    if not viewer.sees_everything:
        inbox_ids = sorted(viewer.inbox_ids) or [-1]
        team_ids = sorted(viewer.team_ids) or [-1]
        where.append(f"(c.inbox_id IN ({sql.marks(inbox_ids)}) OR c.team_id IN ({sql.marks(team_ids)}))")
    if f.status:
        if f.status not in STATUSES:
            raise InvalidFilter(f"status must be one of {', '.join(STATUSES)}")
        where.append(f"c.status = {sql.p(f.status)}")
    if f.assignee and f.assignee != "all":
        if f.assignee == "me":
            where.append(f"c.assignee_id = {sql.p(viewer.user_id)}")
        elif f.assignee == "unassigned":
            where.append("c.assignee_id IS NULL")
        elif (assignee_id := digits_id(f.assignee)) is not None:
            where.append(f"c.assignee_id = {sql.p(assignee_id)}")
        else:
            raise InvalidFilter("assignee must be me, unassigned, all or a user id")
    if f.inbox_id is not None:
        where.append(f"c.inbox_id = {sql.p(f.inbox_id)}")
    if f.channel:
        where.append(f"c.channel = {sql.p(f.channel)}")
    if f.label:
        where.append(f"c.id IN (SELECT conversation_id FROM conversation_labels WHERE label = {sql.p(f.label)})")
    for column, value in (("sentiment", f.sentiment), ("worst_sentiment", f.worst_sentiment)):
        if value:
            if value not in SENTIMENTS:
                raise InvalidFilter(f"{column} must be one of {', '.join(SENTIMENTS)}")
            where.append(f"c.{column} = {sql.p(value)}")
    if f.intent:
        where.append(f"c.intent = {sql.p(f.intent)}")
    if f.q:
        terms = query_terms(f.q)
        if terms:
            search_param = len(sql.params) + 1
            fragment, values = conversation_filter_sql(sql.dialect, terms, search_param)
            sql.params.extend(values)
            where.append(fragment)
            search_at = len(where) - 1
    if f.segment:
        from contacts.segments import SegmentError, conversation_filter

        try:
            where.append(await conversation_filter(f.segment, sql))
        except SegmentError as exc:
            raise InvalidFilter(str(exc)) from exc
    if f.cursor:
        stamp, conv_id = decode_cursor(f.cursor)
        a, b, c = sql.p(stamp), sql.p(stamp), sql.p(conv_id)
        where.append(f"(c.last_activity_at < {a} OR (c.last_activity_at = {b} AND c.id < {c}))")
    head = (
        "SELECT c.id, c.inbox_id, c.channel, c.status, c.snoozed_until, c.assignee_id, c.team_id, c.labels, "
        "c.last_message_at, c.last_message_preview, c.last_incoming_at, c.last_activity_at, c.unread_count, "
        "c.sentiment, c.worst_sentiment, c.intent, c.created_at, c.contact_id, ct.name AS contact_name, "
        "ct.picture_url AS contact_picture_url, ct.phone AS contact_phone, ct.email AS contact_email "
        "FROM conversations c JOIN contacts ct ON ct.id = c.contact_id"
    )
    query = (
        head
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY c.last_activity_at DESC, c.id DESC LIMIT {int(f.limit) + 1}"
    )
    if search_at >= 0 and sql.dialect == "postgres":  # a common word: found among the newest in milliseconds
        query = newest_first_query(head, where, search_at, search_param, int(f.limit) + 1, query)
    rows = await conn.execute_query_dict(query, sql.params)
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    items = [_row_json(r) for r in rows]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = encode_cursor(as_datetime(last["last_activity_at"]), last["id"])  # type: ignore[arg-type]
    return items, next_cursor


def _row_json(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "inbox_id": r["inbox_id"],
        "channel": r["channel"],
        "status": r["status"],
        "snoozed_until": iso(as_datetime(r["snoozed_until"])),
        "contact": {
            "id": r["contact_id"],
            "name": r["contact_name"],
            "picture_url": r["contact_picture_url"],
            "phone": r["contact_phone"],
            "email": r["contact_email"],
        },
        "assignee_id": r["assignee_id"],
        "team_id": r["team_id"],
        "labels": list(as_json(r["labels"]) or []),
        "last_message_at": iso(as_datetime(r["last_message_at"])),
        "last_message_preview": r["last_message_preview"],
        "last_incoming_at": iso(as_datetime(r["last_incoming_at"])),
        "last_activity_at": iso(as_datetime(r["last_activity_at"])),
        "unread_count": r["unread_count"],
        "sentiment": r["sentiment"],
        "worst_sentiment": r["worst_sentiment"],
        "intent": r["intent"],
        "created_at": iso(as_datetime(r["created_at"])),
    }
