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
