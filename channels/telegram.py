"""Telegram through aiogram 3: parse webhook updates with aiogram's types, call the Bot API with aiogram's `Bot`.

One bot per inbox. Ids: the customer is the private chat (`chat.id`, equal to the user's id); a message is
`<chat id>:<message id>` because Telegram numbers messages per chat. Group chats, channel posts and update kinds
without a customer message are ignored (an empty list), never an error. A customer blocking the bot
(`my_chat_member` → "kicked") or unblocking it ("member") is a `Referral` of type "unfollow" / "follow", as Zalo's
unfollow and follow are. The Bot API is reached at `HOPTHU_TELEGRAM_API_URL` (tests point it at
`channels.fakes_telegram`).
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ContentType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import Message, Update
from aiogram.utils.token import TokenValidationError, validate_token
from pydantic import ValidationError

from channels.base import Profile, SendError, SendResult
from channels.events import (
    Attachment,
    ChannelEvent,
    InboundMessage,
    MessageEdit,
    ParseError,
    Referral,
    from_seconds,
)
from channels.payload import nul_free

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT = 4096
# What a customer can send that has no text or file to show: the agent is told what it was, never shown an empty
# message. Any other kind without text or file is a service message (a pin, a payment, a member change): dropped.
SHOWN_AS_FALLBACK = frozenset(
    {
        ContentType.DICE, ContentType.POLL, ContentType.GAME, ContentType.STORY, ContentType.INVOICE,
        ContentType.PAID_MEDIA, ContentType.GIVEAWAY, ContentType.CHECKLIST, ContentType.WEB_APP_DATA,
        ContentType.UNKNOWN,
    }
)  # fmt: skip
FileUrl = Callable[[str], str | None]
# The update kinds the webhook subscribes to (`setWebhook(allowed_updates=…)`) and the only ones validated with
# aiogram's models: any other kind (a poll's results, a vote, a kind newer than aiogram) is acknowledged unread,
# so a model that lags or leads the Bot API cannot turn it into a dead letter.
HANDLED_UPDATES = ("message", "edited_message", "my_chat_member")
# What a message cannot be stored without; any other part aiogram cannot validate is dropped from it instead.
ESSENTIAL_FIELDS = frozenset({"message_id", "date", "chat", "from"})
log = logging.getLogger(__name__)


def verify_secret(given: str | None, expected: str | None) -> bool:
    """The header Telegram sends with every update, set by `setWebhook(secret_token=…)`; constant-time."""
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def valid_token(token: str) -> bool:
    try:
        return validate_token(token)
    except TokenValidationError:
        return False


def message_id(chat_id: int | str, message_id_: int | str) -> str:
    return f"{chat_id}:{message_id_}"


# ---------------------------------------------------------------------------------------------- parsing


def parse(payload: Any, bot_id: str, file_url: FileUrl = lambda file_id: None) -> list[ChannelEvent]:
    """One webhook update → channel events (usually one; none for what an inbox does not show)."""
    if not isinstance(payload, dict) or "update_id" not in payload:
        raise ParseError("not a Telegram update (no update_id)")
    kind = next((k for k in HANDLED_UPDATES if k in payload), None)
    update, dropped = _validate(payload, kind)
    if kind is None:
        log.info("ignored a Telegram update of kind %s", ",".join(k for k in payload if k != "update_id") or "none")
        return []
    if update.message is not None:
        msg = update.message
        if not _from_customer(msg):
            return []
        inbound = _inbound(msg, bot_id, file_url)
        if inbound.text is None and not inbound.attachments:
            shown = _content_type(msg, dropped)
            if shown not in SHOWN_AS_FALLBACK:
                return []
            inbound = dataclasses.replace(inbound, attachments=(_fallback(msg, shown, payload[kind]),))
        return [inbound]
    if update.edited_message is not None:
        msg = update.edited_message
        if not _from_customer(msg):
            return []
        edited_at = msg.edit_date or msg.date
        if not isinstance(edited_at, datetime):  # aiogram keeps `edit_date` as Telegram's seconds
            edited_at = from_seconds(edited_at)
        return [
            MessageEdit(
                channel=CHANNEL,
                account_id=bot_id,
                contact_external_id=str(msg.chat.id),
                external_id=message_id(msg.chat.id, msg.message_id),
                text=msg.text or msg.caption,
                occurred_at=edited_at,
            )
        ]
    if update.my_chat_member is not None:
        change = update.my_chat_member
        # In a private chat this update means only one thing: the customer blocked or unblocked the bot.
        status = change.new_chat_member.status
        if change.chat.type != "private" or status not in ("kicked", "member"):
            return []
        return [
            Referral(
                channel=CHANNEL,
                account_id=bot_id,
                contact_external_id=str(change.chat.id),
                occurred_at=change.date,
                referral={"type": "unfollow" if status == "kicked" else "follow", "source": "telegram_block"},
            )
        ]
    return []


def _validate(payload: dict[str, Any], kind: str | None) -> tuple[Update, set[str]]:
    """The update with only its handled kind validated. A message part whose shape differs from aiogram's model
    (a poll from another Bot API version) is dropped rather than losing the whole message; its name is returned.
    A message without what hopthu needs (ids, chat, date) stays a ParseError: a dead letter, never a silent drop."""
    body = payload.get(kind) if kind else None
    dropped: set[str] = set()
    while True:
        data = {"update_id": payload["update_id"], **({kind: body} if kind else {})}
        try:
            return Update.model_validate(data), dropped
        except ValidationError as exc:
            errors = exc.errors()
            inside = [e["loc"] for e in errors if len(e["loc"]) > 1 and e["loc"][0] == kind]
            parts = {loc[1] for loc in inside}
            droppable = (
                kind in ("message", "edited_message")
                and isinstance(body, dict)
                and len(inside) == len(errors)  # every error lies inside the message…
                and not parts & ESSENTIAL_FIELDS  # …in none of what it cannot do without…
                and all(isinstance(body.get(p), dict | list) for p in parts)  # …only in objects, never a scalar
            )
            if not droppable:
                where = ".".join(str(x) for x in errors[0]["loc"])
                raise ParseError(f"Telegram update does not validate: {where}: {errors[0]['msg']}") from exc
            body = {k: v for k, v in body.items() if k not in parts}
            dropped |= {str(p) for p in parts}


def _content_type(msg: Message, dropped: set[str]) -> ContentType:
    """What the customer sent: a dropped part's name when it is a kind of content (`poll`), else aiogram's."""
    for name in sorted(dropped):
        try:
            return ContentType(name)
        except ValueError:
            continue  # a part that is no content (`reply_to_message`, `entities`)
    return msg.content_type


def _from_customer(msg: Message) -> bool:
    return msg.chat.type == "private" and not (msg.from_user is not None and msg.from_user.is_bot)


def _fallback(msg: Message, kind: ContentType, body: dict[str, Any]) -> Attachment:
    """A placeholder naming what the customer sent (`dice`, `poll`…), with its gist where there is one."""
    title = None
    if msg.dice is not None:
        title = f"{msg.dice.emoji} {msg.dice.value}"
    elif kind == ContentType.POLL:
        # Read from the update as sent: a poll aiogram's model could not validate (dropped) keeps its question too.
        title = _poll_gist(body.get("poll"))
    elif msg.game is not None:
        title = msg.game.title
    return Attachment(kind="fallback", name=str(kind.value), title=title)


def _poll_gist(poll: Any) -> str | None:
    """A poll's question and its options, "Màu nào đẹp hơn? — Đỏ / Xanh"; None when it has no question."""
    question = poll.get("question") if isinstance(poll, dict) else None
    if not isinstance(question, str) or not question.strip():
        return None
    options = poll.get("options")
    texts = [o.get("text") for o in (options if isinstance(options, list) else []) if isinstance(o, dict)]
    choices = " / ".join(t.strip() for t in texts if isinstance(t, str) and t.strip())
    return f"{question.strip()} — {choices}" if choices else question.strip()


