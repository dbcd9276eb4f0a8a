"""A local fake of the Telegram Bot API, plus update builders, for tests, the demo and benchmarks.

It answers what hopthu calls (getMe, setWebhook, deleteWebhook, getWebhookInfo, sendMessage, sendPhoto,
sendDocument, getChat, getFile and file downloads) the way the Bot API does — `{"ok": true, "result": …}` or
`{"ok": false, "error_code": …, "description": …}` — and records every request. `fail_next` scripts errors:
"bot was blocked by the user" (403), flood control (429 with `parameters.retry_after`), bad request, server error;
a chat in `blocked` gets the 403 on every send, as a customer who blocked the bot does until they unblock it.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Failure = Literal["blocked", "retry_after", "bad_request", "server", "unauthorized"]
SEND_METHODS = ("sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendVideo", "sendSticker", "sendLocation")


@dataclass(frozen=True, slots=True)
class BotRequest:
    method: str
    token: str
    params: dict[str, Any]


@dataclass
class FakeBot:
    token: str
    id: int
    username: str
    first_name: str
    webhook: dict[str, Any] = field(default_factory=dict)


class FakeBotAPI:
    def __init__(self) -> None:
        self.requests: list[BotRequest] = []
        self.bots: dict[str, FakeBot] = {}
        self.chats: dict[int, dict[str, Any]] = {}  # chat id → getChat result (private chats)
        self.files: dict[str, bytes] = {}  # file id → content
        self.blocked: set[int] = set()  # chats whose customer blocked the bot
        self.base_url = ""
        self._failures: deque[tuple[Failure, str | None, int, str | None]] = deque()
        self._message_ids = itertools.count(1000)
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_route("*", "/bot{token}/{method}", self._method)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._file)

    # -- scripting --------------------------------------------------------------------------------------

    def add_bot(self, token: str, bot_id: int | None = None, username: str = "shop_mai_anh_bot") -> FakeBot:
        bot_id = bot_id if bot_id is not None else int(token.split(":", 1)[0])
        bot = self.bots[token] = FakeBot(token, bot_id, username, "Shop Mai Anh")
        return bot

    def fail_next(
        self, kind: Failure, n: int = 1, *, method: str | None = None, retry_after: int = 3,
        description: str | None = None,
    ) -> None:  # fmt: skip
        """The next `n` calls (of `method`, or any) fail like the Bot API does, with Telegram's `description` for
        that failure unless one is given."""
        self._failures.extend((kind, method, retry_after, description) for _ in range(n))

    def calls(self, method: str) -> list[BotRequest]:
        return [r for r in self.requests if r.method == method]

    def sent(self) -> list[BotRequest]:
        """Every send call, failed ones included, in order."""
        return [r for r in self.requests if r.method in SEND_METHODS]

    # -- lifecycle --------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers ---------------------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            for key, value in (await request.post()).items():
                if isinstance(value, str) and value[:1] in "[{":
                    try:
                        value = json.loads(value)
                    except ValueError:
                        pass
                params[key] = value if isinstance(value, str | dict | list) else getattr(value, "filename", "file")
        return params

    async def _method(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        params = await self._params(request)
        self.requests.append(BotRequest(method, token, params))
        bot = self.bots.get(token)
        if bot is None:
            return _error(401, "Unauthorized")
        if self._failures and self._failures[0][1] in (None, method):
            kind, _, retry_after, description = self._failures.popleft()
            return _failure(kind, retry_after, description)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None and method in SEND_METHODS:
            handler = self._m_send
        if handler is None:
            return _error(404, "Not Found: method not found")
        return await handler(bot, method, params)

    async def _m_getMe(self, bot: FakeBot, method: str, params: dict[str, Any]) -> web.Response:
        return _ok(_user(bot))

    async def _m_setWebhook(self, bot: FakeBot, method: str, params: dict[str, Any]) -> web.Response:
        url = params.get("url", "")
        if url and not str(url).startswith(("https://", "http://")):
            return _error(400, "Bad Request: bad webhook: Failed to resolve host: Name or service not known")
        bot.webhook = {"url": url, "secret_token": params.get("secret_token")}
        return _ok(True, description="Webhook was set")

    async def _m_deleteWebhook(self, bot: FakeBot, method: str, params: dict[str, Any]) -> web.Response:
        bot.webhook = {}
        return _ok(True, description="Webhook was deleted")

    async def _m_getWebhookInfo(self, bot: FakeBot, method: str, params: dict[str, Any]) -> web.Response:
        info = {"url": bot.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}
        return _ok(info)

    async def _m_getChat(self, bot: FakeBot, method: str, params: dict[str, Any]) -> web.Response:
        chat_id = int(params.get("chat_id", 0))
        chat = self.chats.get(chat_id)
        if chat is None:
            return _error(400, "Bad Request: chat not found")
        full = {"id": chat_id, "type": "private", "accent_color_id": 0, "max_reaction_count": 11}
        full["accepted_gift_types"] = {
            "unlimited_gifts": True, "limited_gifts": True, "unique_gifts": True, "premium_subscription": True,
            "gifts_from_channels": True,
        }  # fmt: skip
        return _ok({**full, **chat})

    async def _m_getFile(self, bot: FakeBot, method: str, params: dict[str, Any]) -> web.Response:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            return _error(400, "Bad Request: invalid file_id")
        return _ok({"file_id": file_id, "file_unique_id": "u" + file_id[-8:], "file_size": len(self.files[file_id]),
                    "file_path": f"files/{file_id}.bin"})  # fmt: skip

    async def _m_send(self, bot: FakeBot, method: str, params: dict[str, Any]) -> web.Response:
        chat_id = params.get("chat_id")
        if chat_id is None:
            return _error(400, "Bad Request: chat_id is empty")
        if int(chat_id) in self.blocked:
            return _failure("blocked", 0, None)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": "private"},
            "from": _user(bot),
        }
        if method == "sendMessage":
            text = params.get("text") or ""
            if not text:
                return _error(400, "Bad Request: message text is empty")
            if len(text) > 4096:
                return _error(400, "Bad Request: message is too long")
            message["text"] = text
        return _ok(message)

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        file_id = path.removeprefix("files/").removesuffix(".bin")
        if request.match_info["token"] not in self.bots or file_id not in self.files:
            return _error(404, "Not Found")
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")


def _user(bot: FakeBot) -> dict[str, Any]:
    return {"id": bot.id, "is_bot": True, "first_name": bot.first_name, "username": bot.username}


def _ok(result: Any, description: str | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return web.json_response(body)


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def _failure(kind: Failure, retry_after: int, description: str | None) -> web.Response:
    if kind == "blocked":
        return _error(403, description or "Forbidden: bot was blocked by the user")
    if kind == "retry_after":
        about = description or f"Too Many Requests: retry after {retry_after}"
        return _error(429, about, {"retry_after": retry_after})
    if kind == "bad_request":
        return _error(400, description or "Bad Request: chat not found")
    if kind == "unauthorized":
        return _error(401, description or "Unauthorized")
    return _error(500, description or "Internal Server Error")


@asynccontextmanager
async def running_fake_bot_api() -> AsyncIterator[FakeBotAPI]:
    fake = FakeBotAPI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


# ---------------------------------------------------------------------------------------------- updates


class Updates:
    """Webhook bodies shaped like Telegram's (ids as numbers, `date` in seconds), one customer per instance."""

    _ids = itertools.count(800_000_000)

    def __init__(self, chat_id: int = 5_123_456_789, first_name: str = "Thu Hà", last_name: str = "Lê") -> None:
        self.chat_id = chat_id
        self.user = {"id": chat_id, "is_bot": False, "first_name": first_name, "last_name": last_name,
                     "language_code": "vi"}  # fmt: skip
        self._message_ids = itertools.count(1)

    def _update(self, key: str, message: dict[str, Any]) -> dict[str, Any]:
        return {"update_id": next(self._ids), key: message}

    def _message(self, **content: Any) -> dict[str, Any]:
        chat = {"id": self.chat_id, "type": "private", "first_name": self.user["first_name"]}
        return {"message_id": next(self._message_ids), "from": self.user, "chat": chat, "date": int(time.time()),
                **content}  # fmt: skip

    def message(self, **content: Any) -> dict[str, Any]:
        return self._update("message", self._message(**content))

    def text(self, text: str) -> dict[str, Any]:
        return self.message(text=text)

    def photo(self, caption: str | None = None) -> dict[str, Any]:
        sizes = [
            {"file_id": "AgACAgIAAxkBAAMEsmall", "file_unique_id": "s1", "width": 90, "height": 90, "file_size": 1200},
            {"file_id": "AgACAgIAAxkBAAMElarge", "file_unique_id": "s2", "width": 1280, "height": 1280,
             "file_size": 98_000},
        ]  # fmt: skip
        return self.message(photo=sizes, **({"caption": caption} if caption else {}))

    def document(self) -> dict[str, Any]:
        doc = {"file_id": "BQACAgIAAxkBAAMFdoc", "file_unique_id": "d1", "file_name": "don-hang.pdf",
               "mime_type": "application/pdf", "file_size": 34_000}  # fmt: skip
        return self.message(document=doc)

    def voice(self) -> dict[str, Any]:
        voice = {"file_id": "AwACAgIAAxkBAAMGvoice", "file_unique_id": "v1", "duration": 4, "mime_type": "audio/ogg"}
        return self.message(voice=voice)

    def video(self) -> dict[str, Any]:
        video = {"file_id": "BAACAgIAAxkBAAMHvideo", "file_unique_id": "vd1", "width": 640, "height": 360,
                 "duration": 12}  # fmt: skip
        return self.message(video=video)

    def sticker(self) -> dict[str, Any]:
        sticker = {"file_id": "CAACAgIAAxkBAAMIstick", "file_unique_id": "st1", "type": "regular", "width": 512,
                   "height": 512, "is_animated": False, "is_video": False, "emoji": "👍"}  # fmt: skip
        return self.message(sticker=sticker)

    def location(self, latitude: float = 16.0544, longitude: float = 108.2022) -> dict[str, Any]:
        return self.message(location={"latitude": latitude, "longitude": longitude})

    def contact(self, phone: str = "84912345678", *, own: bool = True) -> dict[str, Any]:
        card = {"phone_number": phone, "first_name": self.user["first_name"], "last_name": self.user["last_name"]}
        if own:
            card["user_id"] = self.chat_id
        return self.message(contact=card)

    def edited(self, original: dict[str, Any], text: str) -> dict[str, Any]:
        message = {**original["message"], "text": text, "edit_date": int(time.time()) + 1}
        return self._update("edited_message", message)

    def bot_status(self, bot_id: int, status: str = "kicked", *, old: str = "member") -> dict[str, Any]:
        """`my_chat_member`: the customer blocked the bot ("kicked") or unblocked it ("member") in their chat."""
        bot = {"id": bot_id, "is_bot": True, "first_name": "Shop Mai Anh", "username": "shop_mai_anh_bot"}

        def member(value: str) -> dict[str, Any]:
            return {"status": value, "user": bot, **({"until_date": 0} if value == "kicked" else {})}

        chat = {"id": self.chat_id, "type": "private", "first_name": self.user["first_name"]}
        change = {"chat": chat, "from": self.user, "date": int(time.time()), "old_chat_member": member(old),
                  "new_chat_member": member(status)}  # fmt: skip
        return self._update("my_chat_member", change)

    def in_group(self, text: str) -> dict[str, Any]:
        message = self._message(text=text)
        message["chat"] = {"id": -1001234567890, "type": "supergroup", "title": "Hội mua sắm Đà Nẵng"}
        return self._update("message", message)

    def channel_post(self, text: str) -> dict[str, Any]:
        post = {"message_id": next(self._message_ids), "date": int(time.time()), "text": text,
                "chat": {"id": -1009876543210, "type": "channel", "title": "Kênh khuyến mãi"}}  # fmt: skip
        return self._update("channel_post", post)
