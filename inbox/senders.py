"""Per-channel glue between the outbox / profile fetcher and the pure channel adapters."""

from __future__ import annotations

from datetime import datetime, timedelta

import aiohttp
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from agents import reports
from channels.base import Profile, SendError, SendResult
from channels.facebook import GraphClient
from channels.zalo import ZaloClient
from contacts.models import Contact, ContactIdentity
from inbox.models import Conversation, ConversationEvent, Inbox, Message
from inbox.outbox import SendPlan, WindowClosed, messenger_plan
from inbox.processing import apply_shared_phone, preview, record
from inbox.zalo_tokens import ZaloTokens

PRIVATE_REPLY_WINDOW = timedelta(days=7)
ZALO_WINDOW = timedelta(hours=48)
ZALO_FREE_REPLIES = 8  # free customer-service messages per interaction window
COMMENT = SendPlan("COMMENT")
PRIVATE_REPLY = SendPlan("PRIVATE_REPLY")


def is_comment_thread(conv: Conversation) -> bool:
    return (conv.thread_key or "dm").startswith("post:")


def private_reply_plan(comment_created_at: datetime, at: datetime) -> SendPlan:
    if at - comment_created_at > PRIVATE_REPLY_WINDOW:
        raise WindowClosed(
            "Bình luận đã quá 7 ngày, Facebook không cho nhắn riêng (private replies only within 7 days of the comment)"
        )
    return PRIVATE_REPLY


def _window_refusal(plan: SendPlan) -> str | None:
    """Facebook's window error (#10 / 2018278) says nothing of which window: the reason names the one this message
    was sent under. None: the standard 24-hour one, as the adapter words it."""
    if plan.tag == "HUMAN_AGENT":
        return (
            "Ngoài khung 7 ngày cho nhân viên trả lời (thẻ HUMAN_AGENT) của Messenger "
            "(outside Messenger's 7-day human agent window)"
        )
    if plan.messaging_type == PRIVATE_REPLY.messaging_type:
        return (
            "Facebook không cho nhắn riêng cho bình luận này: chỉ một lần, trong 7 ngày sau bình luận "
            "(private replies: once per comment, within 7 days of it)"
        )
    return None


class FacebookSender:
    def __init__(self, graph_url: str, session: aiohttp.ClientSession) -> None:
        self.client = GraphClient(graph_url, session)

    def plan(self, conv: Conversation, msg: Message, at: datetime) -> SendPlan:
        private = (msg.extra or {}).get("private_reply_to")
        if private:
            if private.get("already_replied"):
                raise WindowClosed(
                    "Đã nhắn riêng cho bình luận này rồi, Facebook chỉ cho một lần (one private reply per comment)"
                )
            return private_reply_plan(datetime.fromisoformat(private["comment_created_at"]), at)
        if is_comment_thread(conv):
            return COMMENT  # a public reply: comments have no messaging window
        return messenger_plan(conv.last_incoming_at, at, human=msg.sender_type == "agent")

    async def send(self, inbox: Inbox, identity: ContactIdentity, msg: Message, plan: SendPlan) -> SendResult:
        try:
            return await self._send(inbox, identity, msg, plan)
        except SendError as error:
            reason = _window_refusal(plan) if error.code == "outside_window" else None
            if reason is None:
                raise
            raise SendError(reason, retryable=False, code=error.code) from error

    async def _send(self, inbox: Inbox, identity: ContactIdentity, msg: Message, plan: SendPlan) -> SendResult:
        token = inbox.credentials["page_token"]
        if plan is PRIVATE_REPLY or plan.messaging_type == PRIVATE_REPLY.messaging_type:
            comment_id = msg.extra["private_reply_to"]["comment_id"]
            return await self.client.private_reply(token, comment_id, msg.text or "", metadata=f"hopthu:{msg.id}")
        if plan.messaging_type == COMMENT.messaging_type:
            target = (msg.extra or {}).get("comment_reply_to") or await _latest_comment(msg.conversation_id)
            if target is None:
                raise SendError("Không còn bình luận nào để trả lời (no comment to reply to)", retryable=False,
                                code="no_comment")  # fmt: skip
            return await self.client.reply_to_comment(token, target, msg.text or "")
        return await self.client.send_message(
            token,
            identity.external_id,
            text=msg.text,
            messaging_type=plan.messaging_type,
            tag=plan.tag,
            metadata=f"hopthu:{msg.id}",  # lets the echo be matched to this message
        )

    async def after_sent(
        self, inbox: Inbox, identity: ContactIdentity, conv: Conversation, msg: Message, result: SendResult
    ) -> Conversation | None:
        """A private reply answers with the commenter's PSID: link it to the commenter's contact, so that their
        Messenger answer continues this conversation."""
        if not (msg.extra or {}).get("private_reply_to") or not result.recipient_id:
            return None
        if result.recipient_id == identity.external_id:
            return None  # the comment's author id already is the PSID: one identity for both
        async with in_transaction() as conn:
            psid = (
                await ContactIdentity.filter(inbox_id=inbox.id, external_id=result.recipient_id).using_db(conn).first()
            )
            if psid is None:
                psid = await ContactIdentity.create(
                    using_db=conn, contact_id=identity.contact_id, inbox_id=inbox.id, channel=inbox.channel,
                    external_id=result.recipient_id, name=identity.name, picture_url=identity.picture_url,
                )  # fmt: skip
            target = (
                await Conversation.filter(inbox_id=inbox.id, identity_id=psid.id, thread_key="dm")
                .using_db(conn)
                .first()
            )
            if target is None:  # the PSID had no Messenger thread yet: this conversation becomes it
                await Conversation.filter(id=conv.id).using_db(conn).update(identity_id=psid.id)
                conv.identity_id = psid.id
                target = conv
            elif target.id != conv.id:  # they wrote on Messenger before: the reply joins that thread
                await _join_thread(conn, conv, target, msg)
            at = msg.created_at
            await record(conn, target, "identity_linked", "system", None, at, msg.id,
                         comment_identity=identity.external_id, psid=result.recipient_id)  # fmt: skip
        return target

    async def fetch_profile(self, inbox: Inbox, identity: ContactIdentity) -> Profile:
        return await self.client.fetch_profile(inbox.credentials["page_token"], identity.external_id)


