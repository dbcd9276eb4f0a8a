"""Creating a channel inbox: the one set of rules `hopthu inbox add` and `POST /api/inboxes` both follow.

Per channel: which fields are needed, what the account id is (the Page, the OA, the bot), refusing a second
inbox for the same account, and for Telegram checking the token (getMe) and registering the webhook with the
secret token (setWebhook) — a webhook Telegram refuses leaves no inbox behind. Needs the database connected.

Messages name fields the way the caller's user knows them (`--page-id` on the command line, `page_id` in the
API), through `Namer`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tortoise.exceptions import IntegrityError

from channels import telegram
from channels.base import SendError
from channels.telegram import TelegramClient
from inbox import webchat
from inbox.models import Inbox

CHANNELS = ("facebook", "zalo", "telegram", "webchat")
# The fields each channel needs; the first one of Facebook's and Zalo's is the account id, the rest credentials.
REQUIRED: dict[str, tuple[str, ...]] = {
    "facebook": ("page_id", "page_token", "app_secret", "verify_token"),
    "zalo": ("oa_id", "app_id", "oa_secret", "access_token", "refresh_token", "app_secret"),
    "telegram": ("bot_token",),  # the secret token is generated when not given
    "webchat": (),
}
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # Telegram's rule for X-Telegram-Bot-Api-Secret-Token
MAX_FIELD_LENGTH = 4096
MAX_ACCOUNT_ID_LENGTH = 128  # inboxes.external_id

Namer = Callable[[str], str]


def api_name(field_name: str) -> str:
    return field_name


def cli_flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


class InboxRefused(ValueError):
    """Why an inbox was not created; `code` is the API's error code, `fields` the fields at fault."""

    def __init__(self, code: str, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.code, self.fields = code, fields


@dataclass(frozen=True)
class Created:
    inbox: Inbox
    extra: dict[str, Any] = field(default_factory=dict)  # what the admin needs once: username, identity secret…


def webhook_path(inbox: Inbox) -> str | None:
    """Where the platform posts this inbox's events, relative to the public URL; the website chat has none."""
    if inbox.channel == telegram.CHANNEL:
        return f"/webhooks/telegram/{inbox.id}"  # one bot per inbox
    return f"/webhooks/{inbox.channel}" if inbox.channel in ("facebook", "zalo") else None


def webhook_url(public_url: str, inbox: Inbox) -> str | None:
    """The whole address the platform posts to: what Telegram is told, and what the set-up and the cards show."""
    path = webhook_path(inbox)
    return public_url.rstrip("/") + path if path else None


def missing_fields(channel: str, values: dict[str, Any]) -> list[str]:
    return [f for f in REQUIRED[channel] if not values.get(f)]


def _check_fields(channel: str, values: dict[str, Any], name_of: Namer) -> None:
    if channel not in CHANNELS:
        raise InboxRefused("invalid_channel", f"channel must be one of {', '.join(CHANNELS)}")
    if missing := missing_fields(channel, values):
        raise InboxRefused(
            "missing_fields",
            f"{name_of('channel')} {channel} needs " + ", ".join(map(name_of, missing)),
            tuple(missing),
        )
    for key in (*REQUIRED[channel], "secret_token"):
        value = values.get(key)
        longest = MAX_ACCOUNT_ID_LENGTH if key in ("page_id", "oa_id") else MAX_FIELD_LENGTH
        if value is not None and not (isinstance(value, str) and len(value) <= longest):
            message = f"{name_of(key)} must be a string of at most {longest} characters"
            raise InboxRefused("invalid_field", message, (key,))


async def _refuse_duplicate(channel: str, external_id: str, label: str) -> None:
    if await Inbox.exists(channel=channel, external_id=external_id):
        raise InboxRefused("inbox_exists", f"a {channel} inbox for {label} already exists")


async def _create(name: str, channel: str, external_id: str, label: str, **row: Any) -> Inbox:
    try:
        return await Inbox.create(name=name, channel=channel, external_id=external_id, **row)
    except IntegrityError as exc:  # the same account added by another admin at the same moment
        raise InboxRefused("inbox_exists", f"a {channel} inbox for {label} already exists") from exc


async def create(
    channel: str,
    name: str,
    values: dict[str, Any],
    *,
    public_url: str,
    telegram_client: TelegramClient | None = None,
    name_of: Namer = api_name,
) -> Created:
    """A new inbox of `channel` from the channel's fields in `values`, or `InboxRefused` and nothing stored."""
    _check_fields(channel, values, name_of)
    if channel == "telegram":
        if telegram_client is None:
            raise ValueError("a Telegram inbox needs the Bot API client")
        secret_token = values.get("secret_token") or secrets.token_urlsafe(32)
        return await _create_telegram(name, values["bot_token"], secret_token, public_url, telegram_client, name_of)
    if channel == "webchat":
        return await _create_webchat(name, values.get("allowed_origins") or [], bool(values.get("prechat")))
    external_id, *credential_names = REQUIRED[channel]
    account = values[external_id]
    await _refuse_duplicate(channel, account, account)
    credentials = {key: values[key] for key in credential_names}
    inbox = await _create(name, channel, account, account, credentials=credentials)
    return Created(inbox)


async def _create_telegram(
    name: str, bot_token: str, secret_token: str, public_url: str, client: TelegramClient, name_of: Namer
) -> Created:
    """Check the token (getMe), store the inbox, register the webhook with the secret token."""
    if not telegram.valid_token(bot_token):
        raise InboxRefused(
            "invalid_bot_token",
            f"{name_of('bot_token')} does not look like a bot token (123456789:AA…, from @BotFather)",
            ("bot_token",),
        )
    if not SECRET_TOKEN.fullmatch(secret_token):
        raise InboxRefused(
            "invalid_secret_token",
            f"{name_of('secret_token')} must be 1–256 characters: letters, digits, '_' or '-' (Telegram's rule)",
            ("secret_token",),
        )
    try:
        me = await client.get_me(bot_token)
    except SendError as exc:
        code = "telegram_unavailable" if exc.retryable else "telegram_refused"
        raise InboxRefused(code, f"Telegram refused the bot token: {exc.reason}", ("bot_token",)) from exc
    bot_id, label = str(me["id"]), f"bot {me['id']} (@{me['username']})"
    await _refuse_duplicate(telegram.CHANNEL, bot_id, label)
    credentials = {"bot_token": bot_token, "secret_token": secret_token, "username": me["username"]}
    inbox = await _create(name, telegram.CHANNEL, bot_id, label, credentials=credentials)
    url = webhook_url(public_url, inbox)
    try:
        await client.set_webhook(bot_token, url, secret_token)
    except SendError as exc:
        await inbox.delete()
        code = "telegram_unavailable" if exc.retryable else "telegram_webhook_refused"
        raise InboxRefused(code, f"Telegram refused the webhook {url}: {exc.reason}") from exc
    return Created(inbox, {"username": me["username"]})


async def _create_webchat(name: str, allowed_origins: object, prechat: bool) -> Created:
    if not isinstance(allowed_origins, list) or not all(isinstance(o, str) for o in allowed_origins):
        raise InboxRefused("invalid_allowed_origins", "allowed_origins is a list of sites like https://shop.example")
    try:
        inbox = await webchat.create_inbox(name, allowed_origins, prechat=prechat)
    except ValueError as exc:
        raise InboxRefused("invalid_allowed_origins", str(exc), ("allowed_origins",)) from exc
    return Created(inbox, {"widget_token": inbox.external_id, "identity_secret": inbox.credentials["identity_secret"]})
