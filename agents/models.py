"""Staff: users with a role, teams, inbox membership and login sessions."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

ROLES = ("agent", "supervisor", "admin")


class User(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    name = fields.CharField(max_length=200, default="")
    role = fields.CharField(max_length=20, default="agent")
    password_hash = fields.CharField(max_length=200)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    password_changed_at = fields.DatetimeField(null=True)
    # Fine-grained rights beyond the role, e.g. "view_contact_pii" (see agents/audit.py for who used them).
    permissions = fields.JSONField(default=list)

    class Meta:
        table = "users"


class Team(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, unique=True)
    # Routing for conversations assigned to the team: {"policy": "round_robin"|"least_busy"|"manual", "capacity"}.
    settings = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "teams"


class TeamMember(Model):
    id = fields.IntField(primary_key=True)
    team = fields.ForeignKeyField("hopthu.Team", related_name="members", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("hopthu.User", related_name="team_memberships", on_delete=fields.CASCADE)

    class Meta:
        table = "team_members"
        unique_together = (("team", "user"),)


class InboxMember(Model):
    id = fields.IntField(primary_key=True)
    inbox = fields.ForeignKeyField("hopthu.Inbox", related_name="members", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("hopthu.User", related_name="inbox_memberships", on_delete=fields.CASCADE)

    class Meta:
        table = "inbox_members"
        unique_together = (("inbox", "user"),)


class AuthSession(Model):
    """A login. Only a hash of the token is stored, so a leaked database does not leak sessions."""

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    csrf_token = fields.CharField(max_length=64)
    user = fields.ForeignKeyField("hopthu.User", related_name="sessions", on_delete=fields.CASCADE)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    revoked = fields.BooleanField(default=False)

    class Meta:
        table = "auth_sessions"


class AuditEntry(Model):
    """Append-only record of sensitive actions: who did what to which thing. Never holds personal data."""

    id = fields.BigIntField(primary_key=True)
    action = fields.CharField(max_length=60)  # login, login_failed, contact.export, contact.erase, contact.merge…
    actor = fields.ForeignKeyField("hopthu.User", related_name="audit_entries", null=True, on_delete=fields.SET_NULL)
    target_type = fields.CharField(max_length=40, null=True)
    target_id = fields.CharField(max_length=64, null=True)
    data = fields.JSONField(default=dict)
    ip = fields.CharField(max_length=64, null=True)
    occurred_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "audit_log"
        indexes = (("action", "occurred_at"),)


class FaqEntry(Model):
    """A question/answer pair the FAQ bot answers from, with the admins' phrasings of the question."""

    id = fields.IntField(primary_key=True)
    inbox = fields.ForeignKeyField("hopthu.Inbox", related_name="faq_entries", on_delete=fields.CASCADE)
    intent = fields.CharField(max_length=40, null=True)  # the nlp intent it answers, when one fits
    questions = fields.JSONField(default=list)
    answer = fields.TextField()
    enabled = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "faq_entries"


class BotSession(Model):
    """The bot's hold on one conversation: answering, or handed to humans (and why)."""

    id = fields.IntField(primary_key=True)
    conversation = fields.OneToOneField("hopthu.Conversation", related_name="bot_session", on_delete=fields.CASCADE)
    state = fields.CharField(max_length=10, default="bot")  # bot | human
    handoff_reason = fields.CharField(max_length=40, null=True)
    low_confidence_streak = fields.IntField(default=0)
    answers = fields.IntField(default=0)
    recent_replies = fields.JSONField(default=list)  # epoch seconds of the bot's last replies: the rate limit
    welcomed = fields.BooleanField(default=False)
    away_sent_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "bot_sessions"


