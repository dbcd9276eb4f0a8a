"""The JSON shapes of the contract, built in one place for the HTTP API and the WebSocket alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contacts.models import Contact
from inbox.models import Conversation, Message


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def contact_summary(contact: Contact | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {
        "id": contact.id,
        "name": contact.name,
        "picture_url": contact.picture_url,
        "phone": contact.phone,
        "email": contact.email,
    }


def conversation_json(conv: Conversation, contact: Contact | None) -> dict[str, Any]:
    return {
        "id": conv.id,
        "inbox_id": conv.inbox_id,
        "channel": conv.channel,
        "status": conv.status,
        "snoozed_until": iso(conv.snoozed_until),
        "contact": contact_summary(contact),
        "assignee_id": conv.assignee_id,
        "team_id": conv.team_id,
        "labels": list(conv.labels or []),
        "last_message_at": iso(conv.last_message_at),
        "last_message_preview": conv.last_message_preview,
        "last_incoming_at": iso(conv.last_incoming_at),
        "last_activity_at": iso(conv.last_activity_at),
        "unread_count": conv.unread_count,
        "sentiment": conv.sentiment,  # the latest customer message's (nlp)
        "worst_sentiment": conv.worst_sentiment,
        "intent": conv.intent,  # the conversation's main intent
        "created_at": iso(conv.created_at),
        # "dm", or "post:<id>" for a Page comment thread, whose post (text, link) is in `thread_context`.
        "thread_key": conv.thread_key,
        "thread_context": conv.thread_context,
    }


def message_json(msg: Message) -> dict[str, Any]:
    return {
        "id": msg.id,
        "conversation_id": msg.conversation_id,
        "direction": msg.direction,
        "sender_type": msg.sender_type,
        "sender_id": msg.sender_user_id,
        "origin": msg.origin,
        "text": msg.text,
        "attachments": msg.attachments or [],
        "private": msg.private,
        "created_at": iso(msg.created_at),
        "external_id": msg.external_id,
        "delivery_status": msg.delivery_status,
        "failure_reason": msg.failure_reason,
        "extra": msg.extra or {},
        "sentiment": msg.sentiment,
        "sentiment_score": msg.sentiment_score,
        "intent": msg.intent,
        "intent_confidence": msg.intent_confidence,
        "entities": msg.entities or [],
        "edited_at": iso(msg.edited_at),
        "edit_history": msg.edit_history or [],
        "removed_at": iso(msg.removed_at),
    }
