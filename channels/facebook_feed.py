"""Facebook Page comments: the webhook field `feed` (entry[].changes[]), parsed into channel events.

Times here are **seconds** (milliseconds in Messenger). Ids are strings: `post_id` = PAGEID_POSTID,
`comment_id` = POSTID_COMMENTID, `parent_id` = the post for a top-level comment or the parent comment for a reply.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from channels.events import Attachment, InboundMessage, MessageEdit, MessageRemoval, Unrecognized, from_seconds
from channels.payload import dig, id_of, str_of, unrecognized

CHANNEL = "facebook"
ADD_VERBS = frozenset({"add"})
EDIT_VERBS = frozenset({"edited", "edit"})
REMOVE_VERBS = frozenset({"remove", "delete"})
# Known and deliberately not turned into messages: the page's moderation done elsewhere, and reactions/likes.
QUIET_VERBS = frozenset({"hide", "unhide", "block", "unblock", "like", "unlike"})
QUIET_ITEMS = frozenset({"reaction", "like", "post", "status", "photo", "video", "share", "event", "album"})
_SECONDS = re.compile(r"\d{1,12}")

FeedEvent = InboundMessage | MessageEdit | MessageRemoval | Unrecognized


def thread_key(post_id: str) -> str:
    """One comment conversation per customer per post."""
    return f"post:{post_id}"


def parse_change(change: Any, page: str | None, entry_time: Any) -> list[FeedEvent]:
    """One `changes[]` item: a list of zero (reactions, likes, page posts) or one event."""
    if not isinstance(change, dict):
        return [unrecognized(CHANNEL, page, "change is not an object", change)]
    if change.get("field") != "feed":
        return [unrecognized(CHANNEL, page, f"unsupported change field {change.get('field')!r}", change)]
    value = change.get("value")
    if not isinstance(value, dict):
        return [unrecognized(CHANNEL, page, "feed change without a value object", change)]
    item, verb = str_of(value.get("item")), str_of(value.get("verb"))
    if item != "comment":
        if item in QUIET_ITEMS:
            return []
        return [unrecognized(CHANNEL, page, f"unsupported feed item {item!r}", change)]
    if verb in QUIET_VERBS:
        return []
    comment_id, post_id = id_of(value.get("comment_id")), id_of(value.get("post_id")) or id_of(dig(value, "post", "id"))
    author = id_of(dig(value, "from", "id"))
    if page is None or comment_id is None or post_id is None:
        return [unrecognized(CHANNEL, page, "comment without page, comment_id or post_id", change)]
    created = _seconds(value.get("created_time"))
    changed = _entry_time(entry_time) or created  # edits and removals: when the change happened
    if verb in ADD_VERBS:
        if created is None or author is None:
            return [unrecognized(CHANNEL, page, "comment without author or created_time", change)]
        return [_comment(value, page, author, comment_id, post_id, created)]
    if verb in EDIT_VERBS or verb in REMOVE_VERBS:
        if changed is None:
            return [unrecognized(CHANNEL, page, "comment change without a time", change)]
        contact = author if author and author != page else ""
        if verb in EDIT_VERBS:
            return [MessageEdit(
                channel=CHANNEL, account_id=page, contact_external_id=contact, external_id=comment_id,
                text=str_of(value.get("message")), occurred_at=changed,
                direction="out" if author == page else "in",
            )]  # fmt: skip
        return [MessageRemoval(
            channel=CHANNEL, account_id=page, contact_external_id=contact, external_id=comment_id,
            occurred_at=changed,
        )]  # fmt: skip
    return [unrecognized(CHANNEL, page, f"unsupported comment verb {verb!r}", change)]


def _comment(
    value: dict[str, Any], page: str, author: str, comment_id: str, post_id: str, created: datetime
) -> InboundMessage:
    own = author == page  # the page's own comments come back too: outgoing, never a customer's message
    post = value.get("post") if isinstance(value.get("post"), dict) else {}
    photo = str_of(value.get("photo"))
    video = str_of(value.get("video"))
    attachments = tuple(Attachment(kind=kind, url=url) for kind, url in (("image", photo), ("video", video)) if url)
    context = {
        "post_id": post_id,
        "parent_id": id_of(value.get("parent_id")),
        "post_text": str_of(post.get("message")),
        "permalink": str_of(post.get("permalink_url")),
        "hidden": value.get("is_hidden") is True,
    }
    return InboundMessage(
        channel=CHANNEL, account_id=page, contact_external_id="" if own else author, external_id=comment_id,
        occurred_at=created, text=str_of(value.get("message")), attachments=attachments,
        direction="out" if own else "in", thread_key=thread_key(post_id),
        thread_context={k: v for k, v in context.items() if v is not None},
        contact_name=None if own else str_of(dig(value, "from", "name")),
    )  # fmt: skip


def _entry_time(value: Any) -> datetime | None:
    """`entry.time` is seconds for feed changes, but be lenient: a 13-digit value is milliseconds."""
    if isinstance(value, int | str) and not isinstance(value, bool) and len(str(value)) >= 13:
        value = int(str(value)) // 1000 if str(value).isdigit() else value
    return _seconds(value)


def _seconds(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and not _SECONDS.fullmatch(value):
        return None
    try:
        return from_seconds(value)
    except (ValueError, OverflowError, OSError):
        return None
