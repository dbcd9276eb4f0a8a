"""Zalo Official Account: webhook signature, payload parsing, OA customer-service message API and OAuth refresh.

Pure adapter (see /work/shared/docs/CHANNELS.md): no database access, no business rules. Every id and the
timestamp arrive as strings (ids exceed 2^53): they stay strings here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from channels.base import Profile, SendError, SendResult
from channels.events import (
    Attachment,
    InboundMessage,
    MessageReaction,
    Receipt,
    Referral,
    Unrecognized,
    _digest,
    from_millis,
)
from channels.payload import dig, id_of, nul_free, unrecognized

CHANNEL = "zalo"
SIGNATURE_HEADER = "X-ZEvent-Signature"
NETWORK_REASON = "Không kết nối được Zalo (network error)"
_MILLIS = re.compile(r"\d{1,15}")

ParsedEvent = InboundMessage | Receipt | Referral | MessageReaction | Unrecognized

_USER_MESSAGE_KINDS = {
    "user_send_text": None, "anonymous_send_text": None, "user_send_image": "image", "user_send_gif": "gif",
    "user_send_link": "link", "user_send_sticker": "sticker", "user_send_audio": "audio",
    "user_send_video": "video", "user_send_file": "file", "user_send_location": "location",
    "anonymous_send_image": "image", "anonymous_send_file": "file", "anonymous_send_sticker": "sticker",
    "user_send_business_card": "file",
}  # fmt: skip
_OA_ECHO_PREFIX = "oa_send_"
# Zalo's reaction codes as the emoji its apps draw; a code not listed is shown as Zalo sent it.
_REACTION_EMOJI = {"/-heart": "❤️", "/-strong": "👍", ":>": "😆", ":o": "😮", ":-((": "😢", ":-h": "😡", "/-weak": "👎"}

# ---------------------------------------------------------------------------------------------- webhook


def sign(app_id: str, raw: bytes, timestamp: str, oa_secret: str) -> str:
    """The `X-ZEvent-Signature` value: plain SHA-256 (not HMAC) of app_id + body + timestamp + OA secret."""
    digest = hashlib.sha256(app_id.encode() + raw + timestamp.encode() + oa_secret.encode()).hexdigest()
    return "mac=" + digest


def verify_signature(raw: bytes, header: str | None, app_id: str, timestamp: str, oa_secret: str) -> bool:
    if not header or not oa_secret or not app_id:
        return False
    given = header.strip().removeprefix("mac=").strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(sign(app_id, raw, timestamp, oa_secret).removeprefix("mac=").encode(), given)


def envelope(payload: Any) -> tuple[str | None, str | None, str | None]:
    """(app_id, timestamp, OA id) read leniently before verification: what the signature and routing need."""
    if not isinstance(payload, dict):
        return None, None, None
    return id_of(payload.get("app_id")), _stamp(payload.get("timestamp")), oa_id_of(payload)


def oa_id_of(payload: dict[str, Any]) -> str | None:
    """The OA the event belongs to: recipient of a user's event, sender of the OA's own, `oa_id` otherwise."""
    event = _str(payload.get("event_name")) or ""
    if id_of(payload.get("oa_id")):
        return id_of(payload.get("oa_id"))
    if event.startswith(_OA_ECHO_PREFIX):
        return id_of(dig(payload, "sender", "id"))
    return id_of(dig(payload, "recipient", "id"))


# ---------------------------------------------------------------------------------------------- parsing


def parse(payload: Any) -> list[ParsedEvent]:
    """One Zalo webhook body (one event per request) into channel events; never raises for odd content."""
    if not isinstance(payload, dict):
        return [unrecognized(CHANNEL, None, "body is not an object", payload)]
    try:
        return _parse(payload)
    except Exception as exc:  # a parser bug must never turn into a 500: Zalo disables webhooks that fail
        return [unrecognized(CHANNEL, oa_id_of(payload), f"could not parse: {type(exc).__name__}: {exc}", payload)]


def _parse(payload: dict[str, Any]) -> list[ParsedEvent]:
    name = _str(payload.get("event_name")) or ""
    oa = oa_id_of(payload)
    at = _millis(payload.get("timestamp"))
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}

    def bad(reason: str) -> list[ParsedEvent]:
        return [unrecognized(CHANNEL, oa, reason, payload)]

    if oa is None or at is None:
        return bad("event without OA id or timestamp")
    if name in _USER_MESSAGE_KINDS or name.startswith(_OA_ECHO_PREFIX):
        echo = name.startswith(_OA_ECHO_PREFIX)
        user = id_of(dig(payload, "recipient" if echo else "sender", "id"))
        msg_id = id_of(message.get("msg_id"))
        if user is None or msg_id is None:
            return bad("message without user or msg_id")
        attachments = _attachments(message.get("attachments"))
        if not attachments and _USER_MESSAGE_KINDS.get(name):
            attachments = (Attachment(kind=_USER_MESSAGE_KINDS[name] or "file"),)
        return [InboundMessage(
            channel=CHANNEL, account_id=oa, contact_external_id=user, external_id=msg_id, occurred_at=at,
            text=_str(message.get("text")), attachments=attachments, direction="out" if echo else "in",
            reply_to_external_id=id_of(message.get("quote_msg_id")),
        )]  # fmt: skip
    if name == "user_submit_info":  # the customer shared their details with the OA (a form in Zalo)
        user, info = id_of(dig(payload, "sender", "id")), payload.get("info")
        if user is None or not isinstance(info, dict):
            return bad("user_submit_info without user or info")
        fields = [f"{label}: {_str(info.get(key))}" for key, label in
                  (("name", "Tên"), ("phone", "SĐT"), ("address", "Địa chỉ")) if _str(info.get(key))]  # fmt: skip
        stamp = _stamp(payload.get("timestamp"))
        return [InboundMessage(
            channel=CHANNEL, account_id=oa, contact_external_id=user, external_id=f"submit:{user}:{stamp}",
            occurred_at=at, text="Khách chia sẻ thông tin — " + "; ".join(fields) if fields else None,
            shared_phone=_str(info.get("phone")), contact_name=_str(info.get("name")),
        )]  # fmt: skip
    if name in ("user_received_message", "user_seen_message"):
        user = id_of(dig(payload, "sender", "id"))
        ids = [id_of(message.get("msg_id"))] + [id_of(m) for m in message.get("msg_ids") or [] if m is not None]
        if user is None:
            return bad(f"{name} without user")
        return [Receipt(
            channel=CHANNEL, account_id=oa, contact_external_id=user,
            status="delivered" if name == "user_received_message" else "read", watermark=at,
            external_ids=tuple(i for i in ids if i),
        )]  # fmt: skip
    if name in ("follow", "unfollow"):
        user = id_of(dig(payload, "follower", "id"))
        if user is None:
            return bad(f"{name} without follower")
        source = _str(payload.get("source"))
        return [Referral(
            channel=CHANNEL, account_id=oa, contact_external_id=user, occurred_at=at,
            referral={"type": name, "source": source} if source else {"type": name},
        )]  # fmt: skip
    if name == "user_reacted_message":  # the customer reacted to a message (mostly the OA's reply)
        user, msg_id = id_of(dig(payload, "sender", "id")), id_of(message.get("msg_id"))
        if user is None or msg_id is None:
            return bad("user_reacted_message without user or msg_id")
        icon = (_str(message.get("react_icon")) or "")[:32]
        return [MessageReaction(
            channel=CHANNEL, account_id=oa, contact_external_id=user, external_id=msg_id, occurred_at=at,
            emoji=None if icon in ("", "/-remove") else _REACTION_EMOJI.get(icon, icon),
        )]  # fmt: skip
    return bad(f"unsupported Zalo event {name!r}")


def _attachments(raw: Any) -> tuple[Attachment, ...]:
    out = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
        kind = _str(item.get("type")) or "file"
        lat = lon = None
        if kind == "location":
            coords = payload.get("coordinates") if isinstance(payload.get("coordinates"), dict) else {}
            lat, lon = _float(coords.get("latitude")), _float(coords.get("longitude"))
        url = _str(payload.get("url")) or _str(payload.get("thumbnail"))
        out.append(Attachment(kind=kind, url=url, name=_str(payload.get("name")), latitude=lat, longitude=lon,
                              title=_str(payload.get("description")) or _str(payload.get("title"))))  # fmt: skip
    return tuple(out)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _stamp(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if abs(number) <= 180 else None


def _millis(value: Any) -> datetime | None:
    stamp = _stamp(value)
    if stamp is None or not _MILLIS.fullmatch(stamp):
        return None
    try:
        return from_millis(stamp)
    except (ValueError, OverflowError, OSError):
        return None


def receipt_key(user: str, msg_ids: tuple[str, ...]) -> str:
    return _digest(f"{user}|{','.join(sorted(msg_ids))}")


# ---------------------------------------------------------------------------------------------- OA API


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_at: datetime


class TokenRefused(Exception):
    """Zalo refused the refresh token (used, revoked or expired): an admin must authorise the OA again."""


_TOKEN_ERRORS = {-216, -124, -14014, -14002, -118}  # access token invalid / expired
# -201 is "Parameters are invalid" (what the fake answers to a malformed send): a rejection to show as Zalo words it,
# not the interaction window, which would send the agent to wait for a customer who cannot unblock it.
_WINDOW_ERRORS = {-230, -213}  # not interacted recently / not a follower
_QUOTA_ERRORS = {-211, -240}


def classify_error(status: int, body: Any) -> SendError:
    data = body if isinstance(body, dict) else {}
    code = data.get("error")
    code = int(code) if isinstance(code, int | str) and str(code).lstrip("-").isdigit() else None
    detail = (_str(data.get("message")) or (body if isinstance(body, str) else "") or f"HTTP {status}")[:300]
    if code in _TOKEN_ERRORS:
        return SendError("Mã truy cập Zalo OA hết hạn (access token expired)", retryable=True, code="token_invalid")
    if code in _WINDOW_ERRORS:
        reason = (
            f"Khách chưa tương tác với OA gần đây, Zalo không cho gửi (outside Zalo's interaction window: {detail})"
        )
        return SendError(reason, retryable=False, code="outside_window")
    if code in _QUOTA_ERRORS:
        return SendError(f"Hết hạn mức tin nhắn Zalo (message quota used up: {detail})", retryable=False,
                         code="quota_exhausted")  # fmt: skip
    if code == -32 or status == 429:
        return SendError("Zalo đang giới hạn tốc độ gửi (rate limited)", retryable=True, code="rate_limited")
    if status >= 500:
        return SendError(f"Zalo đang gặp lỗi tạm thời (platform error: {detail})", retryable=True,
                         code="platform_error")  # fmt: skip
    return SendError(f"Zalo từ chối tin nhắn ({detail})", retryable=False, code="rejected")


_REFRESH_NOT_JUDGED = {408, 425, 429}  # HTTP: timed out or rate limited before the refresh token was looked at
_RATE_LIMIT_ERRORS = {-32}  # "Exceed rate limit"


def _refresh_failure(status: int, data: dict[str, Any] | None, retry_after: str | None) -> Exception:
    """A failed refresh. Only Zalo's own refusal (its answer names an error) means the refresh token is dead and the
    OA must be authorised again; a rate limit, a timeout, a server error or an answer that is not Zalo's leaves the
    token unjudged: a SendError to try again later, with the same refresh token."""
    code = (data or {}).get("error")
    number = int(code) if isinstance(code, int | str) and str(code).lstrip("-").isdigit() else None
    wait = float(retry_after) if retry_after and retry_after.isdigit() else None
    if status == 429 or number in _RATE_LIMIT_ERRORS:
        return SendError("Zalo OAuth đang giới hạn tốc độ làm mới mã truy cập (token refresh rate limited)",
                         retryable=True, code="rate_limited", retry_after=wait)  # fmt: skip
    if status >= 500 or status in _REFRESH_NOT_JUDGED:
        return SendError(f"Zalo OAuth lỗi tạm thời (HTTP {status})", retryable=True, code="platform_error",
                         retry_after=wait)  # fmt: skip
    refused = number not in (None, 0) or (isinstance(code, str) and code not in ("", "0"))
    described = _str(dig(data, "error_description")) or _str(dig(data, "error_reason")) or _str(dig(data, "error_name"))
    if refused or described:
        return TokenRefused(described or f"{code} (HTTP {status})")
    return SendError(f"Zalo OAuth trả lời không rõ ràng (unexpected token refresh answer, HTTP {status})",
                     retryable=True, code="bad_response")  # fmt: skip


class ZaloClient:
    """The OA customer-service message API, user detail and the OAuth refresh. Failures are SendErrors."""

    def __init__(self, openapi_url: str, oauth_url: str, session: aiohttp.ClientSession, *, timeout: float = 20.0):
        self.openapi_url = openapi_url.rstrip("/")
        self.oauth_url = oauth_url.rstrip("/")
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def send_text(
        self, access_token: str, user_id: str, text: str, quote_message_id: str | None = None
    ) -> SendResult:
        message: dict[str, Any] = {"text": text}
        if quote_message_id:
            message["quote_message_id"] = quote_message_id
        body = {"recipient": {"user_id": user_id}, "message": message}
        data = await self._call("POST", "/v3.0/oa/message/cs", access_token, json_body=body)
        message_id = id_of(dig(data, "data", "message_id"))
        if message_id is None:  # not retryable: it may have gone out
            raise SendError("Zalo trả lời không rõ ràng (unexpected send response)", retryable=False,
                            code="bad_response")  # fmt: skip
        return SendResult(external_id=message_id, recipient_id=id_of(dig(data, "data", "user_id")))

    async def user_detail(self, access_token: str, user_id: str) -> tuple[Profile, str | None]:
        """The profile, and the phone the user shared with the OA (if any): the API gives none otherwise."""
        query = {"data": json.dumps({"user_id": user_id}, separators=(",", ":"))}
        data = await self._call("GET", "/v3.0/oa/user/detail", access_token, params=query)
        detail = data.get("data") if isinstance(data.get("data"), dict) else {}
        avatars = detail.get("avatars") if isinstance(detail.get("avatars"), dict) else {}
        picture = _str(avatars.get("240")) or _str(detail.get("avatar")) or _str(avatars.get("120"))
        shared = detail.get("shared_info") if isinstance(detail.get("shared_info"), dict) else {}
        phone = shared.get("phone")
        phone = str(phone) if isinstance(phone, int | str) and not isinstance(phone, bool) and phone != "" else None
        return Profile(name=_str(detail.get("display_name")), picture_url=picture), phone

    async def refresh(self, app_id: str, app_secret: str, refresh_token: str, now: datetime | None = None) -> TokenPair:
        """Spend `refresh_token` (single-use) for a new pair. TokenRefused when Zalo says no."""
        form = {"refresh_token": refresh_token, "app_id": app_id, "grant_type": "refresh_token"}
        url = f"{self.oauth_url}/v4/oa/access_token"
        try:
            request = self.session.post(url, data=form, headers={"secret_key": app_secret}, timeout=self.timeout)
            async with request as resp:
                status, raw, retry_after = resp.status, await resp.read(), resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError(NETWORK_REASON, retryable=True, code="network_error") from exc
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        data = nul_free(data) if isinstance(data, dict) else None  # stored: the tokens, or the refusal as a reason
        access, refresh = _str(dig(data, "access_token")), _str(dig(data, "refresh_token"))
        if status >= 400 or not access or not refresh:
            raise _refresh_failure(status, data, retry_after)
        expires = dig(data, "expires_in")
        seconds = int(expires) if isinstance(expires, int | str) and str(expires).isdigit() else 90000
        return TokenPair(access, refresh, (now or datetime.now(UTC)) + timedelta(seconds=seconds))

    async def _call(
        self, method: str, path: str, access_token: str, *, json_body: Any = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            request = self.session.request(
                method, self.openapi_url + path, json=json_body, params=params,
                headers={"access_token": access_token}, timeout=self.timeout,
            )  # fmt: skip
            async with request as resp:
                status, raw = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError(NETWORK_REASON, retryable=True, code="network_error") from exc
        try:
            data: Any = json.loads(raw) if raw else {}
        except ValueError:
            data = raw.decode("utf-8", "replace")
        data = nul_free(data)  # names, avatars, error messages: all stored, and PostgreSQL cannot store a NUL
        if status >= 400 or not isinstance(data, dict) or data.get("error") not in (0, "0"):
            raise classify_error(status, data)
        return data
