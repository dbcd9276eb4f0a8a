"""Facebook Messenger: webhook signature and handshake, payload parsing, Graph Send API client.

Pure adapter (see /work/shared/docs/CHANNELS.md): no database access, no business rules.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from channels import facebook_feed
from channels.base import Profile, SendError, SendResult
from channels.events import (
    Attachment,
    InboundMessage,
    MessageEdit,
    MessageReaction,
    MessageRemoval,
    ParseError,
    Receipt,
    Referral,
    ThreadControl,
    Unrecognized,
    from_millis,
)
from channels.payload import dig, id_of, nul_free, str_of, unrecognized

CHANNEL = "facebook"
SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_API_VERSION = "v25.0"
NETWORK_REASON = "Không kết nối được Facebook (network error)"

ParsedEvent = (
    InboundMessage | Receipt | Referral | MessageEdit | MessageRemoval | MessageReaction | ThreadControl | Unrecognized
)
log = logging.getLogger(__name__)

_KNOWN_KINDS = ("image", "video", "audio", "file", "reel", "fallback", "location", "template")
_ATTACHMENT_KINDS = {k: k for k in _KNOWN_KINDS} | {"ig_reel": "reel"}
_SEND_KINDS = frozenset({"image", "audio", "video", "file"})
_MILLIS = re.compile(r"-?\d{1,20}")
# Messenger names the reaction and usually sends its emoji too; the name stands in when it does not.
_REACTION_EMOJI = {"love": "❤️", "smile": "😆", "wow": "😮", "sad": "😢", "angry": "😠", "like": "👍", "dislike": "👎"}
# Handover protocol (webhook field `messaging_handovers`): the event's key, what happened, the field naming the app
# that holds (or, for a request, asks for) the thread.
_HANDOVERS: tuple[tuple[str, Literal["passed", "taken", "requested"], str], ...] = (
    ("pass_thread_control", "passed", "new_owner_app_id"),
    ("take_thread_control", "taken", "new_owner_app_id"),
    ("request_thread_control", "requested", "requested_owner_app_id"),
)
MAX_HANDOVER_METADATA = 1000  # the Handover API's own limit: a longer string is not from Facebook

# ---------------------------------------------------------------------------------------------- webhook


def sign(raw: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value Facebook sends for `raw`."""
    # Not `hmac.digest`: its one-shot C call lets go of the GIL whatever the size, and getting it back from the
    # SQLite thread costs up to the switch interval (5 ms) per webhook. An HMAC object lets go only for 2 KiB+.
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


def verify_signature(raw: bytes, header: str | None, app_secret: str) -> bool:
    if not header or not app_secret or not header.startswith("sha256="):
        return False
    # Compare bytes: compare_digest refuses non-ASCII str, and a hostile header may hold anything.
    given = header.removeprefix("sha256=").strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(sign(raw, app_secret).removeprefix("sha256=").encode(), given)


def handshake_challenge(params: Mapping[str, str], verify_tokens: Iterable[str]) -> str | None:
    """`hub.challenge` when the subscribe handshake carries one of our verify tokens, else None."""
    challenge = params.get("hub.challenge")
    if params.get("hub.mode") != "subscribe" or challenge is None:
        return None
    given = (params.get("hub.verify_token") or "").encode()
    matched = False
    for token in verify_tokens:  # no short-circuit: timing must not tell which token matched
        if token and hmac.compare_digest(token.encode(), given):
            matched = True
    return challenge if matched else None


def page_ids(payload: Any) -> list[str]:
    """Distinct entry (page) ids in order of appearance; lenient, because it runs before parsing."""
    entries = payload.get("entry") if isinstance(payload, dict) else None
    ids: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        page = id_of(entry.get("id")) if isinstance(entry, dict) else None
        if page is not None and page not in ids:
            ids.append(page)
    return ids


# ---------------------------------------------------------------------------------------------- parsing


