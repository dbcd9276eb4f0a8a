"""What agents do to conversations. Each action: check (access, input) → do (one transaction, with its
`ConversationEvent`) → notify (publish after commit, to the conversation's readers).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from agents.access import Viewer
from agents.metrics import answers_nothing
from agents.models import InboxMember, RoutingQueueEntry, Team, TeamMember, User
from contacts.models import Contact
from inbox import mentions
from inbox.bus import Event, EventBus
from inbox.http import fail
from inbox.models import STATUSES, Conversation, ConversationLabel, Inbox, Message, OutboxItem
from inbox.outbox import Outbox, WindowClosed
from inbox.processing import preview, record
from inbox.search import fold, index_messages
from inbox.serialize import conversation_json, message_json

MAX_TEXT = 2000  # Messenger's limit for one text message
MAX_LABELS = 20


def now() -> datetime:
    return datetime.now(UTC)


async def readable_conversation(viewer: Viewer, conv_id: int) -> Conversation:
    """The conversation if this viewer may read it; 404 for missing and for other inboxes alike (no leak)."""
    conv = await Conversation.filter(id=conv_id).select_related("contact").first()
    if conv is None or not viewer.can_read(conv.inbox_id, conv.team_id):
        fail(404, "not_found", "conversation not found")
    return conv


async def _publish_conversation(bus: EventBus, conv: Conversation, kind: str = "conversation.updated") -> None:
    contact = await Contact.get(id=conv.contact_id)
    await bus.publish(Event(kind, conversation_json(conv, contact), inbox_id=conv.inbox_id, team_id=conv.team_id))


async def reply(
    bus: EventBus,
    outbox: Outbox,
    viewer: Viewer,
    conv: Conversation,
    text: str,
    *,
    private: bool,
    mention_ids: object = None,
) -> Message:
    """`mention_ids` (a private note's only): colleagues who may read the conversation, told once it is stored."""
    text = (text or "").strip()
    if not text:
        fail(422, "empty_text", "text must not be empty")
    if len(text) > MAX_TEXT:
        fail(422, "text_too_long", f"text is limited to {MAX_TEXT} characters")
    mentioned = await mentions.check_mentions(conv, mention_ids, private=private)
    inbox = await Inbox.get(id=conv.inbox_id)
    msg = await send_outgoing(
        bus, outbox, inbox, conv, text, sender_type="agent", user_id=viewer.user_id, private=private,
        mention_ids=mentioned,
    )  # fmt: skip
    if msg.delivery_status == "pending":
        await outbox.wait_first_attempt(msg.id, wait_seconds=3.0)
        await msg.refresh_from_db()
    return msg


async def send_outgoing(
    bus: EventBus,
    outbox: Outbox,
    inbox: Inbox,
    conv: Conversation,
    text: str,
    *,
    sender_type: str,
    user_id: int | None,
    private: bool = False,
    extra: dict | None = None,
    mention_ids: Sequence[int] = (),  # checked by the caller (`mentions.check_mentions`)
) -> Message:
    """Store an outgoing message (agent or bot) with its event and outbox item in one transaction, then publish.

    A message the channel's window refuses is stored as failed with the reason, so people see why.
    """
    at = now()
    refusal: str | None = None
    async with in_transaction() as conn:
        msg = Message(
            conversation_id=conv.id,
            inbox_id=conv.inbox_id,
            direction="out",
            sender_type=sender_type,
            sender_user_id=user_id,
            origin="hopthu",
            text=text,
            private=private,
            created_at=at,
            delivery_status=None if private else "pending",
            search_text=fold(text),
            extra=extra or {},
        )
        if not private:
            try:
                outbox.plan(inbox, conv, msg, at)
            except WindowClosed as closed:
                refusal = closed.reason
                msg.delivery_status, msg.failure_reason = "failed", refusal
        await msg.save(using_db=conn)
        if not private and refusal is None:
            await OutboxItem.create(using_db=conn, message_id=msg.id, inbox_id=conv.inbox_id, next_attempt_at=at)
        kind = "note" if private else "message_out"
        facts: dict[str, object] = {}
        if refusal is not None:
            facts["refused"] = True  # stored as failed, never sent: the customer got no answer
        if (bot := (extra or {}).get("bot")) and isinstance(bot, dict) and bot.get("kind"):
            facts["bot_kind"] = bot["kind"]  # a welcome or away message is no answer (agents/metrics.py)
        await record(conn, conv, kind, sender_type, user_id, at, msg.id, origin="hopthu", **facts)
        conv.last_activity_at = at
        # The last message is the last one exchanged: a refused reply never left, and a welcome or away message
        # answers nothing, so the customer's words stay last and the conversation stays waiting (agents/live.py).
        if not private and not answers_nothing(facts):
            conv.last_message_at, conv.last_message_preview = at, preview(text, [])
        await conv.save(using_db=conn, update_fields=["last_activity_at", "last_message_at", "last_message_preview"])
        await index_messages(conn, [(msg.id, msg.search_text)])
        mentioned = await mentions.store(conn, msg, mention_ids, user_id) if mention_ids else []
    await bus.publish(Event("message.created", message_json(msg), inbox_id=conv.inbox_id, team_id=conv.team_id))
    await _publish_conversation(bus, conv)
    await mentions.notify(bus, mentioned, msg)
    if not private and refusal is None:
        outbox.notify()
    return msg


async def assign(
    bus: EventBus, viewer: Viewer, conv: Conversation, agent_id: int | None, team_id: int | None
) -> Conversation:
    # Agents may take a conversation themselves or give it up; assigning others is for supervisors.
    if agent_id not in (None, viewer.user_id) and not viewer.has_role("supervisor"):
        fail(403, "forbidden", "only supervisors and admins assign conversations to others")
    if team_id != conv.team_id and not viewer.has_role("supervisor"):
        fail(403, "forbidden", "only supervisors and admins move conversations between teams")
    if agent_id is not None:
        agent = await User.get_or_none(id=agent_id, is_active=True)
        if agent is None:
            fail(422, "unknown_agent", "agent_id does not name an active user")
        if agent.role == "agent" and not await _agent_may_read(agent.id, conv, team_id):
            fail(422, "agent_not_member", "that agent is not a member of this conversation's inbox or team")
    if team_id is not None and team_id != conv.team_id and not await Team.exists(id=team_id):
        fail(422, "unknown_team", "team_id does not name a team")
    at = now()
    previous = {"agent_id": conv.assignee_id, "team_id": conv.team_id}
    async with in_transaction() as conn:
        conv.assignee_id, conv.team_id = agent_id, team_id
        conv.last_activity_at = max(conv.last_activity_at, at)
        await conv.save(using_db=conn, update_fields=["assignee_id", "team_id", "last_activity_at"])
        await record(
            conn,
            conv,
            "assigned",
            "agent",
            viewer.user_id,
            at,
            agent_id=agent_id,
            team_id=team_id,
            previous=previous,
            reason="manual",
        )
    await _publish_conversation(bus, conv, "conversation.assigned")
    if previous["team_id"] is not None and previous["team_id"] != team_id:
        await _tell_lost_readers(bus, conv, previous["team_id"], team_id)
    return conv


async def delete_team(bus: EventBus, viewer: Viewer, team_id: int) -> bool:
    """Delete the team; its conversations are left without a team, recorded and told as a move out of it would be
    (`assign` with no team): their readers get `conversation.updated`, the agents who read them only through this
    team `conversation.removed`. False when there is no such team."""
    members = await TeamMember.filter(team_id=team_id, user__role="agent").values_list("user_id", flat=True)
    at = now()
    async with in_transaction() as conn:
        convs = await Conversation.filter(team_id=team_id).using_db(conn)
        await Conversation.filter(team_id=team_id).using_db(conn).update(team_id=None)
        for conv in convs:
            conv.team_id = None
            previous = {"agent_id": conv.assignee_id, "team_id": team_id}
            await record(
                conn, conv, "assigned", "agent", viewer.user_id, at,
                agent_id=conv.assignee_id, team_id=None, previous=previous, reason="team_deleted",
            )  # fmt: skip
        # Inboxes routed to this team route to their own agents again, with the team's queue among them.
        for inbox in await Inbox.all().using_db(conn).select_for_update().only("id", "settings"):
            routing = (inbox.settings or {}).get("routing") or {}
            if routing.get("team_id") == team_id:
                inbox.settings = {**inbox.settings, "routing": {**routing, "team_id": None}}
                await inbox.save(using_db=conn, update_fields=["settings"])
        await RoutingQueueEntry.filter(team_id=team_id).using_db(conn).update(team_id=None)
        deleted = await Team.filter(id=team_id).using_db(conn).delete()
    for conv in convs:
        await _publish_conversation(bus, conv)
        await _tell_lost_readers(bus, conv, team_id, None, members=members)
    return bool(deleted)


async def _tell_lost_readers(
    bus: EventBus, conv: Conversation, old_team: int, new_team: int | None, *, members: list[int] | None = None
) -> None:
    """The agents who read the conversation only through the team it left get `conversation.removed` (its id, no
    more): the move's own frame is no longer theirs to read, and their lists would keep it. `members`: the old
    team's agents, read by the caller when the team is gone by now."""
    if members is None:
        members = await TeamMember.filter(team_id=old_team, user__role="agent").values_list("user_id", flat=True)
    if not members:
        return
    still = set(await InboxMember.filter(inbox_id=conv.inbox_id, user_id__in=members).values_list("user_id", flat=True))
    if new_team is not None:
        still |= set(await TeamMember.filter(team_id=new_team, user_id__in=members).values_list("user_id", flat=True))
    lost = frozenset(members) - still
    if lost:
        await bus.publish(Event("conversation.removed", {"id": conv.id}, team_id=old_team, user_ids=lost))


async def _agent_may_read(agent_id: int, conv: Conversation, team_id: int | None) -> bool:
    if await InboxMember.exists(user_id=agent_id, inbox_id=conv.inbox_id):
        return True
    return team_id is not None and await TeamMember.exists(user_id=agent_id, team_id=team_id)


async def set_status(
    bus: EventBus, viewer: Viewer, conv: Conversation, status: str, snoozed_until: datetime | None
) -> Conversation:
    if status not in STATUSES:
        fail(422, "invalid_status", f"status must be one of {', '.join(STATUSES)}")
    at = now()
    if status == "snoozed":
        if snoozed_until is None or snoozed_until <= at:
            fail(422, "invalid_snooze", "snoozed needs snoozed_until in the future")
    else:
        snoozed_until = None
    previous = conv.status
    async with in_transaction() as conn:
        conv.status, conv.snoozed_until = status, snoozed_until
        conv.last_activity_at = max(conv.last_activity_at, at)
        await conv.save(using_db=conn, update_fields=["status", "snoozed_until", "last_activity_at"])
        await record(
            conn, conv, "status_changed", "agent", viewer.user_id, at, previous=previous, status=status, reason="manual"
        )
    await _publish_conversation(bus, conv)
    return conv


async def set_labels(bus: EventBus, viewer: Viewer, conv: Conversation, labels: list[str]) -> Conversation:
    cleaned: list[str] = []
    for label in labels:
        if not isinstance(label, str) or not label.strip() or len(label.strip()) > 100:
            fail(422, "invalid_label", "labels are non-empty strings of at most 100 characters")
        if label.strip() not in cleaned:
            cleaned.append(label.strip())
    if len(cleaned) > MAX_LABELS:
        fail(422, "too_many_labels", f"at most {MAX_LABELS} labels")
    at = now()
    previous = list(conv.labels or [])
    async with in_transaction() as conn:
        await ConversationLabel.filter(conversation_id=conv.id).using_db(conn).delete()
        if cleaned:
            await ConversationLabel.bulk_create(
                [ConversationLabel(conversation_id=conv.id, label=label) for label in cleaned], using_db=conn
            )
        conv.labels = cleaned
        await conv.save(using_db=conn, update_fields=["labels"])
        await record(conn, conv, "labels_changed", "agent", viewer.user_id, at, previous=previous, labels=cleaned)
    await _publish_conversation(bus, conv)
    return conv


async def mark_read(bus: EventBus, viewer: Viewer, conv: Conversation) -> Conversation:
    if conv.unread_count:
        conv.unread_count = 0
        await conv.save(update_fields=["unread_count"])
        await _publish_conversation(bus, conv)
    return conv


async def wake_snoozed(bus: EventBus) -> int:
    """Snoozed conversations whose time has come are open again (run periodically)."""
    at = now()
    due = await Conversation.filter(status="snoozed", snoozed_until__lte=at)
    for conv in due:
        async with in_transaction() as conn:
            changed = (
                await Conversation.filter(id=conv.id, status="snoozed")
                .using_db(conn)
                .update(status="open", snoozed_until=None, last_activity_at=at)
            )
            if not changed:
                continue
            conv.status, conv.snoozed_until, conv.last_activity_at = "open", None, at
            await record(
                conn,
                conv,
                "status_changed",
                "system",
                None,
                at,
                previous="snoozed",
                status="open",
                reason="snooze_ended",
            )
        await _publish_conversation(bus, conv)
    return len(due)