def _inbound(msg: Message, bot_id: str, file_url: FileUrl) -> InboundMessage:
    attachments: list[Attachment] = []
    shared_phone = None
    if msg.photo:
        largest = max(msg.photo, key=lambda p: p.width * p.height)
        attachments.append(Attachment(kind="image", url=file_url(largest.file_id)))
    if msg.document:
        attachments.append(Attachment(kind="file", url=file_url(msg.document.file_id), name=msg.document.file_name))
    if msg.voice:
        attachments.append(Attachment(kind="audio", url=file_url(msg.voice.file_id), title="voice"))
    if msg.audio:
        attachments.append(Attachment(kind="audio", url=file_url(msg.audio.file_id), name=msg.audio.file_name))
    if msg.video or msg.video_note or msg.animation:
        video = msg.video or msg.video_note or msg.animation
        attachments.append(Attachment(kind="video", url=file_url(video.file_id)))  # type: ignore[union-attr]
    if msg.sticker:
        attachments.append(Attachment(kind="sticker", url=file_url(msg.sticker.file_id), title=msg.sticker.emoji))
    if msg.location:
        title = msg.venue.title if msg.venue else None
        attachments.append(
            Attachment(kind="location", latitude=msg.location.latitude, longitude=msg.location.longitude, title=title)
        )
    if msg.contact:
        contact = msg.contact
        name = " ".join(filter(None, [contact.first_name, contact.last_name]))
        attachments.append(Attachment(kind="contact", name=name or None, title=contact.phone_number))
        # Only the customer's own number ("share my phone number" button) goes to their profile; a card of
        # someone else stays a card on the message.
        if msg.from_user is not None and contact.user_id == msg.from_user.id:
            shared_phone = contact.phone_number
    sender = msg.from_user
    name = " ".join(filter(None, [sender.first_name, sender.last_name])) if sender else None
    reply_to = msg.reply_to_message
    return InboundMessage(
        channel=CHANNEL,
        account_id=bot_id,
        contact_external_id=str(msg.chat.id),
        external_id=message_id(msg.chat.id, msg.message_id),
        occurred_at=msg.date,
        text=msg.text or msg.caption,
        attachments=tuple(attachments),
        reply_to_external_id=message_id(msg.chat.id, reply_to.message_id) if reply_to else None,
        shared_phone=shared_phone,
        contact_name=name or None,
    )


