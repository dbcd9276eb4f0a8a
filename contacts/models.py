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
    # `phone` / `email` stay the primary values (other code writes them); these hold the further ones.
    phones = fields.JSONField(default=list)  # E.164 strings
    emails = fields.JSONField(default=list)
    addresses = fields.JSONField(default=list)  # free-text addresses
    gender = fields.CharField(max_length=10, null=True)  # male | female | other
    birthday = fields.DateField(null=True)
    city = fields.CharField(max_length=100, null=True)
    tags = fields.JSONField(default=list)
    attributes = fields.JSONField(default=dict)  # typed custom attributes: {key: value}, types in ContactAttribute
    notes = fields.TextField(default="")
    # First channel, and the ad / referral / UTM the platform reported when the customer first came.
    source = fields.JSONField(default=dict)
    # "Do not store": set by a refused `storage` consent; processing keeps no personal data for this contact.
    do_not_store = fields.BooleanField(default=False)
    merged_into_id = fields.IntField(null=True)  # set while this profile is merged into another (undo clears it)
    erased_at = fields.DatetimeField(null=True)

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


class ConsentRecord(Model):
    """One consent decision: what (kind), granted or refused, when, how (method) and from which channel."""

    id = fields.IntField(primary_key=True)
    contact = fields.ForeignKeyField("hopthu.Contact", related_name="consents", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=40)  # storage | marketing | terms | …
    granted = fields.BooleanField()
    channel = fields.CharField(max_length=20)  # facebook | zalo | telegram | webchat | agent | import
    method = fields.CharField(max_length=40)  # prechat_form | checkbox | message | agent | import | api
    at = fields.DatetimeField()
    actor_id = fields.IntField(null=True)  # the agent who recorded it, if one did
    recorded_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contact_consents"
        indexes = (("contact_id", "kind", "at"),)


class ContactAttribute(Model):
    """The type of a custom attribute, so values are validated the same way everywhere."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=60, unique=True)
    label = fields.CharField(max_length=200, default="")
    type = fields.CharField(max_length=10)  # text | number | date | bool | choice
    choices = fields.JSONField(default=list)

    class Meta:
        table = "contact_attributes"


class ContactSuggestion(Model):
    """A phone, e-mail or address found in a chat, offered on the profile until an agent accepts or rejects it."""

    id = fields.IntField(primary_key=True)
    contact = fields.ForeignKeyField("hopthu.Contact", related_name="suggestions", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=10)  # phone | email | address
    value = fields.TextField()  # as the customer wrote it
    normalized = fields.CharField(max_length=255)
    message_id = fields.IntField(null=True)
    conversation_id = fields.IntField(null=True)
    given_by_customer = fields.BooleanField(default=False)  # shared contact card, pre-chat form
    status = fields.CharField(max_length=10, default="pending")  # pending | accepted | rejected
    decided_by_id = fields.IntField(null=True)
    decided_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contact_suggestions"
        unique_together = (("contact", "kind", "normalized"),)


class ContactMerge(Model):
    """Who merged which profile into which, with the state needed to undo it exactly."""

    id = fields.IntField(primary_key=True)
    survivor_id = fields.IntField()
    merged_id = fields.IntField()
    actor_id = fields.IntField(null=True)
    snapshot = fields.JSONField(default=dict)  # both profiles before, and the rows that moved
    created_at = fields.DatetimeField(auto_now_add=True)
    undone_at = fields.DatetimeField(null=True)
    undone_by_id = fields.IntField(null=True)

    class Meta:
        table = "contact_merges"
        indexes = (("survivor_id",), ("merged_id",))


class DuplicateDismissal(Model):
    """A pair a supervisor said is not the same person: never suggested again."""

    id = fields.IntField(primary_key=True)
    low_id = fields.IntField()
    high_id = fields.IntField()
    actor_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contact_duplicate_dismissals"
        unique_together = (("low_id", "high_id"),)


class Order(Model):
    """A purchase: drafted from a conversation, entered by an agent or imported from a POS / shop system."""

    id = fields.IntField(primary_key=True)
    contact = fields.ForeignKeyField("hopthu.Contact", related_name="orders", on_delete=fields.CASCADE)
    conversation_id = fields.IntField(null=True)
    channel = fields.CharField(max_length=20, null=True)
    # draft | confirmed | paid | shipped | completed | cancelled | returned
    status = fields.CharField(max_length=12, default="draft")
    items = fields.JSONField(default=list)  # [{name, sku, size, quantity, unit_price}]
    total = fields.BigIntField(default=0)  # VND (no minor unit)
    shipping_address = fields.TextField(null=True)
    phone = fields.CharField(max_length=32, null=True)
    note = fields.TextField(default="")
    source = fields.CharField(max_length=12, default="agent")  # agent | conversation | import | api
    external_id = fields.CharField(max_length=128, null=True)  # the shop system's order number (import dedupe)
    created_by_id = fields.IntField(null=True)
    ordered_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "orders"
        unique_together = (("source", "external_id"),)
        # Covering RFM's GROUP BY contact_id (MAX ordered_at, COUNT, SUM total, status filter): index only, no
        # table look-ups over a million orders.
        indexes = (("contact_id", "ordered_at", "status", "total"), ("ordered_at",))


class Segment(Model):
    """A saved dynamic segment: rules evaluated on demand, usable as a contact and a conversation filter."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    rules = fields.JSONField(default=dict)
    created_by_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "segments"


class WebhookEndpoint(Model):
    """An outgoing webhook: events are POSTed signed with the endpoint's secret."""

    id = fields.IntField(primary_key=True)
    url = fields.TextField()
    secret = fields.CharField(max_length=128)
    events = fields.JSONField(default=list)  # e.g. ["contact.updated", "order.created"]; empty = all
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "integration_webhooks"


class WebhookDelivery(Model):
    """One event for one endpoint: the delivery log, retried with backoff until delivered or given up."""

    id = fields.BigIntField(primary_key=True)
    endpoint = fields.ForeignKeyField("hopthu.WebhookEndpoint", related_name="deliveries", on_delete=fields.CASCADE)
    event = fields.CharField(max_length=40)
    payload = fields.JSONField()
    state = fields.CharField(max_length=10, default="pending")  # pending | delivered | failed
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    last_status = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "integration_deliveries"
        indexes = (("state", "next_attempt_at"),)


class ContactScore(Model):
    """The latest RFM scoring of a customer with orders (recomputed by `contacts.rfm.refresh`)."""

    id = fields.IntField(primary_key=True)
    contact_id = fields.IntField(unique=True)
    recency_days = fields.IntField()
    frequency = fields.IntField()
    monetary = fields.BigIntField()  # VND
    r = fields.SmallIntField()
    f = fields.SmallIntField()
    m = fields.SmallIntField()
    segment = fields.CharField(max_length=30)
    spend_tier = fields.CharField(max_length=10)
    computed_at = fields.DatetimeField()

    class Meta:
        table = "contact_scores"
        indexes = (("segment",),)
