"""Access-matrix cases for the Telegram file route (see tests/matrix.py): the member reads inbox A's bot files."""

from __future__ import annotations

from aiogram.client.telegram import TelegramAPIServer
from aiohttp.test_utils import TestClient

from agents.models import InboxMember
from channels.fakes_telegram import FakeBotAPI
from inbox.models import Inbox
from inbox.webhooks_telegram import TELEGRAM
from tests.matrix import Case, World

BOT_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
FILE_ID = "AgACAgIAAxkBAAMElarge"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def prepare(world: World, client: TestClient) -> None:
    fake = FakeBotAPI()
    await fake.start()
    fake.add_bot(BOT_TOKEN)
    fake.files[FILE_ID] = PNG

    # The app's own client keeps its session; it now calls the fake, which stops when the app closes the client.
    app_client = client.app[TELEGRAM]
    app_client.session.api = TelegramAPIServer.from_base(fake.base_url)
    close = app_client.close

    async def close_both() -> None:
        await close()
        await fake.stop()

    app_client.close = close_both  # type: ignore[method-assign]
    bot = await Inbox.create(
        name="Shop Mai Anh — Telegram",
        channel="telegram",
        external_id="7012345678",
        credentials={"bot_token": BOT_TOKEN, "secret_token": "s", "username": "shop_bot"},
    )
    member = world.staff["member"].user
    await InboxMember.create(user_id=member.id, inbox_id=bot.id)  # the member of inbox A also answers its bot
    world.extra["telegram_inbox"] = bot.id


CASES = [
    Case(
        "GET",
        "/api/telegram/{id}/files/{file_id}",
        "agent",
        target=lambda w: {"id": w.extra["telegram_inbox"], "file_id": FILE_ID},
    ),
]
