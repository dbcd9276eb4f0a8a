"""The inbox's tables: channel inboxes, conversations, messages, the append-only conversation events, the
durable inbound log, dead letters and the outbox.

Models hold data only: no save hooks. Every change goes through a service function that also appends a
`ConversationEvent` and publishes after commit.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

CHANNELS = ("facebook", "zalo", "telegram", "webchat")
STATUSES = ("open", "pending", "snoozed", "resolved")
DELIVERY_STATUSES = ("pending", "sent", "delivered", "read", "failed")


class Inbox(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    channel = fields.CharField(max_length=20)
    # The platform's id of the account: page id, OA id, bot id, widget token.
    external_id = fields.CharField(max_length=128)
    credentials = fields.JSONField(default=dict)
    settings = fields.JSONField(default=dict)
    # "active", or "needs_reauth" when the platform refused our credentials (a refused Zalo token refresh):
    # shown to admins instead of failing silently.
    state = fields.CharField(max_length=20, default="active")
    state_reason = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "inboxes"
        unique_together = (("channel", "external_id"),)


class Conversation(Model):
    id = fields.IntField(primary_key=True)
    inbox = fields.ForeignKeyField("hopthu.Inbox", related_name="conversations", on_delete=fields.CASCADE)
    contact = fields.ForeignKeyField("hopthu.Contact", related_name="conversations", on_delete=fields.CASCADE)
    identity = fields.ForeignKeyField("hopthu.ContactIdentity", related_name="conversations", on_delete=fields.CASCADE)
    channel = fields.CharField(max_length=20)
    # One thread per identity and key: "dm" for direct messages; comments add "post:<id>" later.
    thread_key = fields.CharField(max_length=128, default="dm")
    # What a non-DM thread is about, shown to the agent: for comments {post_id, text, permalink}.
    thread_context = fields.JSONField(null=True)
    status = fields.CharField(max_length=20, default="open")
    snoozed_until = fields.DatetimeField(null=True)
    assignee = fields.ForeignKeyField(
        "hopthu.User", related_name="assigned_conversations", null=True, on_delete=fields.SET_NULL
    )
    team = fields.ForeignKeyField("hopthu.Team", related_name="conversations", null=True, on_delete=fields.SET_NULL)
    labels = fields.JSONField(default=list)  # denormalised copy of ConversationLabel for one-query pages
    last_message_at = fields.DatetimeField(null=True)
    last_message_preview = fields.CharField(max_length=200, default="")
    last_incoming_at = fields.DatetimeField(null=True)  # the customer's last message: platform windows
    # Sort key of the list: newest activity first; ties broken by id for a stable keyset cursor.
    last_activity_at = fields.DatetimeField()
    unread_count = fields.IntField(default=0)
    # The platform's latest delivery and read watermarks (every page message up to them reached / was read by the
    # customer): a page's echo stored after its receipt came (webhooks arrive in any order) takes its status from them.
    delivered_until = fields.DatetimeField(null=True)
    read_until = fields.DatetimeField(null=True)
    # NLP summary of the customer's messages (inbox/enrich.py): latest sentiment, worst one, most frequent intent.
    sentiment = fields.CharField(max_length=10, null=True)
    worst_sentiment = fields.CharField(max_length=10, null=True)
    intent = fields.CharField(max_length=40, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "conversations"
        unique_together = (("inbox", "identity", "thread_key"),)
        indexes = (("last_activity_at", "id"), ("status", "last_activity_at"), ("assignee_id", "last_activity_at"))


class ConversationLabel(Model):
    id = fields.IntField(primary_key=True)
    conversation = fields.ForeignKeyField("hopthu.Conversation", related_name="label_rows", on_delete=fields.CASCADE)
    label = fields.CharField(max_length=100)

    class Meta:
        table = "conversation_labels"
        unique_together = (("conversation", "label"),)
        indexes = (("label",),)


class Message(Model):
    id = fields.IntField(primary_key=True)
    conversation = fields.ForeignKeyField("hopthu.Conversation", related_name="messages", on_delete=fields.CASCADE)
    inbox_id = fields.IntField()  # denormalised: the dedupe key is (inbox, external id)
    direction = fields.CharField(max_length=3)  # in | out
    sender_type = fields.CharField(max_length=10)  # contact | agent | bot | system
    sender_user = fields.ForeignKeyField("hopthu.User", related_name="messages", null=True, on_delete=fields.SET_NULL)
    # Where the message was written: "hopthu" (an agent or bot here) or "platform" (arrived from the platform:
    # the customer's messages, and echoes of what the page sent from the platform's own tools).
    origin = fields.CharField(max_length=10, default="hopthu")
    text = fields.TextField(null=True)
    attachments = fields.JSONField(default=list)
    private = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()  # the platform's own time for inbound messages
    recorded_at = fields.DatetimeField(auto_now_add=True)
    external_id = fields.CharField(max_length=255, null=True)
    delivery_status = fields.CharField(max_length=10, null=True)
    failure_reason = fields.TextField(null=True)
    extra = fields.JSONField(default=dict)  # quick reply / postback payloads, referral, reply_to, comment state
    # Edits by the author: the current text is `text`; earlier versions, oldest first, as {text, until}.
    edit_history = fields.JSONField(null=True)
    edited_at = fields.DatetimeField(null=True)
    removed_at = fields.DatetimeField(null=True)  # the author or the platform removed it (kept, marked)
    sentiment = fields.CharField(max_length=10, null=True)
    sentiment_score = fields.FloatField(null=True)
    intent = fields.CharField(max_length=40, null=True)
    intent_confidence = fields.FloatField(null=True)
    entities = fields.JSONField(default=list)
    search_text = fields.TextField(default="")

    class Meta:
        table = "messages"
        unique_together = (("inbox_id", "external_id"),)
        indexes = (("conversation_id", "id"),)


class ConversationEvent(Model):
    """Append-only facts about a conversation: reports aggregate these rows, never live state."""

    id = fields.BigIntField(primary_key=True)
    conversation = fields.ForeignKeyField("hopthu.Conversation", related_name="events", on_delete=fields.CASCADE)
    inbox_id = fields.IntField()
    kind = fields.CharField(max_length=40)  # opened, reopened, message_in, message_out, assigned, status_changed…
    actor_type = fields.CharField(max_length=10)  # contact | agent | bot | system
    actor_id = fields.IntField(null=True)
    message_id = fields.IntField(null=True)
    data = fields.JSONField(default=dict)
    occurred_at = fields.DatetimeField()
    recorded_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "conversation_events"
        indexes = (("conversation_id", "occurred_at"), ("kind", "occurred_at"))


class InboundEvent(Model):
    """The durable log a webhook writes before it answers 200, processed into messages off the ack path.

    The unique key makes a redelivered event a no-op insert.
    """

    id = fields.BigIntField(primary_key=True)
    inbox = fields.ForeignKeyField("hopthu.Inbox", related_name="inbound_events", on_delete=fields.CASCADE)
    channel = fields.CharField(max_length=20)
    dedupe_key = fields.CharField(max_length=255)
    record = fields.JSONField()
    processed = fields.BooleanField(default=False)
    error = fields.TextField(null=True)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "inbound_events"
        unique_together = (("inbox", "dedupe_key"),)
        indexes = (("processed", "id"),)


class DeadLetter(Model):
    """A signed event nobody understood, kept raw so an admin can see it and nothing is lost."""

    id = fields.IntField(primary_key=True)
    channel = fields.CharField(max_length=20)
    inbox = fields.ForeignKeyField("hopthu.Inbox", related_name="dead_letters", null=True, on_delete=fields.SET_NULL)
    account_id = fields.CharField(max_length=128, null=True)
    reason = fields.TextField()
    payload = fields.JSONField()
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "dead_letters"


class OutboxItem(Model):
    """A reply waiting to reach the platform, retried with backoff until sent or refused for good."""

    id = fields.IntField(primary_key=True)
    message = fields.OneToOneField("hopthu.Message", related_name="outbox", on_delete=fields.CASCADE)
    inbox_id = fields.IntField()
    state = fields.CharField(max_length=10, default="pending")  # pending | sent | failed
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "outbox"
        indexes = (("state", "next_attempt_at"),)


class ZaloToken(Model):
    """The OA's current token pair. Zalo refresh tokens work once: the row changes only by compare-and-swap on
    `refresh_token`, and `refresh_lease_until` lets one process at a time spend it."""

    inbox = fields.OneToOneField("hopthu.Inbox", related_name="zalo_token", on_delete=fields.CASCADE, primary_key=True)
    access_token = fields.TextField()
    refresh_token = fields.TextField()
    expires_at = fields.DatetimeField()
    refresh_lease_until = fields.DatetimeField(null=True)
    refreshed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "zalo_tokens"


class EarlyReceipt(Model):
    """A platform's "received"/"seen" for message ids we do not know yet: Zalo may report on a reply before the
    outbox has written down the id its send answered with. Applied when the outbox records that id; kept for
    `inbox.processing.EARLY_RECEIPT_TTL` at most."""

    id = fields.BigIntField(primary_key=True)
    inbox_id = fields.IntField()
    external_id = fields.CharField(max_length=255)
    status = fields.CharField(max_length=10)  # delivered | read
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "early_receipts"
        indexes = (("inbox_id", "external_id"), ("received_at",))


class Mention(Model):
    """A colleague named in a private note (`@Name`): they are told, and it waits in their list until read.

    Goes with its message and its conversation (cascades), and with the customer's data on erasure."""

    id = fields.IntField(primary_key=True)
    message = fields.ForeignKeyField("hopthu.Message", related_name="mentions", on_delete=fields.CASCADE)
    conversation = fields.ForeignKeyField("hopthu.Conversation", related_name="mentions", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("hopthu.User", related_name="mentions", on_delete=fields.CASCADE)
    created_at = fields.DatetimeField()
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "mentions"
        unique_together = (("message", "user"),)
        # The caller's list, newest first (and its unread count); marking a conversation's mentions read.
        indexes = (("user_id", "id"), ("conversation_id", "user_id"))