async def _join_thread(conn: BaseDBAsyncClient, opened: Conversation, target: Conversation, msg: Message) -> None:
    """Move a private reply, with its facts, into the PSID's Messenger thread. `opened` was opened for the reply
    before the send told us the PSID: left without a message, it is deleted, not listed empty for good."""
    await Message.filter(id=msg.id).using_db(conn).update(conversation_id=target.id)
    events = ConversationEvent.filter(conversation_id=opened.id, message_id=msg.id).using_db(conn)
    await events.update(conversation_id=target.id)  # the reply counts in the thread it joined (reports)
    msg.conversation_id = target.id
    at = msg.created_at
    # Conditional: a customer message that arrived meanwhile stays the thread's latest.
    older = Conversation.filter(Q(last_message_at__isnull=True) | Q(last_message_at__lt=at), id=target.id)
    await older.using_db(conn).update(last_message_at=at, last_message_preview=preview(msg.text, []))
    await Conversation.filter(id=target.id, last_activity_at__lt=at).using_db(conn).update(last_activity_at=at)
    await target.refresh_from_db(using_db=conn)
    if not await Message.filter(conversation_id=opened.id).using_db(conn).exists():
        await reports.forget_facts(conn, [opened.id])
        await Conversation.filter(id=opened.id).using_db(conn).delete()  # its events go with it (cascade)


async def _latest_comment(conversation_id: int) -> str | None:
    query = Message.filter(conversation_id=conversation_id, direction="in", removed_at__isnull=True)
    latest = await query.exclude(external_id__isnull=True).order_by("-created_at", "-id").first()
    return latest.external_id if latest else None


class ZaloSender:
    """Replies through the OA customer-service API: a 48-hour window after the customer's last message, with
    a limited number of free messages in it; access tokens from `ZaloTokens`."""

    def __init__(self, client: ZaloClient, tokens: ZaloTokens) -> None:
        self.client = client
        self.tokens = tokens

    def plan(self, conv: Conversation, msg: Message, at: datetime) -> SendPlan:
        return zalo_plan(conv.last_incoming_at, at)

    async def send(self, inbox: Inbox, identity: ContactIdentity, msg: Message, plan: SendPlan) -> SendResult:
        if inbox.state != "active":
            raise SendError(inbox.state_reason or "Zalo OA cần được cấp quyền lại (needs re-authorisation)",
                            retryable=False, code="needs_reauth")  # fmt: skip
        conv = await Conversation.get(id=msg.conversation_id)
        used = await replies_in_window(conv)
        if used >= ZALO_FREE_REPLIES:
            raise SendError(quota_reason(), retryable=False, code="quota_exhausted")
        quote = (msg.extra or {}).get("quote_message_id")
        token = await self.tokens.access_token(inbox)
        try:
            return await self.client.send_text(token, identity.external_id, msg.text or "", quote)
        except SendError as error:
            if error.code != "token_invalid":
                raise
        token = await self.tokens.refresh(inbox, stale_access_token=token)  # refused early: one refresh, one retry
        return await self.client.send_text(token, identity.external_id, msg.text or "", quote)

    async def fetch_profile(self, inbox: Inbox, identity: ContactIdentity) -> Profile:
        token = await self.tokens.access_token(inbox)
        profile, phone = await self.client.user_detail(token, identity.external_id)
        if phone:  # shared with the OA by the user: the contact's phone when it has none
            async with in_transaction() as conn:
                conv = await Conversation.filter(identity_id=identity.id, thread_key="dm").using_db(conn).first()
                contact = await Contact.get(id=identity.contact_id).using_db(conn)
                if conv is not None:
                    await apply_shared_phone(conn, conv, contact, phone, conv.last_activity_at, None, "zalo")
        return profile


def zalo_plan(last_incoming_at: datetime | None, at: datetime) -> SendPlan:
    if last_incoming_at is None:
        raise WindowClosed("Khách chưa nhắn tin cho OA nên chưa thể trả lời (the customer has not written yet)")
    if at - last_incoming_at > ZALO_WINDOW:
        raise WindowClosed(
            "Đã quá 48 giờ kể từ tin nhắn cuối của khách, Zalo không cho gửi tin tư vấn miễn phí "
            "(outside Zalo's 48-hour interaction window)"
        )
    return SendPlan("CS")


def quota_reason() -> str:
    return (
        f"Đã gửi đủ {ZALO_FREE_REPLIES} tin miễn phí kể từ tin nhắn cuối của khách; chờ khách nhắn lại "
        f"(Zalo allows {ZALO_FREE_REPLIES} free replies per customer message window)"
    )


async def replies_in_window(conv: Conversation) -> int:
    """Messages the OA already sent since the customer's last message (what Zalo's free quota counts)."""
    if conv.last_incoming_at is None:
        return 0
    return await Message.filter(
        conversation_id=conv.id, direction="out", private=False, created_at__gt=conv.last_incoming_at,
        delivery_status__in=["sent", "delivered", "read"],
    ).count()  # fmt: skip
