"""Website live chat: visitor tokens, identity verification, the pre-chat form and the visitor's frames.

Pure functions (no database, no sockets): `inbox/webchat.py` serves the widget and calls these.

- A visitor token is `<payload>.<signature>`: base64url JSON `{"w": widget token, "v": visitor id, "t": issued}`
  signed with HMAC-SHA256 under the server's secret key. The visitor id becomes the contact identity's
  external id on the inbox: `v:<random>` for an anonymous visitor, `u:<identifier>` for a site user whose
  identifier came with a valid `identifier_hash = HMAC-SHA256(key=widget secret, msg=identifier)` (hex).
- A visitor message's external id is `wc:<echo_id>:<visitor id>`, so a message re-sent after a reconnect is
  stored once, and the server can tell which visitor wrote it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from channels.events import Attachment, InboundMessage, ParseError

CHANNEL = "webchat"
TOKEN_LIFETIME_SECONDS = 400 * 24 * 3600  # a returning visitor keeps the conversation for about a year
MAX_TEXT = 2000
MAX_IDENTIFIER = 100
ECHO_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']+\.[^@\s<>\"']{2,}$")
IMAGE_TYPES = {  # magic bytes → (mime type, file extension); the browser's claimed type is never trusted
    b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
    b"\xff\xd8\xff": ("image/jpeg", "jpg"),
    b"GIF87a": ("image/gif", "gif"),
    b"GIF89a": ("image/gif", "gif"),
}


class InvalidVisitor(ValueError):
    """A visitor token or an identity hash that does not verify: the visitor starts (or stays) anonymous."""


@dataclass(frozen=True, slots=True)
class Visitor:
    widget_token: str
    external_id: str  # "v:<random>" or "u:<identifier>"

    @property
    def identified(self) -> bool:
        return self.external_id.startswith("u:")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), b"hopthu-visitor|" + payload.encode(), hashlib.sha256).digest())


def new_visitor(widget_token: str) -> Visitor:
    return Visitor(widget_token, "v:" + secrets.token_urlsafe(18))


def sign_visitor(secret: str, visitor: Visitor, *, now: float | None = None) -> str:
    payload = _b64(orjson.dumps({"w": visitor.widget_token, "v": visitor.external_id, "t": int(now or time.time())}))
    return f"{payload}.{_mac(secret, payload)}"


def verify_visitor(secret: str, token: str, widget_token: str, *, now: float | None = None) -> Visitor:
    """The visitor the token names, if it is genuine, for this widget, and not expired."""
    payload, _, signature = (token or "").partition(".")
    if not payload or not signature or not hmac.compare_digest(signature, _mac(secret, payload)):
        raise InvalidVisitor("visitor token signature does not match")
    try:
        data = orjson.loads(_unb64(payload))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidVisitor("visitor token is unreadable") from exc
    if not isinstance(data, dict) or data.get("w") != widget_token or not isinstance(data.get("v"), str):
        raise InvalidVisitor("visitor token belongs to another widget")
    if not isinstance(data.get("t"), int) or (now or time.time()) - data["t"] > TOKEN_LIFETIME_SECONDS:
        raise InvalidVisitor("visitor token expired")
    return Visitor(widget_token, data["v"])


def identifier_hash(widget_secret: str, identifier: str) -> str:
    """What the site's server computes for its logged-in user (CHANNELS.md): hex HMAC-SHA256."""
    return hmac.new(widget_secret.encode(), identifier.encode(), hashlib.sha256).hexdigest()


def identified_visitor(widget_token: str, widget_secret: str, identifier: str, given_hash: str) -> Visitor:
    identifier = (identifier or "").strip()
    if not identifier or len(identifier) > MAX_IDENTIFIER:
        raise InvalidVisitor(f"identifier must be 1–{MAX_IDENTIFIER} characters")
    if "\x00" in identifier:  # an id, not text to clean up; PostgreSQL could not store it
        raise InvalidVisitor("identifier must not contain a NUL character")
    if not widget_secret or not hmac.compare_digest(
        identifier_hash(widget_secret, identifier), (given_hash or "").strip().lower()
    ):
        raise InvalidVisitor("identifier_hash does not match the identifier")
    return Visitor(widget_token, "u:" + identifier)