def parse(payload: Any) -> list[ParsedEvent]:
    """Turn a verified webhook body into channel events.

    Raises ParseError only when the envelope itself is wrong. Anything odd inside a valid envelope becomes
    `Unrecognized`: Facebook retries failed deliveries for hours, and one bad event must not block the rest.
    """
    if not isinstance(payload, dict) or payload.get("object") != "page":
        raise ParseError("not a Messenger webhook: expected object == 'page'")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise ParseError("Messenger webhook without an 'entry' list")
    return [event for entry in entries for event in _parse_entry(entry)]


def _parse_entry(entry: Any) -> list[ParsedEvent]:
    if not isinstance(entry, dict):
        return [unrecognized(CHANNEL, None, "entry is not an object", entry)]
    page = id_of(entry.get("id"))
    out: list[ParsedEvent] = []
    for key in ("messaging", "standby"):  # standby = handover protocol, same event shapes
        items = entry.get(key)
        if key in entry and not isinstance(items, list):
            out.append(unrecognized(CHANNEL, page, f"entry.{key} is not a list", items))
        for event in items if isinstance(items, list) else []:
            try:
                if (parsed := _parse_event(event, page, entry.get("time"))) is not None:
                    out.append(parsed)
            except Exception as exc:  # last resort: a parser bug must never fail the whole delivery
                out.append(unrecognized(CHANNEL, page, f"could not parse event: {type(exc).__name__}: {exc}", event))
    if "changes" in entry:  # Page comments (webhook field `feed`): seconds, not milliseconds
        changes = entry["changes"]
        for change in changes if isinstance(changes, list) else [changes]:
            try:
                out.extend(facebook_feed.parse_change(change, page, entry.get("time")))
            except Exception as exc:  # last resort, as for messaging events
                out.append(unrecognized(CHANNEL, page, f"could not parse change: {type(exc).__name__}: {exc}", change))
    if not any(key in entry for key in ("messaging", "standby", "changes")):
        out.append(unrecognized(CHANNEL, page, "entry has no messaging, standby or changes", entry))
    return out