class SavedReply(Model):
    """A canned answer agents insert with `/shortcut`, global when `inbox` is null."""

    id = fields.IntField(primary_key=True)
    inbox = fields.ForeignKeyField("hopthu.Inbox", related_name="saved_replies", null=True, on_delete=fields.CASCADE)
    shortcut = fields.CharField(max_length=40)
    title = fields.CharField(max_length=200, default="")
    text = fields.TextField()
    created_by = fields.ForeignKeyField(
        "hopthu.User", related_name="saved_replies", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "saved_replies"
        unique_together = (("inbox", "shortcut"),)


class AgentState(Model):
    """Presence and routing facts about one staff user (one row each, created on first need).

    `status` is the agent's own switch; whether they are connected comes from `connections` (open sockets across
    every server process). `claims` is bumped by every capacity claim: updating it first locks the row, which
    makes "count my open conversations, then take one more" atomic across processes (agents/routing.py).
    """

    user = fields.OneToOneField("hopthu.User", related_name="agent_state", primary_key=True, on_delete=fields.CASCADE)
    status = fields.CharField(max_length=10, default="online")  # chosen: online | busy | offline
    connections = fields.IntField(default=0)
    last_active_at = fields.DatetimeField(null=True)
    offline_since = fields.DatetimeField(null=True)  # the last socket closed (reassignment after a grace period)
    capacity = fields.IntField(null=True)  # open conversations at once; null: the inbox's default
    last_assigned_at = fields.DatetimeField(null=True)  # round-robin: the longest-waiting agent goes next
    claims = fields.BigIntField(default=0)

    class Meta:
        table = "agent_states"


class RoutingQueueEntry(Model):
    """A conversation waiting for an agent with free capacity: highest priority first, then oldest first."""

    conversation = fields.OneToOneField(
        "hopthu.Conversation", related_name="queue_entry", primary_key=True, on_delete=fields.CASCADE
    )
    inbox_id = fields.IntField()
    team_id = fields.IntField(null=True)
    priority = fields.IntField(default=0)
    reasons = fields.JSONField(default=list)
    enqueued_at = fields.DatetimeField()

    class Meta:
        table = "routing_queue"
        indexes = (("inbox_id", "priority", "enqueued_at"),)


class SlaPolicy(Model):
    """Targets in seconds for one inbox (null: no target). Breaches are recorded as conversation events."""

    id = fields.IntField(primary_key=True)
    inbox = fields.OneToOneField("hopthu.Inbox", related_name="sla_policy", on_delete=fields.CASCADE)
    first_response_seconds = fields.IntField(null=True)
    next_response_seconds = fields.IntField(null=True)
    resolution_seconds = fields.IntField(null=True)
    business_hours = fields.BooleanField(default=False)  # count only the inbox's business hours
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "sla_policies"


class CsatSurvey(Model):
    """One satisfaction survey sent after a resolution, its answer stored as a rating 1–5 only."""

    id = fields.IntField(primary_key=True)
    conversation = fields.ForeignKeyField("hopthu.Conversation", related_name="csat_surveys", on_delete=fields.CASCADE)
    inbox_id = fields.IntField()
    agent_id = fields.IntField(null=True)  # who held the conversation when it was resolved
    message_id = fields.IntField(null=True)
    state = fields.CharField(max_length=10, default="sent")  # sent | answered | expired
    rating = fields.IntField(null=True)
    sent_at = fields.DatetimeField()
    answered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "csat_surveys"
        indexes = (("conversation_id", "state"),)


class MetricFact(Model):
    """A number derived from `conversation_events` by agents/metrics.py: rebuilt from the events at any time.

    `value` is the customer's view (the whole wait), `held` the part that belongs to `agent_id`; the `_bh` twins
    count business hours only. `start_event_id`/`end_event_id` are the events that produced the number.
    """

    id = fields.BigIntField(primary_key=True)
    conversation_id = fields.IntField()
    inbox_id = fields.IntField()
    team_id = fields.IntField(null=True)
    agent_id = fields.IntField(null=True)
    channel = fields.CharField(max_length=20)
    kind = fields.CharField(max_length=20)
    value = fields.FloatField()
    held = fields.FloatField(null=True)
    value_bh = fields.FloatField(null=True)
    held_bh = fields.FloatField(null=True)
    at = fields.DatetimeField()
    day = fields.CharField(max_length=10)  # the inbox's local date of `at`
    start_event_id = fields.BigIntField(null=True)
    end_event_id = fields.BigIntField(null=True)

    class Meta:
        table = "metric_facts"
        indexes = (("kind", "at", "agent_id"), ("conversation_id",))


class ProjectionCursor(Model):
    """How far a projection of `conversation_events` has read (compare-and-swap: one projector at a time)."""

    name = fields.CharField(max_length=40, primary_key=True)
    position = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "projection_cursors"


class MetricDigest(Model):
    """`metric_facts` of one UTC day, bundled per (local day, inbox, channel, team, agent, kind): reports read a
    few hundred rows a month instead of a million facts. Rebuilt from the facts whenever the day changes; the
    arrays are JSON lists of numbers (nearest-rank medians need the values, not only their sum)."""

    id = fields.BigIntField(primary_key=True)
    bucket = fields.CharField(max_length=10)  # UTC date of the facts' `at`
    day = fields.CharField(max_length=10)  # the inbox's local date (the "day" grouping)
    inbox_id = fields.IntField()
    channel = fields.CharField(max_length=20)
    team_id = fields.IntField(null=True)
    agent_id = fields.IntField(null=True)
    kind = fields.CharField(max_length=20)
    n = fields.IntField()
    vals = fields.TextField()
    held = fields.TextField()
    vals_bh = fields.TextField()
    held_bh = fields.TextField()
    convs = fields.TextField()

    class Meta:
        table = "metric_digests"
        indexes = (("bucket",),)