def message_external_id(visitor: Visitor, echo_id: str) -> str:
    return f"wc:{echo_id}:{visitor.external_id}"


def split_external_id(external_id: str | None) -> tuple[str, str] | None:
    """(echo id, visitor id) of a visitor's message; None for anything else."""
    if not external_id or not external_id.startswith("wc:"):
        return None
    _, echo_id, visitor_id = external_id.split(":", 2) if external_id.count(":") >= 2 else ("", "", "")
    return (echo_id, visitor_id) if echo_id and visitor_id else None


def visitor_message(
    visitor: Visitor, data: object, *, image_url: str | None = None, at: datetime | None = None
) -> InboundMessage:
    """The visitor's `message` frame as a channel event. Raises ParseError with a reason the widget can show."""
    if not isinstance(data, dict):
        raise ParseError("message data must be an object")
    echo_id = data.get("echo_id")
    if not isinstance(echo_id, str) or not ECHO_ID.match(echo_id):
        raise ParseError("echo_id must be 1–64 letters, digits, '-' or '_'")
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise ParseError("text must be a string")
    text = (text or "").strip() or None
    if text is not None and len(text) > MAX_TEXT:
        raise ParseError(f"text is limited to {MAX_TEXT} characters")
    if text is None and image_url is None:
        raise ParseError("a message needs text or an image")
    attachments = (Attachment(kind="image", url=image_url),) if image_url else ()
    return InboundMessage(
        channel=CHANNEL,
        account_id=visitor.widget_token,
        contact_external_id=visitor.external_id,
        external_id=message_external_id(visitor, echo_id),
        occurred_at=at or datetime.now(UTC),
        text=text,
        attachments=attachments,
    )


def sniff_image(content: bytes) -> tuple[str, str] | None:
    """(mime type, extension) from the file's own first bytes; None for anything that is not PNG/JPEG/GIF/WebP."""
    for magic, kind in IMAGE_TYPES.items():
        if content.startswith(magic):
            return kind
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return ("image/webp", "webp")
    return None


@dataclass(frozen=True, slots=True)
class PreChat:
    name: str | None
    phone: str | None  # E.164
    email: str | None
    consent: bool


def prechat_form(data: object, normalize_phone) -> PreChat:
    """Validate the pre-chat form. The consent box must be ticked: details are only kept with consent.

    Raises ParseError naming the first bad field (`field: reason`), for the widget to show beside it.
    """
    if not isinstance(data, dict):
        raise ParseError("form: expected an object")
    name = _text_field(data, "name", 200)
    raw_phone = _text_field(data, "phone", 40)
    email = _text_field(data, "email", 254)
    phone = None
    if raw_phone:
        phone = normalize_phone(raw_phone)
        if phone is None:
            raise ParseError("phone: số điện thoại không hợp lệ (not a valid phone number)")
    if email:
        email = email.lower()
        if not EMAIL.match(email):
            raise ParseError("email: địa chỉ e-mail không hợp lệ (not a valid e-mail address)")
    if not (name or phone or email):
        raise ParseError("name: hãy điền ít nhất một thông tin (fill in at least one field)")
    if data.get("consent") is not True:
        raise ParseError("consent: cần đồng ý để lưu thông tin liên hệ (consent is required to keep your details)")
    return PreChat(name, phone, email, True)


def _text_field(data: dict, key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParseError(f"{key}: must be text")
    value = " ".join(value.replace("\x00", " ").split())  # PostgreSQL's text cannot hold NUL: it is a space here
    if len(value) > limit:
        raise ParseError(f"{key}: at most {limit} characters")
    return value or None