def _parse_event(event: Any, entry_page: str | None, entry_time: Any) -> ParsedEvent | None:
    """One event of `messaging` / `standby`; None for one that is understood and has nothing to store."""
    if not isinstance(event, dict):
        return unrecognized(CHANNEL, entry_page, "event is not an object", event)
    sender, recipient = id_of(dig(event, "sender", "id")), id_of(dig(event, "recipient", "id"))
    timestamp = event.get("timestamp")
    occurred = _millis(timestamp) or _millis(entry_time)

    def bad(reason: str) -> Unrecognized:
        return unrecognized(CHANNEL, entry_page, reason, event)

    if "message" in event:
        message = event["message"]
        if not isinstance(message, dict):
            return bad("message is not an object")
        echo = message.get("is_echo") is True  # echoes: sender is the page, recipient the customer
        page, contact = (sender, recipient) if echo else (recipient, sender)
        account, mid = entry_page or page, id_of(message.get("mid"))
        if account is None or contact is None or mid is None or occurred is None:
            return bad("message without page, user, mid or timestamp")
        referral = message.get("referral", event.get("referral"))
        return InboundMessage(
            channel=CHANNEL, account_id=account, contact_external_id=contact, external_id=mid,
            occurred_at=occurred, text=str_of(message.get("text")),
            attachments=_attachments(message.get("attachments")), direction="out" if echo else "in",
            quick_reply_payload=str_of(dig(message, "quick_reply", "payload")),
            reply_to_external_id=id_of(dig(message, "reply_to", "mid")),
            referral=referral if isinstance(referral, dict) else None,
            app_id=id_of(message.get("app_id")), metadata=str_of(message.get("metadata")),
        )  # fmt: skip

    if "app_roles" in event:  # the page gave its apps new roles: about the page, not any customer's thread
        log.info("ignored a Messenger app_roles event for page %s", entry_page)
        return None

    account, contact = entry_page or recipient, sender
    if account is None or contact is None:
        return bad("event without page or user id")

    if "postback" in event:
        postback = event["postback"]
        if not isinstance(postback, dict) or occurred is None:
            return bad("postback without body or timestamp")
        payload, title = str_of(postback.get("payload")), str_of(postback.get("title"))
        # Older postbacks carry no mid; a stable synthetic id keeps redeliveries deduplicated.
        digest = hashlib.sha256(f"{contact}|{timestamp}|{payload}".encode()).hexdigest()[:32]
        referral = postback.get("referral")
        return InboundMessage(
            channel=CHANNEL, account_id=account, contact_external_id=contact,
            external_id=id_of(postback.get("mid")) or f"postback:{digest}", occurred_at=occurred,
            text=title, postback_payload=payload, postback_title=title,
            referral=referral if isinstance(referral, dict) else None,
        )  # fmt: skip

    if "message_edit" in event:  # webhook field `message_edits`: the customer changed a message they sent
        edit = event["message_edit"]
        mid = id_of(dig(edit, "mid"))
        if not isinstance(edit, dict) or mid is None or occurred is None:
            return bad("message_edit without mid or timestamp")
        return MessageEdit(
            channel=CHANNEL, account_id=account, contact_external_id=contact, external_id=mid,
            text=str_of(edit.get("text")), occurred_at=occurred,
        )  # fmt: skip

    if "reaction" in event:  # webhook field `message_reactions`: the customer reacted to a message or took it back
        reaction = event["reaction"]
        mid = id_of(dig(reaction, "mid"))
        if not isinstance(reaction, dict) or mid is None or occurred is None:
            return bad("reaction without mid or timestamp")
        emoji = (str_of(reaction.get("emoji")) or "")[:32] or _REACTION_EMOJI.get(
            str_of(reaction.get("reaction")) or "", "👍"
        )
        return MessageReaction(
            channel=CHANNEL, account_id=account, contact_external_id=contact, external_id=mid, occurred_at=occurred,
            emoji=None if reaction.get("action") == "unreact" else emoji,
        )  # fmt: skip

    for key, action, owner in _HANDOVERS:
        if key in event:
            control = event[key]
            if not isinstance(control, dict) or occurred is None:
                return bad(f"{key} without body or timestamp")
            return ThreadControl(
                channel=CHANNEL, account_id=account, contact_external_id=contact, action=action, occurred_at=occurred,
                new_owner_app_id=id_of(control.get(owner)),
                previous_owner_app_id=id_of(control.get("previous_owner_app_id")),
                metadata=(str_of(control.get("metadata")) or "")[:MAX_HANDOVER_METADATA] or None,
            )  # fmt: skip

    for key, status in (("delivery", "delivered"), ("read", "read")):
        if key in event:
            watermark = _millis(dig(event, key, "watermark"))
            if watermark is None:
                return bad(f"{key} without a watermark")
            mids = dig(event, key, "mids")
            ids = tuple(m for m in map(id_of, mids) if m) if isinstance(mids, list) else ()
            return Receipt(
                channel=CHANNEL, account_id=account, contact_external_id=contact,
                status=status, watermark=watermark, external_ids=ids,  # type: ignore[arg-type]
            )  # fmt: skip

    if "referral" in event:  # the customer opened the thread from an ad / m.me link without writing
        referral = event["referral"]
        if not isinstance(referral, dict) or occurred is None:
            return bad("referral without body or timestamp")
        return Referral(
            channel=CHANNEL, account_id=account, contact_external_id=contact, occurred_at=occurred,
            referral=referral,
        )  # fmt: skip

    return bad("unsupported messaging event")


