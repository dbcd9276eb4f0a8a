"""Customers: one profile, one identity per channel account."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Contact(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, default="")
    picture_url = fields.TextField(null=True)
    phone = fields.CharField(max_length=32, null=True)
    email = fields.CharField(max_length=254, null=True)
    # Name and phone without diacritics, lower case: what search matches against.
    search_text = fields.TextField(default="")
    first_seen_at = fields.DatetimeField(null=True)
    last_seen_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "contacts"


class ContactIdentity(Model):
    """The customer as one channel account knows them (a PSID on one page, a Zalo user of one OA…)."""

    id = fields.IntField(primary_key=True)
    contact = fields.ForeignKeyField("hopthu.Contact", related_name="identities", on_delete=fields.CASCADE)
    inbox = fields.ForeignKeyField("hopthu.Inbox", related_name="identities", on_delete=fields.CASCADE)
    channel = fields.CharField(max_length=20)
    external_id = fields.CharField(max_length=128)
    name = fields.CharField(max_length=200, null=True)
    picture_url = fields.TextField(null=True)
    profile_fetched_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contact_identities"
        unique_together = (("inbox", "external_id"),)