# ---------------------------------------------------------------------------------------------- Bot API


class TelegramClient:
    """aiogram `Bot`s (one per token) sharing one HTTP session pointed at the configured Bot API server."""

    def __init__(self, api_url: str, timeout: float = 20.0) -> None:
        server = TelegramAPIServer.from_base(api_url.rstrip("/"))
        self.session = AiohttpSession(api=server, json_loads=_nul_free_answer, timeout=timeout)
        self._bots: dict[str, Bot] = {}

    def bot(self, token: str) -> Bot:
        bot = self._bots.get(token)
        if bot is None:
            if not valid_token(token):
                raise SendError("Bot token không hợp lệ (malformed bot token)", retryable=False, code="bad_token")
            bot = self._bots[token] = Bot(token, session=self.session)
        return bot

    async def close(self) -> None:
        await self.session.close()

    async def get_me(self, token: str) -> dict[str, Any]:
        me = await _call(self.bot(token).get_me())
        return {"id": me.id, "username": me.username, "first_name": me.first_name}

    async def set_webhook(self, token: str, url: str, secret_token: str) -> None:
        await _call(
            self.bot(token).set_webhook(
                url,
                secret_token=secret_token,
                allowed_updates=list(HANDLED_UPDATES),
                drop_pending_updates=False,
            )
        )

    async def send_text(self, token: str, chat_id: str, text: str) -> SendResult:
        if len(text) > MAX_TEXT:
            raise SendError(f"Telegram nhận tối đa {MAX_TEXT} ký tự (text too long)", retryable=False)
        sent = await _call(self.bot(token).send_message(chat_id=int(chat_id), text=text))
        return SendResult(external_id=message_id(sent.chat.id, sent.message_id))

    async def fetch_profile(self, token: str, chat_id: str) -> Profile:
        chat = await _call(self.bot(token).get_chat(chat_id=int(chat_id)))
        name = " ".join(filter(None, [chat.first_name, chat.last_name])) or chat.username
        return Profile(name=name or None)

    async def download(self, token: str, file_id: str) -> bytes:
        bot = self.bot(token)
        info = await _call(bot.get_file(file_id))
        if not info.file_path:
            raise SendError("Telegram không trả về tệp (no file path)", retryable=False, code="no_file")
        try:
            data = await bot.download_file(info.file_path)
        except TelegramAPIError as exc:
            raise _send_error(exc) from exc
        return data.read() if data is not None else b""


def _nul_free_answer(content: str) -> Any:
    """A Bot API answer as aiogram reads it, NULs as U+FFFD: the bot's username, a customer's name and an error's
    description are stored, and PostgreSQL cannot store a NUL."""
    return nul_free(json.loads(content))


async def _call(awaitable: Any) -> Any:
    try:
        return await awaitable
    except TelegramAPIError as exc:
        raise _send_error(exc) from exc


def _send_error(exc: TelegramAPIError) -> SendError:
    """Bot API errors as reasons an agent can read, and whether trying again can help."""
    detail = exc.message
    if isinstance(exc, TelegramRetryAfter):
        return SendError(
            f"Telegram giới hạn tốc độ gửi, thử lại sau {exc.retry_after} giây (flood control: {detail})",
            retryable=True,
            code="retry_after",
            retry_after=float(exc.retry_after),
        )
    if isinstance(exc, TelegramForbiddenError):
        if "blocked" in detail:
            reason = f"Khách đã chặn bot, không gửi được (the user blocked the bot: {detail})"
        else:
            reason = f"Bot không được phép nhắn cho khách này ({detail})"
        return SendError(reason, retryable=False, code="forbidden")
    if isinstance(exc, TelegramUnauthorizedError):
        return SendError(
            f"Bot token không hợp lệ hoặc đã bị thu hồi (bot token rejected: {detail})", retryable=False, code="auth"
        )
    if isinstance(exc, TelegramBadRequest):
        return SendError(f"Telegram từ chối tin nhắn ({detail})", retryable=False, code="bad_request")
    if isinstance(exc, TelegramServerError | TelegramNetworkError):
        return SendError(f"Telegram tạm thời lỗi ({detail})", retryable=True, code="unavailable")
    return SendError(f"Telegram báo lỗi ({detail})", retryable=False, code="api_error")