def _attachments(raw: Any) -> tuple[Attachment, ...]:
    out = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}  # fallback: null
        kind = _ATTACHMENT_KINDS.get(str_of(item.get("type")) or "", "fallback")
        if kind == "image" and payload.get("sticker_id") is not None:
            kind = "sticker"
        url = str_of(payload.get("url")) or str_of(item.get("url"))
        title = str_of(item.get("title")) or str_of(payload.get("title"))
        lat = lon = None
        if kind == "location":
            coords = payload.get("coordinates")
            lat, lon = _float(dig(coords, "lat")), _float(dig(coords, "long"))
        elif kind == "template":  # echoes of templates the page sent: keep something readable
            elements = payload.get("elements")
            first = elements[0] if isinstance(elements, list) and elements else None
            title = title or str_of(payload.get("text")) or str_of(dig(first, "title"))
        name = str_of(payload.get("name"))
        out.append(Attachment(kind=kind, url=url, name=name, latitude=lat, longitude=lon, title=title))
    return tuple(out)


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else None


def _float(value: Any) -> float | None:
    # The range check also drops NaN and infinities, which would poison JSON storage later.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if abs(value) <= 180 else None


def _millis(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and not _MILLIS.fullmatch(value):
        return None
    try:
        return from_millis(value)
    except (ValueError, OverflowError, OSError):  # NaN, infinities, years past 9999
        return None


# ---------------------------------------------------------------------------------------------- Graph API

_ERRORS = {  # code -> (reason for the agent, retryable)
    "outside_window": ("Ngoài khung 24 giờ của Messenger (outside the 24-hour window)", False),
    "user_unavailable": ("Người nhận hiện không nhận được tin nhắn (user unavailable)", False),
    "token_invalid": ("Mã truy cập trang không hợp lệ hoặc hết hạn (page token invalid or expired)", False),
    "rate_limited": ("Facebook đang giới hạn tốc độ gửi (rate limited)", True),
}


def classify_error(status: int, body: Any) -> SendError:
    """A Graph API failure as a SendError with a reason an agent can read."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    message = str_of(error.get("message")) or (body if isinstance(body, str) else None)
    detail = (message or "").strip()[:300] or f"HTTP {status}"

    # (#10) without a subcode on the Send API is the window too; other #10 subcodes are permission problems.
    if subcode == 2018278 or (code == 10 and (subcode is None or "window" in detail.lower())):
        kind = "outside_window"
    elif code == 551 or subcode in (1545041, 2018001):  # 2018001: "No matching user found"
        kind = "user_unavailable"
    elif code == 190:
        kind = "token_invalid"
    elif status == 429 or code in (4, 17, 32, 613):
        kind = "rate_limited"
    elif status >= 500 or code in (1, 2) or error.get("is_transient") is True:
        reason = f"Facebook đang gặp lỗi tạm thời (platform error: {detail})"
        return SendError(reason, retryable=True, code="platform_error")
    else:
        return SendError(f"Facebook từ chối tin nhắn ({detail})", retryable=False, code="rejected")
    reason, retryable = _ERRORS[kind]
    return SendError(reason, retryable=retryable, code=kind)


class GraphClient:
    """Just enough of the Graph API: the Send API and the user profile. Every failure is a SendError."""

    def __init__(
        self, base_url: str, session: aiohttp.ClientSession, api_version: str = DEFAULT_API_VERSION,
        *, timeout: float = 20.0,
    ) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.api_version = api_version
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def send_message(
        self,
        page_token: str,
        psid: str,
        *,
        text: str | None = None,
        attachment_url: str | None = None,
        attachment_kind: str | None = None,
        messaging_type: str = "RESPONSE",
        tag: str | None = None,
        metadata: str | None = None,
    ) -> SendResult:
        """Send one message: Messenger takes text or one attachment per message, never both (ValueError)."""
        if (text is None) == (attachment_url is None):
            raise ValueError("send_message needs exactly one of text or attachment_url")
        if text is not None:
            message: dict[str, Any] = {"text": text}
        else:
            kind = attachment_kind if attachment_kind in _SEND_KINDS else "file"
            message = {"attachment": {"type": kind, "payload": {"url": attachment_url, "is_reusable": True}}}
        if metadata is not None:
            message["metadata"] = metadata
        body: dict[str, Any] = {"recipient": {"id": psid}, "messaging_type": messaging_type}
        if tag is not None:
            body["tag"] = tag
        body["message"] = message
        data = await self._request("POST", "me/messages", page_token, body=body)
        message_id = id_of(data.get("message_id"))
        if message_id is None:  # not retryable: it may have gone out, and a retry could send it twice
            reason = "Facebook trả lời không rõ ràng (unexpected Send API response)"
            raise SendError(reason, retryable=False, code="bad_response")
        return SendResult(external_id=message_id)

    # -- Page comments --------------------------------------------------------------------------------

    async def reply_to_comment(self, page_token: str, comment_id: str, text: str) -> SendResult:
        """A public reply under the comment; the result's id is the new comment's id."""
        data = await self._request("POST", f"{quote(comment_id, safe='')}/comments", page_token, body={"message": text})
        new_id = id_of(data.get("id"))
        if new_id is None:
            raise SendError("Facebook trả lời không rõ ràng (unexpected comment response)", retryable=False,
                            code="bad_response")  # fmt: skip
        return SendResult(external_id=new_id)

    async def private_reply(
        self, page_token: str, comment_id: str, text: str, metadata: str | None = None
    ) -> SendResult:
        """A Messenger message to the comment's author (once per comment, within 7 days of it).

        The answer's `recipient_id` is the author's page-scoped id (PSID): the Messenger identity to link.
        """
        message: dict[str, Any] = {"text": text}
        if metadata is not None:
            message["metadata"] = metadata
        body = {"recipient": {"comment_id": comment_id}, "message": message}
        data = await self._request("POST", "me/messages", page_token, body=body)
        message_id = id_of(data.get("message_id"))
        if message_id is None:
            raise SendError("Facebook trả lời không rõ ràng (unexpected Send API response)", retryable=False,
                            code="bad_response")  # fmt: skip
        return SendResult(external_id=message_id, recipient_id=id_of(data.get("recipient_id")))

    async def set_comment_hidden(self, page_token: str, comment_id: str, hidden: bool) -> None:
        """Hidden comments stay visible to their author and friends, not to the public (competitors)."""
        params = {"is_hidden": "true" if hidden else "false"}
        await self._request("POST", quote(comment_id, safe=""), page_token, params=params)

    async def delete_comment(self, page_token: str, comment_id: str) -> None:
        await self._request("DELETE", quote(comment_id, safe=""), page_token)

    async def fetch_post(self, page_token: str, post_id: str) -> dict[str, str | None]:
        data = await self._request(
            "GET", quote(post_id, safe=""), page_token, params={"fields": "message,permalink_url"}
        )
        return {"post_text": str_of(data.get("message")), "permalink": str_of(data.get("permalink_url"))}

    async def fetch_profile(self, page_token: str, psid: str) -> Profile:
        fields = {"fields": "first_name,last_name,name,profile_pic"}
        data = await self._request("GET", quote(psid, safe=""), page_token, params=fields)
        name = str_of(data.get("name"))
        if not name:
            parts = (str_of(data.get("first_name")), str_of(data.get("last_name")))
            name = " ".join(p for p in parts if p) or None
        return Profile(name=name, picture_url=str_of(data.get("profile_pic")))

    async def _request(
        self, method: str, path: str, token: str, *, body: Any = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        url = f"{self.base_url}/{self.api_version}/{path}"
        query = {**(params or {}), "access_token": token}
        try:
            request = self.session.request(method, url, params=query, json=body, timeout=self.timeout)
            async with request as resp:
                status, retry_after = resp.status, resp.headers.get("Retry-After")
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:  # asyncio.TimeoutError is TimeoutError on 3.11
            raise SendError(NETWORK_REASON, retryable=True, code="network_error") from exc
        try:
            data: Any = json.loads(raw) if raw else {}
        except ValueError:
            data = raw.decode("utf-8", "replace")
        data = nul_free(data)  # names, post texts, error messages: all stored, and PostgreSQL cannot store a NUL
        if status >= 400 or not isinstance(data, dict) or "error" in data:
            err = classify_error(status, data)
            if err.retryable and retry_after and retry_after.isdigit():
                err.retry_after = float(retry_after)
            raise err
        return data
