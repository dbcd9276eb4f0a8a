"""@mentions in private notes: an agent names a colleague who may read the conversation, and that colleague is told.

check (`mentionable_ids`, `check_mentions`: who may be named) → do (`store`, in the note's own transaction) →
notify (`notify`, after commit, addressed only to the people named). The mentioned user's list and its read marks
(`list_mentions`, `mark_read`) touch only that user's own rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from agents.access import Viewer
from agents.models import InboxMember, TeamMember, User
from inbox.bus import Event, EventBus
from inbox.http import fail, is_id
from inbox.models import Conversation, Mention, Message
from inbox.serialize import iso

MAX_MENTIONS = 20  # one note asking the whole staff is a broadcast, not a mention
EXCERPT_LENGTH = 140
MENTION_CREATED = "mention.created"
MENTION_READ = "mention.read"


async def mentionable_ids(conv: Conversation) -> set[int]:
    """Active staff who may read the conversation: the rule `Viewer.can_read` applies (supervisors and admins read
    every inbox; agents read their inboxes and their teams' conversations)."""
    readers = Q(role__in=("supervisor", "admin"))
    inbox_members = InboxMember.filter(inbox_id=conv.inbox_id).values_list("user_id", flat=True)
    members = set(await inbox_members)
    if conv.team_id is not None:
        members |= set(await TeamMember.filter(team_id=conv.team_id).values_list("user_id", flat=True))
    if members:
        readers |= Q(id__in=sorted(members))
    return set(await User.filter(readers, is_active=True).values_list("id", flat=True))


async def mentionable_users(conv: Conversation) -> list[dict[str, Any]]:
    ids = await mentionable_ids(conv)
    return await User.filter(id__in=sorted(ids)).order_by("name", "id").values("id", "name", "role")


async def check_mentions(conv: Conversation, raw: object, *, private: bool) -> list[int]:
    """The distinct ids to mention, or a 4xx before anything is stored: only a private note mentions, and only
    people who may read the conversation."""
    if raw is None:
        return []
    if not private:
        fail(422, "mentions_need_private", "mention_ids is only accepted with a private note (private: true)")
    if not isinstance(raw, list):
        fail(400, "invalid_body", "mention_ids must be a list of user ids")
    if not all(is_id(value) for value in raw):
        fail(422, "invalid_mention", "mention_ids must be ids of staff who may read this conversation")
    ids = list(dict.fromkeys(raw))  # duplicates collapse, the order kept
    if len(ids) > MAX_MENTIONS:
        fail(422, "too_many_mentions", f"a note mentions at most {MAX_MENTIONS} people")
    if ids and not set(ids) <= await mentionable_ids(conv):
        fail(422, "invalid_mention", "mention_ids must be ids of active staff who may read this conversation")
    return ids


async def store(conn: BaseDBAsyncClient, msg: Message, user_ids: list[int], author_id: int | None) -> list[Mention]:
    """The note's mentions, in its transaction. Naming oneself is allowed and leaves nothing to notice."""
    rows = [
        Mention(message_id=msg.id, conversation_id=msg.conversation_id, user_id=user_id, created_at=msg.created_at)
        for user_id in user_ids
        if user_id != author_id
    ]
    for row in rows:
        await row.save(using_db=conn)
    return rows


def excerpt(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"


async def notify(bus: EventBus, mentions: list[Mention], msg: Message) -> None:
    """After commit: each mentioned user, and nobody else, gets `mention.created` on their sockets."""
    if not mentions:
        return
    author = await User.get_or_none(id=msg.sender_user_id).only("id", "name") if msg.sender_user_id else None
    by = {"id": author.id, "name": author.name} if author else None
    for mention in mentions:
        data = {
            "id": mention.id,
            "conversation_id": mention.conversation_id,
            "message_id": mention.message_id,
            "by": by,
            "excerpt": excerpt(msg.text),
            "created_at": iso(mention.created_at),
        }
        await bus.publish(Event(MENTION_CREATED, data, user_ids=frozenset({mention.user_id})))


def _own(viewer: Viewer) -> QuerySet[Mention]:
    """The viewer's mentions in conversations they may still read: an agent moved out of an inbox no longer sees
    its customers' names or notes through old mentions."""
    query = Mention.filter(user_id=viewer.user_id)
    if not viewer.sees_everything:
        readable = Q(conversation__inbox_id__in=sorted(viewer.inbox_ids))
        query = query.filter(readable | Q(conversation__team_id__in=sorted(viewer.team_ids)))
    return query


async def unread_count(viewer: Viewer) -> int:
    return await _own(viewer).filter(read_at__isnull=True).count()


async def list_mentions(
    viewer: Viewer, *, unread_only: bool, limit: int, cursor: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first; `cursor` is the last id of the previous page."""
    query = _own(viewer)
    if unread_only:
        query = query.filter(read_at__isnull=True)
    if cursor is not None:
        query = query.filter(id__lt=cursor)
    page = await query.order_by("-id").limit(limit + 1).select_related("message", "conversation__contact")
    more = len(page) > limit
    page = page[:limit]
    authors = await _names({m.message.sender_user_id for m in page if m.message.sender_user_id})
    items = [_mention_json(m, authors) for m in page]
    return items, page[-1].id if more and page else None


async def _names(user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict(await User.filter(id__in=sorted(user_ids)).values_list("id", "name"))


def _mention_json(mention: Mention, authors: dict[int, str]) -> dict[str, Any]:
    author_id = mention.message.sender_user_id
    return {
        "id": mention.id,
        "conversation_id": mention.conversation_id,
        "message_id": mention.message_id,
        "contact_name": mention.conversation.contact.name,
        "by": {"id": author_id, "name": authors.get(author_id, "")} if author_id else None,
        "excerpt": excerpt(mention.message.text),
        "created_at": iso(mention.created_at),
        "read_at": iso(mention.read_at),
    }


async def mark_read(
    bus: EventBus,
    viewer: Viewer,
    at: datetime,
    *,
    ids: list[int] | None = None,
    conversation_id: int | None = None,
    everything: bool = False,
) -> int:
    """Mark the viewer's own unread mentions read — these ids (others' match nothing), one conversation's, or
    `everything` (the list's "mark all read") — and tell the viewer's other pages."""
    query = Mention.filter(user_id=viewer.user_id, read_at__isnull=True)
    if ids is not None:
        query = query.filter(id__in=ids)
    elif conversation_id is not None:
        query = query.filter(conversation_id=conversation_id)
    elif not everything:
        raise ValueError("mark_read needs ids, a conversation_id or everything=True")
    marked = await query.values_list("id", flat=True)
    if not marked:
        return 0
    await Mention.filter(id__in=marked, read_at__isnull=True).update(read_at=at)
    data = {"ids": sorted(marked), "read_at": iso(at)}
    await bus.publish(Event(MENTION_READ, data, user_ids=frozenset({viewer.user_id})))
    return len(marked)
